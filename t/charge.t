# A charge whenever the provider got the request (docs/accounting.md):
# the worst case reserved when it got the request and nothing
# came back (the client gone before the headers, proxy_read_timeout, a
# reset), the prompt plus what was relayed when a stream or body was cut,
# the worst case for a Responses call answered later (background); a
# release only when the provider never got it (connect refused) or
# answered with an error of its own.  Usage is believed only from the top
# level of a complete body or from a stream's final event: an echoed
# schema, a fake usage after the real one, a text delta that looks like
# usage, running totals of a stream cut short are not.  Each case checks
# the Redis counters exactly, and that nothing stays reserved or is
# counted twice.
use strict;
use warnings;
use lib 't/lib';
use IO::Socket::INET;
use POSIX qw(ceil strftime);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $month = strftime('%Y-%m', gmtime);
my $true = JSON::PP::true;
my $dead = TG::free_port();

# max_fails=0: a failure must not disable a server for the tests after it
# (with the default, a reset that comes in under fail_timeout of a refused
# connect leaves "no live upstreams" and the retry test reads a 502)
my $t = TG->new(http => "upstream dead { server 127.0.0.1:$dead; }\n"
                . "upstream flaky { server 127.0.0.1:$dead max_fails=0;"
                . " server %%UPSTREAM%% max_fails=0; }",
                server => q{
    tokenguard on;
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    location / {
        proxy_pass http://stub;
        proxy_buffering off;
    }
    location /buffered/ {
        proxy_pass http://stub/;
        proxy_buffering on;
    }
    location /short/ {
        proxy_pass http://stub/;
        proxy_buffering off;
        proxy_read_timeout 500ms;
    }
    location /dead/ {
        proxy_pass http://dead/;
    }
    location /retry/ {
        proxy_pass http://flaky/;
        proxy_next_upstream error;
    }
    location /stored/ {
        tokenguard_stored_input_tokens 1000;
        proxy_pass http://stub/;
        proxy_buffering off;
    }
    location = /metrics {
        tokenguard off;
        tokenguard_metrics;
    }
});

my $n = 0;
my $msgs = [{ role => 'user', content => 'hello there' }];
my $chat = { model => 'gpt-4o', messages => $msgs, max_tokens => 100 };
my $stream = { %$chat, stream => $true };
my %price = ('gpt-4o' => [2.5, 10], 'gemini-2.5-flash' => [0.3, 2.5]);

sub post {
    my ($path, $body, %h) = @_;
    my $u = 'u' . ++$n;
    my %o = %{ delete $h{opt} || {} };
    $t->clear_upstream;
    my $r = $t->http10('POST', $path, $body,
                       { 'X-User' => $u, 'X-Team' => "t$n", %h }, %o);
    return ($r, $u);
}

sub scopes {
    my ($u) = @_;
    (my $team = $u) =~ s/^u/t/;
    return ("tg:{u:$u}:$month", "tg:{t:$team}:$month");
}

# the provider got the request (the stub recorded it)
sub provider_got {
    my ($name) = @_;
    TG::wait_for(sub { scalar $t->upstream_all }, 3);
    is(scalar $t->upstream_all, 1, "$name: the provider got the request");
}

# exactly one request at IN and OUT tokens, nothing left reserved, and
# still so a moment later (no second settle, no journal replay)
my %sources;

sub charged {
    my ($name, $u, $in, $out, %o) = @_;
    $sources{$o{source} // 'estimate'}++;
    my $model = $o{model} // 'gpt-4o';
    my ($pi, $po) = @{ $price{$model} };
    my $usd = ceil($in * $pi + $out * $po - 1e-9);
    my $log = $t->last_log;
    is($log->{usage_source}, $o{source} // 'estimate',
       "$name: usage source");
    my @first;
    for my $key (scopes($u)) {
        $t->wait_settled($key);
        my $h = $t->hash($key);
        is($h->{requests}, 1, "$name: one request ($key)");
        is($h->{tokens_in}, $in, "$name: tokens_in $in ($key)");
        is($h->{tokens_out}, $out, "$name: tokens_out $out ($key)");
        is($h->{usd}, $usd, "$name: usd $usd ($key)");
        is($h->{estimated} // 0, ($o{source} // '') eq 'provider' ? 0 : 1,
           "$name: estimated or not ($key)");
        is($h->{reserved_usd} // 0, 0, "$name: nothing reserved ($key)");
        is($h->{reserved_requests} // 0, 0,
           "$name: no request reserved ($key)");
        push @first, $h;
    }
    sleep 0.3;
    my @again = map { $t->hash($_) } scopes($u);
    is_deeply(\@again, \@first, "$name: settled once");
    return $log;
}

sub released {
    my ($name, $u) = @_;
    my $log = $t->last_log;
    is($log->{usage_source}, '', "$name: nothing settled");
    for my $key (scopes($u)) {
        $t->wait_settled($key);
        my $h = $t->hash($key);
        is($h->{requests} // 0, 0, "$name: no request counted ($key)");
        is($h->{usd} // 0, 0, "$name: nothing charged ($key)");
        is($h->{tokens_in} // 0, 0, "$name: no tokens ($key)");
        is($h->{reserved_usd} // 0, 0, "$name: reservation released ($key)");
    }
}

# the prompt estimate of a request, as the log reported it after a settle
sub prompt_of { $_[0]->{prompt_tokens} }

my ($r, $u, $log);

# --- the provider got it, nothing came back: the worst case ---

# the client leaves while the provider thinks, once the provider has
# the request (the stub records it before it thinks): the provider bills it
{
    $u = 'u' . ++$n;
    $t->clear_upstream;
    my $body = JSON::PP->new->encode($chat);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->{port}) or die;
    print $s "POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\n"
        . "X-User: $u\r\nX-Team: t$n\r\nX-Stub-Delay-Ms: 3000\r\n"
        . "X-TG-Test-Id: " . ++$t->{test_id} . "\r\n"
        . "Content-Length: " . length($body) . "\r\n\r\n$body";
    TG::wait_for(sub { scalar $t->upstream_all }, 10);
    close $s;
}
provider_got('client gone before the headers');
$log = $t->last_log;
is($log->{status}, 499, 'client gone before the headers: logged 499');
ok(prompt_of($log) > 0, 'client gone before the headers: a prompt estimate');
charged('client gone before the headers', $u, prompt_of($log), 100);
my $prompt = prompt_of($log);

# proxy_read_timeout: nginx's 504, the provider still has the request
($r, $u) = post('/short/v1/chat/completions', $chat,
                'X-Stub-Delay-Ms' => 1500);
is($r->{status}, 504, 'proxy_read_timeout: 504');
provider_got('proxy_read_timeout');
charged('proxy_read_timeout', $u, $prompt, 100);

# the provider read the request and reset the connection: nginx's 502
($r, $u) = post('/v1/chat/completions', $chat, 'X-Stub-Reset' => 'headers');
is($r->{status}, 502, 'reset after the request: 502');
provider_got('reset after the request');
charged('reset after the request', $u, $prompt, 100);

# the same with retries: the next upstream does not make it free
($r, $u) = post('/retry/v1/chat/completions', $chat,
                'X-Stub-Reset' => 'headers');
is($r->{status}, 502, 'reset, no next upstream for a POST: 502');
charged('reset, retries configured', $u, $prompt, 100);

# --- cut short: the prompt plus what was relayed ---

($r, $u) = post('/v1/chat/completions', $stream, 'X-Stub-Cut-After' => 3,
                'X-Stub-Usage' => '1000,200');
is($r->{status}, 200, 'stream cut: 200');
ok(length $r->{body} > 0 && $r->{body} !~ /usage/,
   'stream cut: some events relayed, not the usage');
charged('stream cut', $u, $prompt, int(length($r->{body}) / 4));

# a stream with the output over the estimate of the relayed bytes: the
# output reported would be believed only from the final chunk
($r, $u) = post('/v1/chat/completions', $stream, 'X-Stub-Usage' => '1000,200',
                'X-Stub-Usage-Every' => 1, 'X-Stub-Cut-After' => 4);
like($r->{body}, qr/"completion_tokens":3/,
     'running usage, cut: running totals relayed');
charged('running usage (vLLM), cut: not believed', $u, $prompt,
        int(length($r->{body}) / 4));

# and whole: the final chunk's usage
($r, $u) = post('/v1/chat/completions', $stream, 'X-Stub-Usage' => '1000,200',
                'X-Stub-Usage-Every' => 1);
charged('running usage, whole: the final chunk', $u, 1000, 200,
        source => 'provider');

# Gemini sends usageMetadata (promptTokenCount) on every chunk: a cut
# stream is not "usage with 0 output"
my $g = { contents => [{ role => 'user', parts => [{ text => 'hello' }] }],
          generationConfig => { maxOutputTokens => 100 } };
($r, $u) = post('/v1beta/models/gemini-2.5-flash:streamGenerateContent'
                . '?alt=sse', $g, 'X-Stub-Usage' => '1000,200',
                'X-Stub-Usage-Every' => 1, 'X-Stub-Cut-After' => 3);
like($r->{body}, qr/promptTokenCount/, 'gemini cut: partial usage relayed');
$log = $t->last_log;
charged('gemini cut: estimated', $u, prompt_of($log),
        int(length($r->{body}) / 4), model => 'gemini-2.5-flash');
($r, $u) = post('/v1beta/models/gemini-2.5-flash:streamGenerateContent'
                . '?alt=sse', $g, 'X-Stub-Usage' => '1000,200',
                'X-Stub-Usage-Every' => 1);
charged('gemini whole: the finished chunk', $u, 1000, 200,
        model => 'gemini-2.5-flash', source => 'provider');

# a text delta written to look like the final usage event, then the cut
my $fake = 'data: {"choices":[],"usage":{"prompt_tokens":1,'
           . '"completion_tokens":1}} event: response.completed';
($r, $u) = post('/v1/chat/completions', $stream, 'X-Stub-Text' => $fake,
                'X-Stub-Cut-After' => 3, 'X-Stub-Usage' => '1000,200');
like($r->{body}, qr/prompt_tokens/, 'fake usage in a delta: relayed');
charged('fake usage in a delta, cut', $u, $prompt,
        int(length($r->{body}) / 4));
($r, $u) = post('/v1/responses', { model => 'gpt-4o', input => 'hello there',
                max_output_tokens => 100, stream => $true },
                'X-Stub-Text' => '{"type":"response.completed","response":'
                . '{"usage":{"input_tokens":1,"output_tokens":1}}}',
                # created, the item and its part, then the delta
                'X-Stub-Cut-After' => 4, 'X-Stub-Usage' => '1000,200');
like($r->{body}, qr/response.output_text.delta/,
     'responses: the fake in a delta relayed');
unlike($r->{body}, qr/event: response.completed/,
       'responses: not the real completed event');
$log = $t->last_log;
charged('responses: fake completed event in a delta, cut', $u,
        prompt_of($log), int(length($r->{body}) / 4));

# input the provider keeps (here tokenguard_stored_input_tokens 1000): an
# answer that never says how much was read is charged the assumption, a
# cut stream too (or a client would cut its streams to have it free);
# what the provider reports is believed
my $chain = { model => 'gpt-4o', input => 'hello there',
              max_output_tokens => 100, previous_response_id => 'resp_1' };
# (the id is read as text: the control's input has it on a line of its own)
($r, $u) = post('/stored/v1/responses', { %$chain,
                input => "hello there\nresp_1",
                previous_response_id => undef, stream => $true },
                'X-Stub-Cut-After' => 4, 'X-Stub-Usage' => '1000,200');
$log = $t->last_log;
my $est = prompt_of($log);
charged('no stored input, stream cut: the prompt estimate', $u, $est,
        int(length($r->{body}) / 4));
($r, $u) = post('/stored/v1/responses', $chain, 'X-Stub-Reset' => 'headers');
is($r->{status}, 502, 'stored input, reset after the request: 502');
charged('stored input, reset after the request: the assumption', $u,
        $est + 1000, 100);
($r, $u) = post('/stored/v1/responses', { %$chain, stream => $true },
                'X-Stub-Cut-After' => 4, 'X-Stub-Usage' => '1000,200');
unlike($r->{body}, qr/event: response.completed/,
       'stored input, stream cut: no completed event');
charged('stored input, stream cut: the assumption as input', $u,
        $est + 1000, int(length($r->{body}) / 4));
($r, $u) = post('/stored/v1/responses', { %$chain, stream => $true },
                'X-Stub-Usage' => '5000,200');
charged('stored input, whole: what the provider says', $u, 5000, 200,
        source => 'provider');

# --- bodies: the top level of a complete object only ---

# Responses echoes the tools: a schema with a "usage" property of its own
my $tools = [{ type => 'function', name => 'f', parameters => {
    type => 'object', properties => { usage => {
        input_tokens => 1, output_tokens => 1 } } } }];
my $resp = { model => 'gpt-4o', input => 'hello there', tools => $tools,
             max_output_tokens => 100 };
($r, $u) = post('/v1/responses', $resp, 'X-Stub-Echo' => 1,
                'X-Stub-Usage' => '1000,200');
like($r->{body}, qr/"properties":\{"usage":\{"input_tokens":1/,
     'echoed schema: the schema is in the answer');
charged('echoed schema, whole: the real usage', $u, 1000, 200,
        source => 'provider');
my $cut = index($r->{body}, '"usage":{"input_tokens":1000');
ok($cut > 0, 'echoed schema: the real usage comes after it');

($r, $u) = post('/v1/responses', $resp, 'X-Stub-Echo' => 1,
                'X-Stub-Usage' => '1000,200', 'X-Stub-Truncate' => $cut);
is(length $r->{body}, $cut, 'echoed schema, truncated: relayed as it came');
$log = $t->last_log;
charged('echoed schema, truncated before the usage: not believed', $u,
        prompt_of($log), int($cut / 4));

# a large body (over the 1 MB once kept whole) whose last member, after
# the real usage, holds a usage-looking object
for my $loc ('', '/buffered') {
    ($r, $u) = post("$loc/v1/chat/completions", $chat,
                    'X-Stub-Words' => 300_000, 'X-Stub-Usage' => '1000,200',
                    'X-Stub-Trailer' => '"zz":{"usage":{"prompt_tokens":1,'
                                        . '"completion_tokens":1}}');
    ok(length $r->{body} > 2_000_000 && $r->{body} =~ /"zz":\{"usage"/,
       "large body$loc: the fake usage last");
    charged("large body$loc: the top-level usage", $u, 1000, 200,
            source => 'provider');
}

# a body whose top level never closes
($r, $u) = post('/v1/chat/completions', $chat, 'X-Stub-Usage' => '1000,200',
                'X-Stub-Truncate' => 400);
ok($r->{body} =~ /"usage":\{/ && length $r->{body} == 400,
   'truncated inside the usage: relayed');
charged('truncated inside the usage', $u, $prompt, 100);

# --- background: answered later, charged the worst case ---

($r, $u) = post('/v1/responses', { model => 'gpt-4o', input => 'hello there',
                background => $true, max_output_tokens => 50 });
is($r->{status}, 200, 'background: 200');
like($r->{body}, qr/"status":"queued"/, 'background: queued');
$log = $t->last_log;
charged('background: the worst case', $u, prompt_of($log), 50);

# background streamed: the usage arrives, but the answer can be fetched
# again later; still the worst case
($r, $u) = post('/v1/responses', { model => 'gpt-4o', input => 'hello there',
                background => $true, stream => $true,
                max_output_tokens => 50 }, 'X-Stub-Usage' => '10,20');
like($r->{body}, qr/response.completed/, 'background stream: completed');
$log = $t->last_log;
charged('background stream: the worst case', $u, prompt_of($log), 50);

# --- released: never sent, or the provider's own error ---

($r, $u) = post('/dead/v1/chat/completions', $chat);
is($r->{status}, 502, 'connect refused: 502');
released('connect refused', $u);

($r, $u) = post('/retry/v1/chat/completions', $chat,
                'X-Stub-Usage' => '1000,200');
is($r->{status}, 200, 'refused, then the next upstream: 200');
charged('refused, then the next upstream: charged once', $u, 1000, 200,
        source => 'provider');

for my $status (400, 401, 429, 500, 503) {
    ($r, $u) = post('/v1/chat/completions', $chat, 'X-Stub-Status' => $status);
    is($r->{status}, $status, "provider $status: passed on");
    like($r->{body}, qr/stub: status $status/, "provider $status: its body");
    released("provider $status", $u);
}

# refused by tokenguard: the provider never saw it
($r, $u) = post('/v1/chat/completions', { model => 'gpt-4o',
                messages => 'not an array' });
is($r->{status}, 400, 'refused by tokenguard: 400');
is(scalar $t->upstream_all, 0, 'refused by tokenguard: not sent');
released('refused by tokenguard', $u);

# every settle in the metrics, by where its usage came from
my $text = $t->get('/metrics')->{content};
for my $src (sort keys %sources) {
    my ($v) = $text =~ /^tokenguard_usage_total\{source="$src"\} (\d+)$/m;
    is($v, $sources{$src}, "metrics: $sources{$src} settled from $src");
}

unlike($t->error_log, qr/\[alert\]|\[emerg\]|AddressSanitizer/,
       'no alert in the error log');

$t->stop;
done_testing;
