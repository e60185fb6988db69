# A client that leaves at every stage: before its body is whole
# (Content-Length, chunked, spilled to a temp file), while the ledger
# waits for Redis, while the provider thinks, in the middle of a stream
# or of a JSON answer, right after sending.  Afterwards no reservation is
# left, nothing is counted for a request that never reached the
# ledger or the provider, the worst case for one the provider got and
# did not answer yet, what was relayed is settled once
# (docs/accounting.md), and nothing is counted twice once the
# journal has had time to replay.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(ceil strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use TG;

my $month = strftime('%Y-%m', gmtime);
my $true = JSON::PP::true;

# a Redis timeout longer than the stall below, so the request waits
my $t = TG->new(redis_timeout => '3s', server => q{
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    tokenguard on;
    location / {
        proxy_pass http://stub;
        proxy_buffering off;
    }
    location /spill/ {
        client_body_buffer_size 1k;
        proxy_pass http://stub/;
    }
});

my $msgs = [{ role => 'user', content => 'hello there' }];
my $chat = JSON::PP->new->canonical->encode({ model => 'gpt-4o',
                                              messages => $msgs });
my (%final, $n);

# what a scope holds once nothing is in flight: with budget leases (the
# default) a worker's slice stays reserved until the scope has been idle
# for 3 s and the give-back is flushed, so wait for money and requests
sub hash_of {
    my ($scope) = @_;
    TG::wait_for(sub {
        my $h = $t->hash("tg:{$scope}:$month");
        !($h->{reserved_requests} // 0) && !($h->{reserved_usd} // 0)
    }, 10);
    return $t->hash("tg:{$scope}:$month");
}

# the request never reached the ledger, or was released: nothing counted
sub nothing {
    my ($name, $u, $status) = @_;
    my $log = $t->last_log;
    is($log->{status}, $status, "$name: logged as $status");
    is($log->{usage_source}, '', "$name: nothing settled");
    for my $scope ("u:$u", "t:t$u") {
        my $h = hash_of($scope);
        is($h->{requests} // 0, 0, "$name: no request counted ($scope)");
        is($h->{usd} // 0, 0, "$name: nothing charged ($scope)");
        is($h->{reserved_requests} // 0, 0, "$name: nothing reserved ($scope)");
        is($h->{reserved_usd} // 0, 0, "$name: no money reserved ($scope)");
    }
    $final{$u} = 0;
}

# settled once, user and team alike, as the access log says
sub settled_once {
    my ($name, $u, $source) = @_;
    my $log = $t->last_log;
    is($log->{usage_source}, $source, "$name: usage source $source");
    my $h = hash_of("u:$u");
    my $team = hash_of("t:t$u");
    is($h->{requests}, 1, "$name: one request");
    is($h->{reserved_requests}, 0, "$name: nothing left reserved");
    is($h->{reserved_usd}, 0, "$name: no money left reserved");
    is($h->{tokens_in}, $log->{prompt_tokens}, "$name: tokens in as logged");
    is($h->{tokens_out}, $log->{completion_tokens},
       "$name: tokens out as logged");
    is($h->{usd}, sprintf('%.0f', $log->{cost_usd} * 1e6),
       "$name: charged as logged");
    is($team->{$_} // 0, $h->{$_} // 0, "$name: team $_ as the user's")
        for qw(requests usd tokens_in tokens_out reserved_usd estimated);
    $final{$u} = $h->{usd};
    return $h;
}

sub user { $n++; ("c$n", { 'X-User' => "c$n", 'X-Team' => "tc$n" }) }


# ---- before the body is whole: never reaches the ledger or the provider

for my $case (['headers only', '/v1/chat/completions', 0],
              ['half a body', '/v1/chat/completions', 40],
              ['half a body spilled to a temp file',
               '/spill/v1/chat/completions', 100_000])
{
    my ($name, $path, $bytes) = @$case;
    my ($u, $h) = user();
    my $body = $name =~ /spill/
        ? JSON::PP->new->encode({ model => 'gpt-4o', messages =>
              [{ role => 'user', content => 'x' x 200_000 }] })
        : $chat;
    $t->clear_upstream;
    $t->http10('POST', $path, $body, $h, body_bytes => $bytes);
    nothing("client gone: $name", $u, 400);
    is(scalar $t->upstream_all, 0, "client gone: $name: nothing went upstream");
}

# a chunked body cut after its first chunk
{
    my ($u, $h) = user();
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->{port}) or die;
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-User: $u\r\n"
        . "X-Team: t$u\r\nX-TG-Test-Id: " . ++$t->{test_id} . "\r\n"
        . "Transfer-Encoding: chunked\r\n\r\n"
        . sprintf("%x\r\n%s\r\n", 20, substr($chat, 0, 20));
    sleep 0.1;
    close $s;
    nothing('client gone: half a chunked body', $u, 400);
}


# ---- the body is whole: the ledger has reserved, or is about to

# while the reservation waits for a stalled Redis: when Redis answers,
# nginx finds the client gone before or while it connects upstream (499)
# and the reservation is released
{
    my ($u, $h) = user();
    kill 'STOP', $t->{redis_pid};
    $t->http10('POST', '/v1/chat/completions', $chat, $h, close_after => 0.3);
    sleep 0.3;
    kill 'CONT', $t->{redis_pid};
    nothing('client gone while waiting for redis', $u, 499);
}

# while the provider thinks
{
    my ($u, $h) = user();
    $t->clear_upstream;
    $t->http10('POST', '/v1/chat/completions', $chat,
               { %$h, 'X-Stub-Delay-Ms' => 1000 }, close_after => 0.3);
    if (TG::wait_for(sub { scalar $t->upstream_all }, 1)) {
        # the provider got it and bills it: the worst case reserved
        my $s = settled_once('client gone while the provider thinks', $u,
                             'estimate');
        is($s->{tokens_out}, 4096,
           'client gone while the provider thinks: the output reserved');
    } else {
        # a slow nginx (valgrind): gone before the request went upstream
        nothing('client gone before the provider had it', $u, 499);
    }
}

# right after sending: either the answer was written before nginx saw the
# client go (charged the provider's usage) or not (released); never more
{
    my ($u, $h) = user();
    $t->http10('POST', '/v1/chat/completions', $chat,
               { %$h, 'X-Stub-Usage' => '1000,200' }, close_after => 0);
    my $log = $t->last_log;
    if ($log->{status} == 200) {
        my $s = settled_once('client gone right after sending', $u,
                             'provider');
        is($s->{usd}, 4500, 'client gone right after sending: the usage');
    } elsif ($log->{usage_source} eq '') {
        # nginx saw the client go before it sent anything upstream
        nothing('client gone right after sending', $u, 499);
    } else {
        my $s = settled_once('client gone right after sending', $u,
                             'estimate');
        is($s->{tokens_out}, 4096,
           'client gone right after sending: the output reserved');
    }
}


# ---- mid-answer: what was relayed is charged, once

# streams of each dialect, left after a few events: input is the prompt
# estimate, output at least the bytes the client read / 4 (nginx relayed
# them, and maybe more), well under the whole answer
for my $case (
    ['openai chat', '/v1/chat/completions',
     { model => 'gpt-4o', stream => $true, messages => $msgs }],
    ['openai responses', '/v1/responses',
     { model => 'gpt-4o', stream => $true, input => 'hello there' }],
    ['gemini', '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
     { contents => [{ parts => [{ text => 'hello there' }] }] }],
    ['anthropic', '/v1/messages',
     { model => 'claude-sonnet-4-5', max_tokens => 5000, stream => $true,
       messages => $msgs }])
{
    my ($name, $path, $body) = @$case;
    my ($u, $h) = user();
    my $r = $t->http10('POST', $path, $body,
                       { %$h, 'X-Stub-Words' => 1000, 'X-Stub-Usage' => '1000,200',
                         'X-Stub-Event-Delay-Ms' => 5 },
                       read_until => qr/w30 /);
    like($r->{body}, qr/w30 /, "$name stream: the client read 30 words");
    ok(!$r->{eof}, "$name stream: and left");
    my $read = length $r->{body};
    my $s;
    if ($name ne 'anthropic') {
        $s = settled_once("$name stream, client gone", $u, 'estimate');
        is($s->{estimated}, 1, "$name stream, client gone: estimated");
        cmp_ok($s->{tokens_in}, '<', 100,
               "$name stream, client gone: input is the prompt estimate");
    } else {
        # message_start carried the input: kept
        $s = hash_of("u:$u");
        is($s->{requests}, 1, "$name stream, client gone: one request");
        is($s->{reserved_usd}, 0, "$name stream, client gone: released");
        is($s->{tokens_in}, 1000, "$name stream, client gone: the input"
           . ' message_start reported');
        $final{$u} = $s->{usd};
    }
    cmp_ok($s->{tokens_out}, '>=', int($read / 4), "$name stream, client"
           . " gone: output at least what the client read / 4 ($read)");
    cmp_ok($s->{tokens_out}, '<', 1000 * 100 / 4,
           "$name stream, client gone: less than the whole answer");
}

# a 3 MB JSON answer, left after 64 KB: the usage at its end never
# passed, so it is an estimate; unless nginx had read the whole answer
# from the provider before it saw the client go (a loaded machine), and
# then the provider's usage is right
{
    my ($u, $h) = user();
    my $r = $t->http10('POST', '/v1/chat/completions', $chat,
                       { %$h, 'X-Stub-Words' => 400_000,
                         'X-Stub-Usage' => '1000,200' },
                       read_until => qr/^(?:.{32768}){2}/s);
    ok(!$r->{eof}, 'JSON answer, client gone: left after 64 KB');
    if ($t->last_log->{usage_source} eq 'provider') {
        my $s = settled_once('JSON answer, client gone', $u, 'provider');
        is($s->{usd}, 4500, 'JSON answer, client gone: read whole, the'
           . ' usage');
    } else {
        my $s = settled_once('JSON answer, client gone', $u, 'estimate');
        cmp_ok($s->{tokens_out}, '>=', 16384, 'JSON answer, client gone:'
               . ' output at least what the client read / 4');
        cmp_ok($s->{tokens_out}, '<', 3_000_000 / 4,
               'JSON answer, client gone: less than the whole answer');
    }
}


# a replay period later, every counter is as it was: nothing twice
sleep 1.2;
for my $u (sort keys %final) {
    my $h = $t->hash("tg:{u:$u}:$month");
    is($h->{usd} // 0, $final{$u}, "$u: still charged once");
    ok(!$h->{reserved_requests}, "$u: still nothing reserved");
}

$t->stop;
done_testing;
