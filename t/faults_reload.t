# nginx itself under load: `nginx -s reload` (SIGHUP to the master) and a
# worker killed (SIGKILL).  A reload loses no settle and counts none
# twice: the old workers finish their requests, and what they cannot
# write any more waits in the journal for the new ones.  A killed worker's
# requests in flight are never settled (their clients saw the connection
# reset); their reservations count until the reservation TTL (8s here),
# then stop.  Every request costs its worst case (max_tokens 0, 7 prompt
# tokens of gpt-4o: 18 micro-USD), so the counts are exact.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use TG;

plan skip_all => 'valgrind runs nginx as one process: no reload, no worker'
    . ' to kill' if $ENV{TG_VALGRIND};

my $month = strftime('%Y-%m', gmtime);

my $t = TG->new(workers => 2, allow_log => qr/exited on signal 9/,
                server => q{
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    tokenguard_reservation_ttl 8s;
    location / {
        tokenguard on;
        # which worker sent a request (reservation ids do not say)
        proxy_set_header X-Worker $pid;
        proxy_pass http://stub;
    }
});

my $body = { model => 'gpt-4o', max_tokens => 0,
             messages => [{ role => 'user', content => 'hello there' }] };

sub req {
    my ($user, %h) = @_;
    return ['POST', '/v1/chat/completions', $body,
            { 'Content-Type' => 'application/json', 'X-User' => $user,
              'X-Team' => "t$user", 'X-Stub-Usage' => '7,0', %h }];
}

sub count { my ($s, @l) = @_; scalar grep { $_ eq $s } @l }

sub field {
    my ($scope, $f) = @_;
    return $t->hash("tg:{$scope}:$month")->{$f} // 0;
}

# waits (at most 10s: the journal replays every second) for $n requests
# of user and team, then checks the counters to the micro-dollar
sub ledger_is {
    my ($name, $u, $n, $secs) = @_;
    for my $scope ("u:$u", "t:t$u") {
        TG::wait_for(sub { field($scope, 'requests') >= $n }, $secs);
        my $h = $t->hash("tg:{$scope}:$month");
        is($h->{requests} // 0, $n, "$name: $scope: $n requests counted");
        is($h->{usd} // 0, 18 * $n, "$name: $scope: spend exact");
        is($h->{tokens_in} // 0, 7 * $n, "$name: $scope: tokens exact");
    }
}

sub nothing_reserved {
    my ($name, $u) = @_;
    for my $scope ("u:$u", "t:t$u") {
        # a slice the probe was admitted from goes back once idle (3 s by
        # default, checked every 20 ms): well inside 6 s
        TG::wait_for(sub { !field($scope, 'reserved_requests')
                           && !field($scope, 'reserved_usd') }, 6);
        is(field($scope, 'reserved_requests'), 0,
           "$name: $scope: no reservation left");
        is(field($scope, 'reserved_usd'), 0, "$name: $scope: no money reserved");
    }
}


# ---- a reload with requests in flight, and more during it

{
    my $h1 = $t->parallel_start(map { req('ra', 'X-Stub-Delay-Ms' => 1000) }
                                1 .. 16);
    ok(TG::wait_for(sub { field('u:ra', 'reserved_requests') >= 3 }),
       'reload: requests in flight');
    my %old = map { $_ => 1 } $t->worker_pids;
    ok($t->reload, 'reload: new workers run');
    my $h2 = $t->parallel_start(map { req('ra', 'X-Stub-Delay-Ms' => 200) }
                                1 .. 8);
    my @st = ($t->parallel_wait($h1), $t->parallel_wait($h2));
    is(count(200, @st), 24, 'reload: all 24 requests got 200');
    ok(TG::wait_for(sub { !grep { $old{$_} } $t->worker_pids }),
       'reload: the old workers exited');
    ledger_is('reload', 'ra', 24);
    nothing_reserved('reload', 'ra');
}

# a request whose body is still coming when the reload happens: its old
# worker finishes it, and Redis is up
{
    my $json = JSON::PP->new->encode($body);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->{port}) or die;
    binmode $s;
    print $s "POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\n"
        . "X-User: rb\r\nX-Team: trb\r\nX-Stub-Usage: 7,0\r\n"
        . "X-TG-Test-Id: " . ++$t->{test_id} . "\r\n"
        . "Content-Length: " . length($json) . "\r\n\r\n"
        . substr($json, 0, 20);
    $s->flush;
    sleep 0.2;
    ok($t->reload, 'slow body: reloaded while the body was coming');
    print $s substr($json, 20);
    $s->flush;
    my $got = '';
    my $sel = IO::Select->new($s);
    my $end = time + 10;
    while (time < $end && $sel->can_read(0.5)) {
        sysread($s, $got, 65536, length $got) or last;
    }
    close $s;
    my ($status) = $got =~ m{^HTTP/1\.\d (\d+)};
    is($status, 200, 'slow body across a reload: 200');
    ledger_is('slow body across a reload', 'rb', 1, 1);
    nothing_reserved('slow body across a reload', 'rb');
}


# ---- a worker killed with requests in flight

{
    my $h1 = $t->parallel_start(map { req('ka', 'X-Stub-Delay-Ms' => 1500) }
                                1 .. 16);
    # the provider has them: kill the worker that sent the most
    my %by;
    ok(TG::wait_for(sub {
        %by = ();
        $by{ $_->{headers}{'x-worker'} // '' }++
            for grep { ($_->{headers}{'x-user'} // '') eq 'ka' }
                $t->upstream_all;
        my $n = 0;
        $n += $_ for values %by;
        $n >= 6 }), 'kill: requests in flight');
    my ($victim) = sort { $by{$b} <=> $by{$a} } keys %by;
    kill 'KILL', $victim;
    my $killed = time;
    sleep 0.5;
    my @st1 = $t->parallel_wait($h1);
    # once the living settled theirs, what is still reserved is the dead's
    # (read well inside the TTL: the next reservation purges expired ones)
    my $dead = count(599, @st1);
    my %held;
    TG::wait_for(sub {
        %held = map { $_ => scalar @{ $t->redis('HKEYS', "tg:{$_}:resv") } }
                'u:ka', 't:tka';
        $held{'u:ka'} <= $dead }, 2);
    my $h2 = $t->parallel_start(map { req('ka', 'X-Stub-Delay-Ms' => 200) }
                                1 .. 8);
    my @st = (@st1, $t->parallel_wait($h2));
    my ($ok, $reset) = (count(200, @st), count(599, @st));
    is($ok + $reset, 24, "kill: each got 200 or a reset connection"
       . " ($ok 200, $reset reset)");
    ok($reset >= 1, 'kill: the killed worker had requests in flight');
    # the dead requests' reservations are held until their TTL...
    ok($held{'u:ka'} >= 1 && $held{'u:ka'} <= $reset, "kill: the dead worker"
       . " held $held{'u:ka'} reservations, for some of the $reset resets");
    # the team is reserved once the user has admitted: a request killed
    # between the two holds only the user's
    ok($held{'t:tka'} >= 1 && $held{'t:tka'} <= $held{'u:ka'},
       "kill: the team held $held{'t:tka'}, at most as many as the user");
    ledger_is('kill', 'ka', $ok);
    # ...and then stop counting: any script of the scope purges them (a
    # request the provider fails, which counts nothing)
    sleep $killed + 9.1 - time if $killed + 9.1 > time;
    my $r = $t->request(@{ req('ka', 'X-Stub-Status' => 500) });
    is($r->{status}, 500, 'kill: a probe after the TTL');
    nothing_reserved('kill, after the TTL', 'ka');
    is(scalar @{ $t->redis('HKEYS', 'tg:{u:ka}:resv') }, 0,
       'kill, after the TTL: the dead reservations are gone');
    ledger_is('kill, after the TTL', 'ka', $ok);
    ok(TG::wait_for(sub { (() = $t->worker_pids) == 2 }),
       'kill: two workers again');
}

$t->stop;
done_testing;
