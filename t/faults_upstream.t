# A broken provider: unreachable, reset before or in the middle of its
# answer, stalled past proxy_read_timeout, garbage instead of SSE or JSON,
# truncated JSON, a 10 MB JSON answer.  Each time the client gets what
# nginx gives without tokenguard, and the ledger follows
# docs/accounting.md: nothing when the provider never got the request, the
# reservation's worst case when it got it and nothing came back (nginx's
# own 502 and 504 after a reset or a stall), the provider's usage when it
# came whole, else the estimate (the prompt estimate, and the relayed
# bytes / 4 for the output).  t/usage.t has the cases that a working
# provider produces, t/charge.t the rest of the charging rules.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use TG;

my $month = strftime('%Y-%m', gmtime);
my $true = JSON::PP::true;
my $dead = TG::free_port();

my $t = TG->new(http => "upstream dead { server 127.0.0.1:$dead; }",
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
        proxy_buffer_size 4k;
        proxy_buffers 4 4k;
        proxy_max_temp_file_size 64m;
    }
    location /short/ {
        proxy_pass http://stub/;
        proxy_buffering off;
        proxy_read_timeout 500ms;
    }
    location /dead/ {
        proxy_pass http://dead/;
    }
});

my $n = 0;
my $msgs = [{ role => 'user', content => 'hello there' }];
my $chat = { model => 'gpt-4o', messages => $msgs };
my $stream = { model => 'gpt-4o', messages => $msgs, stream => $true };

# a fresh user and team for each case
sub post {
    my ($path, $body, %h) = @_;
    my $u = 'u' . ++$n;
    my $r = $t->http10('POST', $path, $body,
                       { 'X-User' => $u, 'X-Team' => "t$n", %h });
    return ($r, $u);
}

sub ledger {
    my ($u) = @_;
    (my $team = $u) =~ s/^u/t/;
    my @h;
    for my $key ("tg:{u:$u}:$month", "tg:{t:$team}:$month") {
        $t->wait_settled($key);
        push @h, $t->hash($key);
    }
    return @h;
}

# status >= 400: the reservation is released, nothing is counted
sub released {
    my ($name, $u) = @_;
    my ($h, $team) = ledger($u);
    for my $s (['user', $h], ['team', $team]) {
        is($s->[1]{requests} // 0, 0, "$name: no request counted ($s->[0])");
        is($s->[1]{usd} // 0, 0, "$name: nothing charged ($s->[0])");
        is($s->[1]{reserved_usd}, 0, "$name: reservation released ($s->[0])");
    }
    is($t->last_log->{usage_source}, '', "$name: no usage source");
}

# the provider got the request, nothing came back: the worst case, 7
# prompt tokens and the 4096 output tokens reserved (no max_tokens),
# 7 * 2.5 + 4096 * 10 = 40977.5 micro-USD, rounded up
sub worst {
    my ($name, $u) = @_;
    my ($h, $team) = ledger($u);
    for my $s (['user', $h], ['team', $team]) {
        is($s->[1]{requests}, 1, "$name: one request ($s->[0])");
        is($s->[1]{tokens_in}, 7, "$name: prompt estimate ($s->[0])");
        is($s->[1]{tokens_out}, 4096, "$name: output reserved ($s->[0])");
        is($s->[1]{usd}, 40978, "$name: the worst case ($s->[0])");
        is($s->[1]{estimated}, 1, "$name: counted as estimated ($s->[0])");
        is($s->[1]{reserved_usd}, 0, "$name: nothing left reserved ($s->[0])");
    }
    is($t->last_log->{usage_source}, 'estimate', "$name: usage source estimate");
}

# no usage (or not whole): 7 prompt tokens estimated, the relayed bytes
# / 4 as output; gpt-4o at 2.5 and 10 per 1M tokens
sub estimated {
    my ($name, $u, $bytes, $in) = @_;
    $in //= 7;
    my $out = int($bytes / 4);
    my ($h, $team) = ledger($u);
    for my $s (['user', $h], ['team', $team]) {
        is($s->[1]{requests}, 1, "$name: one request ($s->[0])");
        is($s->[1]{tokens_in}, $in, "$name: input estimated ($s->[0])");
        is($s->[1]{tokens_out}, $out,
           "$name: output = $bytes relayed bytes / 4 ($s->[0])");
        is($s->[1]{usd}, 10 * $out + 18, "$name: charged ($s->[0])");
        is($s->[1]{estimated}, 1, "$name: counted as estimated ($s->[0])");
        is($s->[1]{reserved_usd}, 0, "$name: nothing left reserved ($s->[0])");
    }
    my $log = $t->last_log;
    is($log->{usage_source}, 'estimate', "$name: usage source estimate");
    is($log->{completion_tokens}, $out, "$name: \$tokenguard_completion_tokens");
}

# the upstream cannot be reached: nginx's 502
my ($r, $u) = post('/dead/v1/chat/completions', $chat);
is($r->{status}, 502, 'unreachable: 502');
released('unreachable', $u);

# the upstream resets the connection after reading the request: 502
($r, $u) = post('/v1/chat/completions', $chat, 'X-Stub-Reset' => 'headers');
is($r->{status}, 502, 'reset before the headers: 502');
worst('reset before the headers', $u);

# the upstream is silent past proxy_read_timeout: 504
my $t0 = time;
($r, $u) = post('/short/v1/chat/completions', $chat,
                'X-Stub-Delay-Ms' => 1500);
is($r->{status}, 504, 'stalled before the headers: 504');
ok(time - $t0 < 1.4, 'stalled: 504 after proxy_read_timeout, not the stall');
worst('stalled before the headers', $u);

# a stall mid-stream: what came is relayed, then nginx closes
($r, $u) = post('/short/v1/chat/completions', $stream,
                'X-Stub-Event-Delay-Ms' => 1500, 'X-Stub-Usage' => '1000,200');
is($r->{status}, 200, 'stalled mid-stream: 200');
like($r->{body}, qr/^data: .*Hello /s, 'stalled mid-stream: the first event');
unlike($r->{body}, qr/usage/, 'stalled mid-stream: no usage reached the client');
estimated('stalled mid-stream', $u, length $r->{body});

# a reset in the middle of a JSON body: the client gets fewer bytes than
# Content-Length, and nginx closes
for my $loc ('', '/buffered') {
    ($r, $u) = post("$loc/v1/chat/completions", $chat,
                    'X-Stub-Reset' => 100, 'X-Stub-Usage' => '1000,200');
    my $name = 'reset mid-body' . ($loc ? ', buffered' : '');
    is($r->{status}, 200, "$name: 200");
    my ($cl) = $r->{head} =~ /Content-Length: (\d+)/i;
    ok($cl > length $r->{body}, "$name: the body is cut short"
       . " (${\ length $r->{body}} of $cl bytes)");
    ok($r->{eof}, "$name: nginx closed the connection");
    if (length $r->{body}) {
        estimated($name, $u, length $r->{body});
    } else {
        # buffered: nothing was passed on before the reset
        worst($name, $u);
    }
}

# a reset right after the headers: 200 and no body
($r, $u) = post('/v1/chat/completions', $chat, 'X-Stub-Reset' => 0);
is($r->{status}, 200, 'reset after the headers: 200');
is($r->{body}, '', 'reset after the headers: no body');
worst('reset after the headers', $u);

# truncated JSON that is valid HTTP (Content-Length matches)
($r, $u) = post('/v1/chat/completions', $chat, 'X-Stub-Truncate' => 150,
                'X-Stub-Usage' => '1000,200');
is($r->{status}, 200, 'truncated JSON: 200');
is(length $r->{body}, 150, 'truncated JSON: relayed as it came');
estimated('truncated JSON', $u, 150);

# garbage instead of SSE, instead of JSON, and one 9 MB line
for my $case (['SSE', $stream, 100000], ['JSON', $chat, 2 * 1024 * 1024],
              ['SSE, one 9 MB line', $stream, '9437184,flat'])
{
    my ($what, $body, $spec) = @$case;
    ($r, $u) = post('/v1/chat/completions', $body, 'X-Stub-Garbage' => $spec);
    my ($bytes) = $spec =~ /^(\d+)/;
    is($r->{status}, 200, "garbage instead of $what: 200");
    is(length $r->{body}, $bytes, "garbage instead of $what: relayed whole");
    estimated("garbage instead of $what", $u, $bytes);
}

# 10 MB of JSON, relayed and buffered to a temp file: the usage at its end
# is read exactly
for my $loc ('', '/buffered') {
    ($r, $u) = post("$loc/v1/chat/completions", $chat,
                    'X-Stub-Words' => 1_300_000, 'X-Stub-Usage' => '1000,200');
    my $name = '10 MB JSON' . ($loc ? ', buffered to a file' : '');
    is($r->{status}, 200, "$name: 200");
    my ($cl) = $r->{head} =~ /Content-Length: (\d+)/i;
    ok($cl > 10_000_000 && length $r->{body} == $cl
       && $r->{body} =~ /"total_tokens":1200\}\}$/,
       "$name: the client got it whole (${\ length $r->{body}} bytes)");
    my ($h, $team) = ledger($u);
    for my $s (['user', $h], ['team', $team]) {
        is($s->[1]{tokens_in}, 1000, "$name: the provider's input ($s->[0])");
        is($s->[1]{tokens_out}, 200, "$name: the provider's output ($s->[0])");
        is($s->[1]{usd}, 4500, "$name: 1000 * 2.5 + 200 * 10 ($s->[0])");
        ok(!$s->[1]{estimated}, "$name: not estimated ($s->[0])");
    }
    is($t->last_log->{usage_source}, 'provider', "$name: source provider");
}

# an Anthropic stream cut after message_start and a few deltas: the input
# message_start reported is kept; the output it reported (1, a running
# count) is not the answer's, so the relayed bytes are estimated
{
    ($r, $u) = post('/v1/messages', { model => 'claude-sonnet-4-5',
                    max_tokens => 300, stream => $true, messages => $msgs },
                    'X-Stub-Cut-After' => 8, 'X-Stub-Usage' => '1000,200');
    is($r->{status}, 200, 'anthropic stream cut: 200');
    like($r->{body}, qr/message_start.*content_block_delta/s,
         'anthropic stream cut: message_start and deltas relayed');
    my ($h) = ledger($u);
    is($h->{requests}, 1, 'anthropic stream cut: one request');
    is($h->{tokens_in}, 1000, 'anthropic stream cut: the input that came');
    is($h->{tokens_out}, int(length($r->{body}) / 4),
       'anthropic stream cut: output = relayed bytes / 4');
    is($t->last_log->{usage_source}, 'estimate',
       'anthropic stream cut: usage source estimate');
}

$t->stop;
done_testing;
