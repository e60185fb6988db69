# Response parsing in fixed memory (docs/accounting.md, "Memory"):
# a long stream of events that carry no usage, a single giant event, a
# Responses stream whose final event holds the whole answer, a large
# JSON body relayed and buffered to a temp file.  The worker's peak
# resident memory (VmHWM) hardly moves, and the usage is still the
# provider's, exactly.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $month = strftime('%Y-%m', gmtime);
my $true = JSON::PP::true;

my $t = TG->new(server => q{
    tokenguard on;
    tokenguard_user $http_x_user;
    location / {
        proxy_pass http://stub;
        proxy_buffering off;
    }
    location /buffered/ {
        proxy_pass http://stub/;
        proxy_buffering on;
        proxy_max_temp_file_size 64m;
    }
});

# valgrind runs nginx as one process, whose memory is valgrind's own:
# the responses are still relayed and counted, the peak not compared
my $MEASURE = !$ENV{TG_VALGRIND};
my ($worker) = $t->worker_pids;
if ($MEASURE) {
    ok($worker, "one worker ($worker)");
} else {
    diag('peak memory not compared under valgrind: nginx runs as one'
         . ' process, and its memory is the tool\'s');
}

sub hwm {
    return 0 unless $MEASURE;
    open my $f, '<', "/proc/$worker/status" or return 0;
    local $/;
    my ($kb) = <$f> =~ /^VmHWM:\s+(\d+) kB/m;
    return $kb;
}

my $n = 0;
my $msgs = [{ role => 'user', content => 'hello there' }];

sub run {
    my ($name, $path, $body, $in, $out, %h) = @_;
    my $u = 'b' . ++$n;
    my $r = $t->http10('POST', $path, $body,
                       { 'X-User' => $u, 'X-Stub-Usage' => "$in,$out", %h },
                       timeout => 120);
    is($r->{status}, 200, "$name: 200");
    ok($r->{eof}, "$name: read whole (" . length($r->{body}) . ' bytes)');
    $t->wait_settled("tg:{u:$u}:$month");
    my $hh = $t->hash("tg:{u:$u}:$month");
    is($hh->{tokens_in}, $in, "$name: the provider's input");
    is($hh->{tokens_out}, $out, "$name: the provider's output");
    is($t->last_log->{usage_source}, 'provider', "$name: from the provider");
    return $r;
}

# warm up: every path once, small
my $chat = { model => 'gpt-4o', messages => $msgs };
my $stream = { %$chat, stream => $true };
my $resp = { model => 'gpt-4o', input => 'hello there', stream => $true };
run('warm-up JSON', '/v1/chat/completions', $chat, 10, 20);
run('warm-up stream', '/v1/chat/completions', $stream, 10, 20);
run('warm-up responses', '/v1/responses', $resp, 10, 20);
run('warm-up buffered', '/buffered/v1/chat/completions', $chat, 10, 20);

my $base = hwm();
ok($base > 0, "VmHWM after warm-up: $base kB") if $MEASURE;

# 100000 events without usage, then the usage chunk
my $r = run('100000 events', '/v1/chat/completions', $stream, 1000, 200,
            'X-Stub-Words' => 100_000);
ok(length $r->{body} > 10_000_000, 'a stream of over 10 MB');

# one 6 MB event (a single text delta), among others
run('a 6 MB event', '/v1/chat/completions', $stream, 1001, 201,
    'X-Stub-Big-Event' => 6 * 1024 * 1024);

# a Responses stream: response.completed holds the whole 6 MB answer
run('a 6 MB final event', '/v1/responses', $resp, 1002, 202,
    'X-Stub-Big-Event' => 6 * 1024 * 1024);

# an Anthropic stream with a 6 MB delta
run('anthropic, a 6 MB delta', '/v1/messages',
    { model => 'claude-sonnet-4-5', max_tokens => 300, stream => $true,
      messages => $msgs }, 1003, 203,
    'X-Stub-Big-Event' => 6 * 1024 * 1024);

# 12 MB of JSON, relayed, then buffered to a temp file
for my $loc ('', '/buffered') {
    $r = run("12 MB JSON$loc", "$loc/v1/chat/completions", $chat, 1004, 204,
             'X-Stub-Words' => 1_500_000);
    ok(length $r->{body} > 12_000_000, "12 MB JSON$loc: over 12 MB");
}

# a Gemini JSON-array stream of 100000 chunks
run('gemini array stream', '/v1beta/models/gemini-2.5-flash:'
    . 'streamGenerateContent', { contents => [{ parts => [{ text => 'hi' }] }] },
    1005, 205, 'X-Stub-Words' => 100_000);

my $peak = hwm();
my $grew = $peak - $base;
if ($MEASURE) {
    diag("VmHWM $base kB -> $peak kB (+$grew kB)");
    cmp_ok($grew, '<', 2048, "the worker's peak memory grew by under 2 MB"
           . " (+$grew kB)");
}

unlike($t->error_log, qr/\[alert\]|cannot follow/,
       'no alert, no usage lost');

$t->stop;
done_testing;
