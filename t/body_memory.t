# Bounded request inspection: a body of ~3.8 MB made of tiny JSON values
# (numbers, empty arrays and objects, one-letter text parts) raises a
# worker's peak memory (VmHWM) by a small multiple of its size, not by the
# ~40 bytes of parser node each 2-byte value cost before; one denser than
# a node per 4 bytes is a 400; token-id arrays of any size pass.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

my $SIZE = 3_800_000;
# nodes (8x) + decoded strings (1x) + prompt text (1x) + nginx's copies of
# the body (2x) + allocator slack: 14 times the body over the idle worker
my $BOUND = 14 * $SIZE;
# under ASan or valgrind the process's own memory is theirs to count: the
# bodies are still sent and checked, their peaks not compared
my $MEASURE = !$ENV{TG_VALGRIND} && !$ENV{ASAN_OPTIONS};
diag('peak memory not compared: under ASan or valgrind the process'
     . ' memory is the tool\'s (the bodies are still sent and checked)')
    unless $MEASURE;

sub hwm {
    my ($pid) = @_;
    # valgrind runs nginx as one process: no worker to read
    return 0 unless defined $pid;
    open my $f, '<', "/proc/$pid/status" or return 0;
    while (<$f>) { return $1 * 1024 if /^VmHWM:\s+(\d+) kB/ }
    return 0;
}

sub fill {
    my ($head, $unit, $tail) = @_;
    my $n = int(($SIZE - length($head) - length($tail)) / length($unit));
    my $body = $head . ($unit x $n);
    chop $body if substr($unit, -1) eq ',';
    return $body . $tail;
}

my $msg = '"messages":[{"role":"user","content":"hi"}]';
my @bodies = (
    ['2-byte numbers (token ids)', '/v1/embeddings', 200,
     fill('{"model":"text-embedding-3-small","input":[', '0,', ']}')],
    ['2-byte numbers in an unknown field', '/v1/chat/completions', 200,
     fill("{\"model\":\"gpt-4o\",$msg,\"x\":[", '0,', ']}')],
    ['token id arrays of arrays', '/v1/embeddings', 200,
     fill('{"model":"text-embedding-3-small","input":[', '[1,2],', ']}')],
    ['one-letter text parts', '/v1/chat/completions', 200,
     fill('{"model":"gpt-4o","messages":[{"role":"user","content":[',
          '{"type":"text","text":"a"},', ']}]}')],
    ['members with numbers', '/v1/chat/completions', 200,
     do { my $i = 0; my $b = "{\"model\":\"gpt-4o\",$msg,\"x\":{";
          $b .= '"' . $i++ . '":0,' while length($b) < $SIZE;
          chop $b; $b . '}}' }],
    ['empty arrays', '/v1/chat/completions', 400,
     fill("{\"model\":\"gpt-4o\",$msg,\"x\":[", '[],', ']}')],
    ['empty objects', '/v1/chat/completions', 400,
     fill("{\"model\":\"gpt-4o\",$msg,\"x\":[", '{},', ']}')],
    ['empty strings', '/v1/chat/completions', 400,
     fill("{\"model\":\"gpt-4o\",$msg,\"x\":[", '"",', ']}')],
    ['nulls', '/v1/chat/completions', 200,
     fill("{\"model\":\"gpt-4o\",$msg,\"x\":[", 'null,', ']}')],
);

my %peak;

# the provider's answer from nginx itself: the stub would spend seconds
# decoding each body, and only the gateway's memory is measured here; its
# "return" drops the body as it reads it
my $provider = TG::free_port();
my $http = qq{
    server {
        listen 127.0.0.1:$provider;
        location / {
            default_type application/json;
            return 200 '{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":0}}';
        }
    }
};
my $server = qq{
    location / {
        tokenguard on;
        tokenguard_user \$http_x_user;
        proxy_pass http://127.0.0.1:$provider;
    }
};

for my $b (@bodies) {
    my ($name, $path, $status, $body) = @$b;
    my $t = TG->new(http => $http, server => $server);
    my %h = ('X-User' => 'alice', 'Content-Type' => 'application/json');
    my $r = $t->post('/v1/chat/completions', '{"model":"gpt-4o",' . $msg
                     . '}', \%h);
    is($r->{status}, 200, "$name: a small request first");
    my ($w) = $t->worker_pids;
    my $idle = hwm($w);

    $r = $t->post($path, $body, \%h);
    is($r->{status}, $status, "$name: $status");
    is($r->{headers}{'x-tokenguard-code'}, 'invalid_request',
       "$name: invalid_request") if $status == 400;
    like($r->{json}{error}{message} // '', qr/more JSON values than one per/,
         "$name: the message says why") if $status == 400;

    my $used = hwm($w) - $idle;
    $peak{$name} = $used;
    cmp_ok($used, '<', $BOUND, sprintf("%s: peak +%.1f MB for %.1f MB",
           $name, $used / 1e6, length($body) / 1e6)) if $MEASURE;
    $t->stop;
}

# several at once, on two workers
{
    my $t = TG->new(workers => 2, http => $http, server => $server);
    my %h = ('X-User' => 'alice', 'Content-Type' => 'application/json');
    $t->post('/v1/chat/completions', '{"model":"gpt-4o",' . $msg . '}', \%h)
        for 1 .. 4;
    my %idle = map { $_ => hwm($_) } $t->worker_pids;
    my @st = $t->parallel(map { ['POST', $bodies[$_ % 4][1],
                                  $bodies[$_ % 4][3], \%h] } 0 .. 7);
    is_deeply(\@st, [(200) x 8], 'eight tiny-value bodies at once: all 200');
    for my $w ($t->worker_pids) {
        my $used = hwm($w) - ($idle{$w} // 0);
        # each worker may hold the bodies of the requests it has read
        cmp_ok($used, '<', $BOUND + 8 * $SIZE,
               sprintf('worker %d: peak +%.1f MB', $w, $used / 1e6))
            if $MEASURE;
    }
    $t->stop;
}

if ($MEASURE) {
    diag(sprintf("%-36s +%6.1f MB", $_, $peak{$_} / 1e6)) for sort keys %peak;
}

done_testing;
