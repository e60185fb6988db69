#!/usr/bin/env perl
# The agentic loads of make bench, written deterministically (a fixed
# LCG, no rand()) into DIR: one coding-agent conversation -- a long system
# prompt, 20 tool schemas, a user task and 15 rounds of an assistant tool
# call and its result (31 turns) -- in each dialect, and the canned
# provider's answer to it as a JSON body and as an SSE stream, with usage
# where each provider puts it.
#
#   agentic.pl DIR     writes DIR/agentic-{chat,responses,messages,gemini}
#                      .json (requests), -stream.json (the same with
#                      "stream":true) and DIR/canned/agentic-*.{json,sse}
use strict;
use warnings;

my $dir = shift or die "usage: $0 DIR\n";
mkdir "$dir/canned";

my $seed = 20261124;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; $seed % $_[0] }

my @words = qw(the request handler returns a buffer when upstream closes
    connection before headers arrive and retries with backoff config value
    parser reads field from struct pointer length offset index cache entry
    expires after timeout worker process signal reload graceful shutdown
    module filter chain body output input token budget reservation ledger
    settle flush lease slice scope user team period month day limit cap
    metric counter histogram label model route rule policy prompt stream
    event data line chunk frame socket epoll timer queue list node tree);

sub words {
    my ($n) = @_;
    join ' ', map { $words[rnd(scalar @words)] } 1 .. $n;
}

sub sentence { my $s = words(8 + rnd(10)); ucfirst($s) . '.' }

# JSON string escaping: what a real body carries (quotes, newlines, tabs,
# the odd non-ASCII character as \u)
sub js {
    my ($s) = @_;
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/\n/\\n/g;
    $s =~ s/\t/\\t/g;
    $s =~ s/([^\x20-\x7e])/sprintf('\\u%04x', ord $1)/ge;
    qq("$s");
}

# a JSON text from a nested Perl structure, keys in the order given
sub enc {
    my ($v) = @_;
    if (ref $v eq 'ARRAY' && @$v && $v->[0] eq '__obj') {
        my @kv = @$v[1 .. $#$v];
        my @out;
        while (my ($k, $x) = splice @kv, 0, 2) {
            push @out, js($k) . ':' . enc($x);
        }
        return '{' . join(',', @out) . '}';
    }
    return '[' . join(',', map { enc($_) } @$v) . ']' if ref $v eq 'ARRAY';
    return $$v if ref $v eq 'SCALAR';       # raw: numbers, true, null
    return js($v);
}
sub obj { ['__obj', @_] }
sub raw { my $x = shift; \$x }

# --- the conversation, dialect-neutral -----------------------------------

my $system = join "\n\n", map {
    "## " . ucfirst(words(3)) . "\n" . join ' ', map { sentence() } 1 .. 9
} 1 .. 12;
$system = "You are a senior engineer working in a large C code base. "
        . "Follow the repository's conventions.\n\n$system";

my @tools;
for my $i (1 .. 20) {
    my $name = (qw(read_file write_file edit_file list_dir grep_code
        run_tests run_command git_diff git_log open_issue search_docs
        build_module lint_file format_file find_symbol call_graph
        bench_run profile_run fetch_url ask_user))[$i - 1];
    my @props;
    for my $p (1 .. 3 + rnd(3)) {
        my $pn = (qw(path pattern line count offset mode recursive
            timeout target args))[rnd(10)] . "_$p";
        push @props, $pn, obj(type => ($p % 3 ? 'string' : 'integer'),
                              description => sentence());
    }
    push @tools, { name => $name,
                   desc => join(' ', map { sentence() } 1 .. 3),
                   props => \@props,
                   req => [$props[0]] };
}

# tool results: file contents, with quotes, tabs and newlines to decode
sub code_block {
    my ($lines) = @_;
    join "\n", map {
        my $w = words(4 + rnd(6));
        (rnd(3) == 0 ? "\t" : '    ')
        . ($_ % 4 == 0 ? "/* $w */" : "rc = ngx_$w(\"" . words(2) . "\", n);")
    } 1 .. $lines;
}

my $task = "Please look at the ledger flush path: " . sentence() . ' '
         . sentence() . " Caf\x{e9} r\x{e9}sum\x{e9}: keep the tests green.";
my @rounds;
for my $r (1 .. 15) {
    my $t = $tools[rnd(20)];
    my %args = (path => "src/" . join('_', split / /, words(2)) . ".c",
                line => 10 + rnd(900));
    push @rounds, { text => sentence() . ' ' . sentence(),
                    tool => $t->{name}, id => sprintf('%08x%04d', $seed, $r),
                    args => \%args,
                    result => code_block(21 + rnd(6)) };
}

sub args_obj { my $a = shift; obj(path => $a->{path}, line => raw($a->{line})) }
sub args_json { enc(args_obj(shift)) }

sub schema {
    my ($t, $upper) = @_;
    my @p = @{ $t->{props} };
    if ($upper) {       # Gemini's OpenAPI subset spells types in capitals
        my @q;
        while (my ($k, $v) = splice @p, 0, 2) {
            my %h = @$v[1 .. $#$v];
            push @q, $k, obj(type => uc $h{type},
                             description => $h{description});
        }
        @p = @q;
    }
    obj(type => ($upper ? 'OBJECT' : 'object'), properties => obj(@p),
        required => $t->{req});
}

# --- requests ------------------------------------------------------------

my %req;

{
    my @m = (obj(role => 'system', content => $system),
             obj(role => 'user', content => $task));
    for my $r (@rounds) {
        push @m, obj(role => 'assistant', content => $r->{text},
                     tool_calls => [obj(id => "call_$r->{id}",
                         type => 'function',
                         function => obj(name => $r->{tool},
                                         arguments => args_json($r->{args})))]),
                 obj(role => 'tool', tool_call_id => "call_$r->{id}",
                     content => $r->{result});
    }
    $req{chat} = sub {
        my $s = shift;
        enc(obj(model => 'gpt-4o', ($s ? (stream => raw('true')) : ()),
            max_tokens => raw(4096), temperature => raw(0.2),
            tools => [map { obj(type => 'function', function => obj(
                name => $_->{name}, description => $_->{desc},
                parameters => schema($_))) } @tools],
            tool_choice => 'auto', messages => \@m));
    };
}

{
    my @in = (obj(role => 'user', content => [obj(type => 'input_text',
                                                   text => $task)]));
    for my $r (@rounds) {
        push @in, obj(type => 'message', role => 'assistant',
                      content => [obj(type => 'output_text',
                                      text => $r->{text})]),
                  obj(type => 'function_call', call_id => "call_$r->{id}",
                      name => $r->{tool}, arguments => args_json($r->{args})),
                  obj(type => 'function_call_output',
                      call_id => "call_$r->{id}", output => $r->{result});
    }
    $req{responses} = sub {
        my $s = shift;
        enc(obj(model => 'gpt-4o', ($s ? (stream => raw('true')) : ()),
            instructions => $system, max_output_tokens => raw(4096),
            tools => [map { obj(type => 'function', name => $_->{name},
                description => $_->{desc}, parameters => schema($_)) } @tools],
            input => \@in));
    };
}

{
    my @m = (obj(role => 'user', content => $task));
    for my $r (@rounds) {
        push @m, obj(role => 'assistant', content => [
                     obj(type => 'text', text => $r->{text}),
                     obj(type => 'tool_use', id => "toolu_$r->{id}",
                         name => $r->{tool}, input => args_obj($r->{args}))]),
                 obj(role => 'user', content => [
                     obj(type => 'tool_result', tool_use_id => "toolu_$r->{id}",
                         content => $r->{result})]);
    }
    $req{messages} = sub {
        my $s = shift;
        enc(obj(model => 'claude-sonnet-4-5', max_tokens => raw(4096),
            ($s ? (stream => raw('true')) : ()),
            system => [obj(type => 'text', text => $system,
                           cache_control => obj(type => 'ephemeral'))],
            tools => [map { obj(name => $_->{name}, description => $_->{desc},
                input_schema => schema($_)) } @tools],
            messages => \@m));
    };
}

{
    my @c = (obj(role => 'user', parts => [obj(text => $task)]));
    for my $r (@rounds) {
        push @c, obj(role => 'model', parts => [obj(text => $r->{text}),
                     obj(functionCall => obj(name => $r->{tool},
                                             args => args_obj($r->{args})))]),
                 obj(role => 'user', parts => [obj(functionResponse => obj(
                     name => $r->{tool},
                     response => obj(content => $r->{result})))]);
    }
    # the stream is chosen by the URI (:streamGenerateContent)
    $req{gemini} = sub {
        enc(obj(systemInstruction => obj(parts => [obj(text => $system)]),
            tools => [obj(functionDeclarations => [map { obj(
                name => $_->{name}, description => $_->{desc},
                parameters => schema($_, 1)) } @tools])],
            contents => \@c,
            generationConfig => obj(maxOutputTokens => raw(4096),
                                    temperature => raw(0.2))));
    };
}

sub put {
    my ($f, $s) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $s;
    close $fh;
}

for my $d (sort keys %req) {
    put("$dir/agentic-$d.json", $req{$d}->(0));
    put("$dir/agentic-$d-stream.json", $req{$d}->(1));
}

# --- the canned provider's answers ----------------------------------------

# each answer as a JSON body and an SSE stream, named agentic$tag-*
sub canned {
    my ($tag, $answer, @deltas) = @_;
    my $call = obj(path => 'src/ledger_flush.c', line => raw(412));
    my ($in, $cached, $out) = (14210, 12288, 187);

    put("$dir/canned/agentic$tag-chat.json", enc(obj(
        id => 'chatcmpl-agentic', object => 'chat.completion',
        created => raw(1700000000), model => 'gpt-4o-2024-08-06',
        choices => [obj(index => raw(0), finish_reason => 'tool_calls',
            message => obj(role => 'assistant', content => $answer,
                tool_calls => [obj(id => 'call_next', type => 'function',
                    function => obj(name => 'read_file',
                                    arguments => enc($call)))]))],
        usage => obj(prompt_tokens => raw($in), completion_tokens => raw($out),
            total_tokens => raw($in + $out),
            prompt_tokens_details => obj(cached_tokens => raw($cached)),
            completion_tokens_details => obj(reasoning_tokens => raw(0))),
        system_fingerprint => 'fp_bench')));

    put("$dir/canned/agentic$tag-chat.sse", join('', (map {
        'data: ' . enc(obj(id => 'chatcmpl-agentic',
            object => 'chat.completion.chunk', created => raw(1700000000),
            model => 'gpt-4o-2024-08-06', choices => [obj(index => raw(0),
                delta => obj(content => $_), finish_reason => raw('null'))]))
        . "\n\n" } @deltas),
        'data: ' . enc(obj(id => 'chatcmpl-agentic',
            object => 'chat.completion.chunk', created => raw(1700000000),
            model => 'gpt-4o-2024-08-06', choices => [],
            usage => obj(prompt_tokens => raw($in),
                completion_tokens => raw($out),
                total_tokens => raw($in + $out),
                prompt_tokens_details => obj(cached_tokens => raw($cached)))))
        . "\n\ndata: [DONE]\n\n"));

    my $resp_usage = obj(input_tokens => raw($in),
        input_tokens_details => obj(cached_tokens => raw($cached)),
        output_tokens => raw($out),
        output_tokens_details => obj(reasoning_tokens => raw(0)),
        total_tokens => raw($in + $out));
    my $resp = sub {
        my ($status, $usage) = @_;
        obj(id => 'resp_agentic', object => 'response',
            created_at => raw(1700000000), status => $status,
            model => 'gpt-4o-2024-08-06',
            output => ($usage ? [obj(type => 'message', id => 'msg_agentic',
                    status => 'completed', role => 'assistant',
                    content => [obj(type => 'output_text', text => $answer,
                                    annotations => [])]),
                obj(type => 'function_call', id => 'fc_agentic',
                    call_id => 'call_next', name => 'read_file',
                    arguments => enc($call), status => 'completed')] : []),
            usage => ($usage ? $resp_usage : raw('null')));
    };
    put("$dir/canned/agentic$tag-responses.json", enc($resp->('completed', 1)));
    {
        my $n = 0;
        put("$dir/canned/agentic$tag-responses.sse", join('',
            "event: response.created\ndata: "
            . enc(obj(type => 'response.created', sequence_number => raw($n++),
                      response => $resp->('in_progress', 0))) . "\n\n",
            (map { "event: response.output_text.delta\ndata: "
                   . enc(obj(type => 'response.output_text.delta',
                       sequence_number => raw($n++), item_id => 'msg_agentic',
                       output_index => raw(0), content_index => raw(0),
                       delta => $_)) . "\n\n" } @deltas),
            "event: response.completed\ndata: "
            . enc(obj(type => 'response.completed',
                      sequence_number => raw($n++),
                      response => $resp->('completed', 1))) . "\n\n"));
    }

    put("$dir/canned/agentic$tag-messages.json", enc(obj(
        id => 'msg_agentic', type => 'message', role => 'assistant',
        model => 'claude-sonnet-4-5-20250929',
        content => [obj(type => 'text', text => $answer),
            obj(type => 'tool_use', id => 'toolu_next', name => 'read_file',
                input => $call)],
        stop_reason => 'tool_use', stop_sequence => raw('null'),
        usage => obj(input_tokens => raw($in - $cached),
            cache_creation_input_tokens => raw(0),
            cache_read_input_tokens => raw($cached),
            output_tokens => raw($out)))));

    put("$dir/canned/agentic$tag-messages.sse", join('',
        "event: message_start\ndata: " . enc(obj(type => 'message_start',
            message => obj(id => 'msg_agentic', type => 'message',
                role => 'assistant', model => 'claude-sonnet-4-5-20250929',
                content => [], stop_reason => raw('null'),
                stop_sequence => raw('null'),
                usage => obj(input_tokens => raw($in - $cached),
                    cache_creation_input_tokens => raw(0),
                    cache_read_input_tokens => raw($cached),
                    output_tokens => raw(1))))) . "\n\n",
        "event: content_block_start\ndata: " . enc(obj(
            type => 'content_block_start', index => raw(0),
            content_block => obj(type => 'text', text => ''))) . "\n\n",
        (map { "event: content_block_delta\ndata: " . enc(obj(
            type => 'content_block_delta', index => raw(0),
            delta => obj(type => 'text_delta', text => $_))) . "\n\n" }
        @deltas),
        "event: content_block_stop\ndata: "
            . enc(obj(type => 'content_block_stop', index => raw(0))) . "\n\n",
        "event: message_delta\ndata: " . enc(obj(type => 'message_delta',
            delta => obj(stop_reason => 'end_turn',
                         stop_sequence => raw('null')),
            usage => obj(output_tokens => raw($out)))) . "\n\n",
        "event: message_stop\ndata: " . enc(obj(type => 'message_stop'))
            . "\n\n"));

    my $gusage = sub {
        my ($o) = @_;
        obj(promptTokenCount => raw($in), candidatesTokenCount => raw($o),
            totalTokenCount => raw($in + $o),
            cachedContentTokenCount => raw($cached),
            promptTokensDetails => [obj(modality => 'TEXT',
                                        tokenCount => raw($in))]);
    };
    put("$dir/canned/agentic$tag-gemini.json", enc(obj(
        candidates => [obj(content => obj(role => 'model', parts => [
                obj(text => $answer),
                obj(functionCall => obj(name => 'read_file', args => $call))]),
            finishReason => 'STOP', index => raw(0))],
        usageMetadata => $gusage->($out), modelVersion => 'gemini-2.5-flash',
        responseId => 'agentic')));

    {
        my $k = 0;
        put("$dir/canned/agentic$tag-gemini.sse", join('', map {
            $k++;
            'data: ' . enc(obj(candidates => [obj(content => obj(
                    role => 'model',
                    parts => [obj(text => $_)]),
                    ($k == @deltas ? (finishReason => 'STOP') : ()),
                    index => raw(0))],
                usageMetadata => $gusage->(int($out * $k / @deltas)),
                modelVersion => 'gemini-2.5-flash', responseId => 'agentic'))
            . "\r\n\r\n" } @deltas));
    }
}

canned('', join(' ', map { sentence() } 1 .. 6),
       map { words(3) . ' ' } 1 .. 60);

# make bench-core's realistic sizes: a 2 KB and an 8 KB body, a 200- and a
# 2000-event stream, with what model text holds (newlines, quotes, a
# usage-shaped example that is text, never usage)
sub text_delta {
    my $k = rnd(40);
    return "\n\n" if $k == 0;
    return '{"usage":{"prompt_tokens":1,"completion_tokens":1}} ' if $k == 1;
    return 'data: {"type":"message_delta","usage":{"output_tokens":1}} '
        if $k == 2;
    return '"' . words(2) . '" ' if $k == 3;
    words(1 + rnd(4)) . ' ';
}

for my $n (200, 2000) {
    my $size = $n == 200 ? 1400 : 7400;
    my $answer = '';
    $answer .= text_delta() while length $answer < $size;
    canned("-$n", $answer, map { text_delta() } 1 .. $n);
}

for my $d (sort keys %req) {
    printf "agentic-%s.json: %d bytes\n", $d, -s "$dir/agentic-$d.json";
}
