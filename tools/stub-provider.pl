#!/usr/bin/env perl
# A local stand-in for the AI providers: OpenAI (chat, completions,
# responses, embeddings, models), Anthropic (messages) and Gemini
# (generateContent, streamGenerateContent), the same dialects on Azure
# deployments, Vertex AI and the OpenAI-compatible endpoints, each as JSON
# or as an SSE stream, with usage numbers in each provider's own shape.
#
#   stub-provider.pl [--listen 127.0.0.1:9000] [--record DIR] [--delay MS]
#
# --record DIR writes each request received as DIR/<time>-<pid>.json
# ({"method","uri","headers","body"}): the tests read exactly what nginx
# sent upstream.  --delay waits between stream events.  Core Perl only.

use strict;
use warnings;

use Getopt::Long;
use IO::Compress::Gzip qw(gzip);
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Socket ();
use Time::HiRes qw(time usleep);

my $listen = '127.0.0.1:9000';
my ($record, $delay) = (undef, 0);
GetOptions('listen=s' => \$listen, 'record=s' => \$record,
           'delay=i' => \$delay) or die "usage: $0 [--listen ADDR]"
           . " [--record DIR] [--delay MS]\n";

my $server = IO::Socket::INET->new(LocalAddr => $listen, Listen => 128,
                                   ReuseAddr => 1)
    or die "stub-provider: cannot listen on $listen: $!\n";

$SIG{CHLD} = 'IGNORE';
$SIG{TERM} = $SIG{INT} = sub { exit 0 };
$| = 1;
print "stub provider on http://$listen/\n" unless $record;

my $json = JSON::PP->new->canonical;

while (1) {
    my $c = $server->accept or next;
    my $pid = fork;
    if (!defined $pid) { close $c; next; }
    if ($pid == 0) {
        close $server;
        serve($c);
        exit 0;
    }
    close $c;
}


sub serve {
    my ($c) = @_;
    binmode $c;

    while (my $req = read_request($c)) {
        record($req) if $record;
        my $keep = respond($c, $req);
        last unless $keep;
    }

    close $c;
}


sub read_request {
    my ($c) = @_;
    local $/ = "\r\n";

    my $line = <$c>;
    return undef unless defined $line;
    $line =~ s/\r\n$//;
    my ($method, $uri, $proto) = split / /, $line, 3;
    return undef unless $proto;

    my (%h, @order);
    while (my $hl = <$c>) {
        $hl =~ s/\r\n$//;
        last if $hl eq '';
        my ($k, $v) = split /:\s*/, $hl, 2;
        push @order, [$k, $v];
        $h{lc $k} = $v;
    }

    my $body = '';
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        while (1) {
            my $size = <$c>;
            last unless defined $size;
            $size =~ s/\r\n$//;
            my $n = hex $size;
            if ($n == 0) { <$c>; last; }
            read($c, my $chunk, $n);
            $body .= $chunk;
            <$c>;
        }
    } elsif (my $len = $h{'content-length'}) {
        my $got = 0;
        while ($got < $len) {
            my $n = read($c, $body, $len - $got, $got);
            last unless $n;
            $got += $n;
        }
    }

    return { method => $method, uri => $uri, proto => $proto,
             headers => \%h, header_list => \@order, body => $body };
}


sub record {
    my ($req) = @_;
    my $name = sprintf "%s/%.6f-%d.json", $record, time, $$;
    open my $f, '>', "$name.tmp" or die "stub-provider: $name: $!\n";
    print $f $json->encode({ method => $req->{method}, uri => $req->{uri},
                             headers => $req->{headers},
                             header_list => $req->{header_list},
                             body => $req->{body} });
    close $f;
    rename "$name.tmp", $name;
}


# about four bytes a token, as the gateway estimates
sub count_tokens {
    my ($text) = @_;
    return int((length($text) + 3) / 4) || 1;
}


sub respond {
    my ($c, $req) = @_;
    my $keep = ($req->{headers}{connection} // '') !~ /close/i
               && $req->{proto} eq 'HTTP/1.1';
    our %h = %{ $req->{headers} };
    my ($path, $query) = split /\?/, $req->{uri}, 2;
    $query //= '';

    # the same dialects on other surfaces: Azure deployments, Vertex AI,
    # the OpenAI-compatible endpoints; a model the URI names is echoed
    my ($uri_model, $uri_stream);
    if ($path =~ m{/openai/deployments/([^/]+)(/(?:chat/completions
                   |completions|embeddings|responses))$}x) {
        ($uri_model, $path) = ($1, "/v1$2");
    } elsif ($path =~ m{/v1beta/openai(/(?:chat/completions|embeddings))$}
             || $path =~ m{/endpoints/openapi(/chat/completions)$}) {
        $path = "/v1$1";
    } elsif ($path =~ m{/publishers/anthropic/models/([^/:]+)
                        :(?:(stream)R|r)awPredict$}x) {
        ($uri_model, $uri_stream, $path) = ($1, $2, '/v1/messages');
    }

    my $body = eval { decode_json($req->{body} || '{}') };
    if (ref $body ne 'HASH') {
        return send_json($c, $keep, 400,
                         { error => { message => 'stub: bad JSON' } });
    }

    # hold the answer back, to keep many requests in flight at once
    if (my $ms = $req->{headers}{'x-stub-delay-ms'}) {
        usleep($ms * 1000);
    }

    # a broken upstream: no answer, garbage, or a cut one (send_json)
    my $reset = $req->{headers}{'x-stub-reset'} // '';
    if ($reset eq 'headers') {
        rst($c);
    }
    if (my $g = $req->{headers}{'x-stub-garbage'}) {
        return send_garbage($c, $g, $body->{stream});
    }

    my $status = $req->{headers}{'x-stub-status'};
    if ($status) {
        return send_json($c, $keep, $status,
                         { error => { message => "stub: status $status",
                                      type => 'stub_error' } });
    }

    my $model = $body->{model} // 'stub-model';
    $model = $uri_model if defined $uri_model;
    # X-Stub-Model: the model the response names (a dated snapshot)
    $model = $req->{headers}{'x-stub-model'}
        if defined $req->{headers}{'x-stub-model'};
    $body->{stream} = JSON::PP::true if $uri_stream;
    my $in = count_tokens($req->{body});
    my $words = [split / /, "Hello from the tokenguard stub provider, a canned"
                    . " answer in a few words."];
    my $out = scalar @$words;
    my $text = join ' ', @$words;
    my ($cached, $cwrite) = (0, 0);

    # X-Stub-Usage: "IN,OUT[,CACHED[,CACHE_WRITE]]" sets the usage the
    # stub reports; "none" leaves usage out, as some servers do
    my $force = $req->{headers}{'x-stub-usage'} // '';
    my $no_usage = $force eq 'none';
    ($in, $out, $cached, $cwrite) = map { ($_ // 0) + 0 }
                                    (split(/,/, $force), 0, 0)[0 .. 3]
        if $force =~ /^\d/;
    # X-Stub-Usage-Json: the usage object itself, in the dialect's shape
    # (Gemini's usageMetadata), for every unit a price can name
    my $raw = $req->{headers}{'x-stub-usage-json'};
    $raw = eval { $json->decode($raw) } if defined $raw;
    # X-Stub-Words: N answers with N words (a long stream)
    if (my $n = $req->{headers}{'x-stub-words'}) {
        $words = [map { "w$_" } 1 .. $n];
        $text = join ' ', @$words;
    }
    # a request for structured output (agent CLIs route and summarise
    # with these) gets a JSON text that fits its schema, in one piece
    if (my $schema = answer_schema($body)) {
        $text = $json->encode(schema_sample($schema, 0));
        $words = [$text];
    }
    # X-Stub-Tool-Call: "NAME ARGS-JSON" answers with a call of that tool
    # when the request offers that tool and holds no tool's result yet:
    # an agent's whole turn, its side calls (routers, titles) answered
    my $call;
    if (my $spec = $req->{headers}{'x-stub-tool-call'}) {
        my ($name, $args) = split / /, $spec, 2;
        # NAMESPACE.NAME: a Responses tool inside a "namespace" tool
        my $ns = $name =~ s/^([^.]+)\.// ? $1 : undef;
        $call = { name => $name, namespace => $ns,
                  args => eval { decode_json($args // '{}') } || {} }
            if find_hash($body, sub { ($_[0]{name} // '') eq $name }, 0)
               && !find_hash($body, sub { exists $_[0]{functionResponse}
                   || ($_[0]{type} // '') =~ /^(?:tool_result
                      |function_call_output|custom_tool_call_output)$/x },
                   0);
    }
    # X-Stub-Text: T answers T (its words, one a stream event)
    if (defined(my $tx = $req->{headers}{'x-stub-text'})) {
        $words = [split / /, $tx];
        $text = $tx;
    }
    # X-Stub-Big-Event: N streams a first text delta of N bytes
    if (my $n = $req->{headers}{'x-stub-big-event'}) {
        unshift @$words, 'x' x $n;
        $text = join ' ', @$words;
    }
    my $every = $req->{headers}{'x-stub-usage-every'};

    if ($path =~ m{/v1/models$}) {
        return send_json($c, $keep, 200, { object => 'list', data => [
            { id => 'gpt-4o-mini', object => 'model' },
            { id => 'gpt-4o', object => 'model' } ] });
    }

    if ($path =~ m{/v1/chat/completions$}) {
        my $usage = $raw // { prompt_tokens => $in, completion_tokens => $out,
                      total_tokens => $in + $out,
                      prompt_tokens_details => { cached_tokens => $cached },
                      completion_tokens_details =>
                          { reasoning_tokens => int($out / 2) } };
        if (!$body->{stream}) {
            return send_json($c, $keep, 200, {
                id => 'chatcmpl-stub', object => 'chat.completion',
                created => 1700000000, model => $model,
                choices => [{ index => 0, finish_reason => 'stop',
                    message => { role => 'assistant', content => $text } }],
                ($no_usage ? () : (usage => $usage)) });
        }
        my @ev;
        my $so_far = 0;
        for my $w (@$words) {
            push @ev, { id => 'chatcmpl-stub',
                        object => 'chat.completion.chunk', model => $model,
                        choices => [{ index => 0,
                                      delta => { content => "$w " } }] };
            # X-Stub-Usage-Every: running totals on each chunk (vLLM's
            # continuous_usage_stats)
            $ev[-1]{usage} = { prompt_tokens => $in,
                               completion_tokens => ++$so_far }
                if $every;
        }
        push @ev, { id => 'chatcmpl-stub', object => 'chat.completion.chunk',
                    model => $model, choices => [{ index => 0, delta => {},
                    finish_reason => 'stop' }] };
        if ($body->{stream_options} && $body->{stream_options}{include_usage}
            && !$no_usage)
        {
            push @ev, { id => 'chatcmpl-stub',
                        object => 'chat.completion.chunk', model => $model,
                        choices => [], usage => $usage };
        }
        return send_sse($c, $keep, [map { [undef, $_] } @ev], 1);
    }

    if ($path =~ m{/v1/completions$}) {
        my $usage = { prompt_tokens => $in, completion_tokens => $out,
                      total_tokens => $in + $out };
        return send_json($c, $keep, 200, {
            id => 'cmpl-stub', object => 'text_completion', model => $model,
            choices => [{ index => 0, text => $text,
                          finish_reason => 'stop' }],
            ($no_usage ? () : (usage => $usage)) }) unless $body->{stream};
        my @ev = map { [undef, { id => 'cmpl-stub', model => $model,
                       choices => [{ index => 0, text => "$_ " }] }] } @$words;
        # the usage rides on the last chunk, "choices" and all, as some
        # OpenAI-compatible servers send it: a finished choice
        $ev[-1][1]{choices}[0]{finish_reason} = 'stop';
        $ev[-1][1]{usage} = $usage
            if $body->{stream_options} && $body->{stream_options}{include_usage}
               && !$no_usage;
        return send_sse($c, $keep, \@ev, 1);
    }

    # compaction: one JSON object, a Responses usage
    if ($path =~ m{/v1/responses/compact$}) {
        return send_json($c, $keep, 200, {
            id => 'cmp_stub', object => 'response.compaction',
            created_at => time, output => [{ type => 'compaction',
                encrypted_content => 'stub' }],
            ($no_usage ? () : (usage => $raw // { input_tokens => $in,
                output_tokens => $out, total_tokens => $in + $out })) });
    }

    if ($path =~ m{/v1/responses$}) {
        # background: answered at once, queued, fetched later by its id
        if ($body->{background} && !$body->{stream}) {
            return send_json($c, $keep, 200, {
                id => 'resp_stub', object => 'response', model => $model,
                status => 'queued', background => JSON::PP::true,
                output => [], usage => undef });
        }
        my $resp = { id => 'resp_stub', object => 'response',
                     model => $model, status => 'completed',
                     output => [{ type => 'message', role => 'assistant',
                        content => [{ type => 'output_text',
                                      text => $text }] }],
                     ($no_usage ? () : (usage => $raw // { input_tokens => $in,
                                output_tokens => $out,
                                total_tokens => $in + $out,
                                input_tokens_details =>
                                    { cached_tokens => $cached },
                                output_tokens_details =>
                                    { reasoning_tokens => 0 } })) };
        if ($call) {
            $resp->{output} = [{ type => 'function_call', id => 'fc_stub',
                                 call_id => 'call_stub', status => 'completed',
                                 name => $call->{name},
                                 ($call->{namespace}
                                  ? (namespace => $call->{namespace}) : ()),
                                 arguments => $json->encode($call->{args}) }];
        }
        # X-Stub-Echo: 1 echoes the request's tools, as the API does
        $resp->{tools} = $body->{tools}
            if $req->{headers}{'x-stub-echo'} && $body->{tools};
        $resp->{background} = JSON::PP::true if $body->{background};
        return send_json($c, $keep, 200, $resp) unless $body->{stream};
        return send_sse($c, $keep, [
            [ 'response.created', { type => 'response.created',
              response => { id => 'resp_stub', model => $model,
                            status => 'in_progress' } } ],
            [ 'response.output_item.added', {
              type => 'response.output_item.added', output_index => 0,
              item => { %{ $resp->{output}[0] }, arguments => '',
                        status => 'in_progress' } } ],
            [ 'response.function_call_arguments.delta', {
              type => 'response.function_call_arguments.delta',
              item_id => 'fc_stub', output_index => 0,
              delta => $resp->{output}[0]{arguments} } ],
            [ 'response.function_call_arguments.done', {
              type => 'response.function_call_arguments.done',
              item_id => 'fc_stub', output_index => 0,
              arguments => $resp->{output}[0]{arguments} } ],
            [ 'response.output_item.done', {
              type => 'response.output_item.done', output_index => 0,
              item => $resp->{output}[0] } ],
            [ 'response.completed', { type => 'response.completed',
                                      response => $resp } ] ], 0)
            if $call;
        # the item events around the deltas: Codex shows only text that
        # belongs to an item it was told of
        my %at = (item_id => 'msg_stub', output_index => 0);
        my $item = { id => 'msg_stub', type => 'message', role => 'assistant',
                     status => 'in_progress', content => [] };
        my $part = { type => 'output_text', text => '', annotations => [] };
        my @ev = ([ 'response.created', { type => 'response.created',
                    response => { id => 'resp_stub', model => $model,
                                  status => 'in_progress' } } ],
                  [ 'response.output_item.added', {
                    type => 'response.output_item.added', output_index => 0,
                    item => $item } ],
                  [ 'response.content_part.added', {
                    type => 'response.content_part.added', %at,
                    content_index => 0, part => $part } ]);
        push @ev, map { [ 'response.output_text.delta',
                          { type => 'response.output_text.delta', %at,
                            content_index => 0, delta => "$_ " } ] } @$words;
        my $done = $resp->{output}[0];
        push @ev, [ 'response.output_item.done', {
                    type => 'response.output_item.done', output_index => 0,
                    item => { %$done, id => 'msg_stub',
                              status => 'completed' } } ];
        push @ev, [ 'response.completed', { type => 'response.completed',
                                            response => $resp } ];
        return send_sse($c, $keep, \@ev, 0);
    }

    if ($path =~ m{/v1/embeddings$}) {
        return send_json($c, $keep, 200, {
            object => 'list', model => $model,
            data => [{ object => 'embedding', index => 0,
                       embedding => [0.1, 0.2, 0.3] }],
            ($no_usage ? () : (usage => { prompt_tokens => $in,
                                          total_tokens => $in })) });
    }

    if ($path =~ m{/v1/messages$}) {
        my $msg = { id => 'msg_stub', type => 'message', role => 'assistant',
                    model => $model, stop_reason => 'end_turn',
                    content => [{ type => 'text', text => $text }],
                    usage => $raw // { input_tokens => $in - $cached - $cwrite,
                               output_tokens => $out,
                               cache_read_input_tokens => $cached,
                               cache_creation_input_tokens => $cwrite } };
        delete $msg->{usage} if $no_usage;
        if ($call) {
            $msg->{stop_reason} = 'tool_use';
            $msg->{content} = [{ type => 'tool_use', id => 'toolu_stub',
                                 name => $call->{name},
                                 input => $call->{args} }];
        }
        return send_json($c, $keep, 200, $msg) unless $body->{stream};
        my @ev = ([ 'message_start', { type => 'message_start', message => {
                    %$msg, content => [], stop_reason => undef,
                    ($no_usage ? () : (usage => { %{ $msg->{usage} },
                                                  output_tokens => 1 })) } } ],
                  [ 'content_block_start', { type => 'content_block_start',
                    index => 0, content_block => $call
                        ? { %{ $msg->{content}[0] }, input => {} }
                        : { type => 'text', text => '' } } ]);
        push @ev, $call
            ? [ 'content_block_delta', { type => 'content_block_delta',
                index => 0, delta => { type => 'input_json_delta',
                partial_json => $json->encode($call->{args}) } } ]
            : map { [ 'content_block_delta', {
                    type => 'content_block_delta', index => 0,
                    delta => { type => 'text_delta', text => "$_ " } } ] }
                  @$words;
        push @ev, [ 'content_block_stop', { type => 'content_block_stop',
                                            index => 0 } ],
                  [ 'message_delta', { type => 'message_delta',
                    delta => { stop_reason => $msg->{stop_reason} },
                    ($no_usage ? () : (usage => $raw
                                       // { output_tokens => $out })) } ],
                  [ 'message_stop', { type => 'message_stop' } ];
        return send_sse($c, $keep, \@ev, 0);
    }

    if ($path =~ m{/models/([^/:]+):(stream)?[gG]enerateContent$}) {
        my ($gmodel, $stream) = ($1, $2);
        # thoughts are not part of candidatesTokenCount
        my $thoughts = int($out / 3);
        my $usage = $no_usage ? undef : $raw // { promptTokenCount => $in,
                      candidatesTokenCount => $out - $thoughts,
                      thoughtsTokenCount => $thoughts,
                      cachedContentTokenCount => $cached,
                      totalTokenCount => $in + $out };
        my $chunk = sub {
            my ($t, $u) = @_;
            return { candidates => [{ index => 0, content => { role => 'model',
                       parts => [{ text => $t }] } }],
                     modelVersion => $req->{headers}{'x-stub-model'}
                                     // $gmodel,
                     ($u ? (usageMetadata => $u) : ()) };
        };
        my $answer = $chunk->($text, $usage);
        $answer->{candidates}[0]{finishReason} = 'STOP';
        $answer->{candidates}[0]{content}{parts} = [{ functionCall => {
            name => $call->{name}, args => $call->{args} } }] if $call;
        return send_json($c, $keep, 200, $answer) unless $stream;
        return send_sse($c, $keep, [[undef, $answer]], 0)
            if $call && $query =~ /alt=sse/;
        return send_json($c, $keep, 200, [$answer]) if $call;
        my @ev = map { [undef, $chunk->("$_ ", $every && $usage
                                  ? { promptTokenCount => $in } : undef)] }
                 @$words;
        # a stream without a finish reason is a broken one to Gemini CLI
        $ev[-1][1]{candidates}[0]{finishReason} = 'STOP';
        $ev[-1][1]{usageMetadata} = $usage if $usage;
        return send_sse($c, $keep, \@ev, 0) if $query =~ /alt=sse/;
        return send_json($c, $keep, 200, [map { $_->[1] } @ev]);
    }

    return send_json($c, $keep, 404, { error => {
        message => "stub: no such endpoint $path", type => 'not_found' } });
}


# whether an object anywhere in a request passes $test: a tool offered
# or a tool's result, whatever the dialect puts it in
sub find_hash {
    my ($v, $test, $depth) = @_;
    return 0 if $depth > 64;
    if (ref $v eq 'HASH') {
        return 1 if $test->($v);
        return !!grep { find_hash($_, $test, $depth + 1) } values %$v;
    }
    return !!grep { find_hash($_, $test, $depth + 1) } @$v
        if ref $v eq 'ARRAY';
    return 0;
}


# the JSON schema the answer must follow, if the request asks for one:
# Gemini generationConfig, OpenAI chat response_format, Responses
# text.format, Anthropic output_format or output_config.format
sub answer_schema {
    my ($b) = @_;
    my $g = $b->{generationConfig};
    if (ref $g eq 'HASH'
        && ($g->{responseMimeType} // '') eq 'application/json')
    {
        return $g->{responseJsonSchema} || $g->{responseSchema}
               || { type => 'object' };
    }
    my @f = (ref $b->{response_format} eq 'HASH'
             ? $b->{response_format}{json_schema} : undef,
             ref $b->{text} eq 'HASH' ? $b->{text}{format} : undef,
             $b->{output_format},
             ref $b->{output_config} eq 'HASH'
             ? $b->{output_config}{format} : undef);
    for my $f (grep { ref $_ eq 'HASH' } @f) {
        return $f->{schema} if ref $f->{schema} eq 'HASH';
    }
    return undef;
}


# the smallest value of a schema: every property listed, the
# first enum value, 1 for a number, "stub" for a string
sub schema_sample {
    my ($s, $depth) = @_;
    return undef if ref $s ne 'HASH' || $depth > 16;
    return $s->{enum}[0] if ref $s->{enum} eq 'ARRAY' && @{ $s->{enum} };
    return $s->{const} if exists $s->{const};
    for my $k (qw(anyOf oneOf allOf)) {
        return schema_sample($s->{$k}[0], $depth + 1)
            if ref $s->{$k} eq 'ARRAY' && @{ $s->{$k} };
    }
    my $type = $s->{type} // ($s->{properties} ? 'object' : 'string');
    $type = (grep { lc $_ ne 'null' } @$type)[0] // 'null'
        if ref $type eq 'ARRAY';
    $type = lc $type;
    if ($type eq 'object') {
        my $p = ref $s->{properties} eq 'HASH' ? $s->{properties} : {};
        return { map { $_ => schema_sample($p->{$_}, $depth + 1) } keys %$p };
    }
    return [] if $type eq 'array';
    return 1 if $type eq 'integer' || $type eq 'number';
    return JSON::PP::false if $type eq 'boolean';
    return undef if $type eq 'null';
    return 'stub';
}


# test knobs, from request headers:
#   X-Stub-Gzip: 1        gzip the answer when the request accepts gzip;
#                force    gzip it whatever the request accepts
#   X-Stub-Chunked: 1     send a JSON answer chunked
#   X-Stub-Event-Delay-Ms wait between stream events
#   X-Stub-Cut-After: N   close the connection after N stream events
#   X-Stub-Reset: headers reset the connection (RST) before answering;
#                 N       send a JSON answer's headers (its whole
#                         Content-Length) and N bytes of its body, then RST
#   X-Stub-Truncate: N    a JSON answer cut to its first N bytes, with
#                         Content-Length N: valid HTTP, broken JSON
#   X-Stub-Tool-Call: NAME ARGS-JSON  a call of that tool (NS.NAME: in a
#                         Responses namespace) while the request offers it
#                         and holds no tool result yet
#   X-Stub-Garbage: N[,flat]  200 and N bytes of garbage as the body
#                         (text/event-stream if the request streams, else
#                         application/json); flat: no CR or LF in it
#   X-Stub-Trailer: "K":V a JSON answer gets this member last, after
#                         its usage (a provider echoing client data there)
#   X-Stub-Text, X-Stub-Big-Event, X-Stub-Usage-Every, X-Stub-Echo: the
#                         answer's text; a first delta of N bytes; usage
#                         on every chunk (chat, Gemini); tools echoed
#                         (Responses)
# A Responses request with "background": true (not streamed) is answered
# at once: status "queued", no usage.
our %h;


# RST: an upstream that dies, no orderly end
sub rst {
    my ($c) = @_;
    setsockopt($c, Socket::SOL_SOCKET(), Socket::SO_LINGER(),
               pack('ii', 1, 0));
    close $c;
    exit 0;
}


sub send_garbage {
    my ($c, $spec, $stream) = @_;
    my ($n, $flat) = split /,/, $spec;
    srand 42;
    my $block = pack 'C*', map { int rand 256 } 1 .. 65536;
    $block =~ tr/\r\n/xy/ if $flat;
    my $b = substr($block x (int($n / 65536) + 1), 0, $n);
    local $SIG{PIPE} = 'IGNORE';
    print $c "HTTP/1.1 200 Stub\r\n"
        . 'Content-Type: ' . ($stream ? 'text/event-stream'
                                      : 'application/json') . "\r\n"
        . "Content-Length: $n\r\nConnection: close\r\n\r\n" . $b;
    return 0;
}

sub send_json {
    my ($c, $keep, $status, $obj) = @_;
    my $b = $json->encode($obj);
    if (my $tr = $h{'x-stub-trailer'}) {
        $b =~ s/\}$/,$tr}/;
    }
    my $extra = '';
    my $gz = $h{'x-stub-gzip'} // '';
    if ($gz eq 'force'
        || ($gz && ($h{'accept-encoding'} // '') =~ /gzip/))
    {
        my $z;
        gzip(\$b => \$z);
        $b = $z;
        $extra .= "Content-Encoding: gzip\r\n";
    }
    if (my $n = $h{'x-stub-truncate'}) {
        $b = substr($b, 0, $n);
    }
    my $reset = $h{'x-stub-reset'} // '';
    if ($reset =~ /^\d+$/) {
        local $SIG{PIPE} = 'IGNORE';
        print $c "HTTP/1.1 $status Stub\r\n"
            . "Content-Type: application/json\r\n"
            . "Content-Length: " . length($b) . "\r\n\r\n"
            . substr($b, 0, $reset);
        rst($c);
    }
    if ($h{'x-stub-chunked'}) {
        print $c "HTTP/1.1 $status Stub\r\n"
            . "Content-Type: application/json\r\n$extra"
            . "Transfer-Encoding: chunked\r\n"
            . ($keep ? '' : "Connection: close\r\n") . "\r\n";
        for my $part (unpack '(a100)*', $b) {
            printf $c "%x\r\n%s\r\n", length $part, $part;
        }
        print $c "0\r\n\r\n";
        return $keep;
    }
    print $c "HTTP/1.1 $status Stub\r\n"
        . "Content-Type: application/json\r\n$extra"
        . "Content-Length: " . length($b) . "\r\n"
        . ($keep ? '' : "Connection: close\r\n") . "\r\n" . $b;
    return $keep;
}


sub send_sse {
    my ($c, $keep, $events, $done) = @_;
    print $c "HTTP/1.1 200 Stub\r\n"
        . "Content-Type: text/event-stream\r\n"
        . "Cache-Control: no-cache\r\n"
        . "Connection: close\r\n\r\n";
    my $n = 0;
    my $wait = $h{'x-stub-event-delay-ms'} // $delay;
    my $cut = $h{'x-stub-cut-after'};
    local $SIG{PIPE} = 'IGNORE';
    for my $e (@$events) {
        my ($name, $data) = @$e;
        print $c(($name ? "event: $name\n" : '')
                 . 'data: ' . $json->encode($data) . "\n\n")
            or return 0;
        # an upstream that dies mid-stream: RST, no orderly end
        rst($c) if $cut && ++$n >= $cut;
        usleep($wait * 1000) if $wait;
    }
    print $c "data: [DONE]\n\n" if $done;
    return 0;
}
