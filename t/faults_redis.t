# Redis failing under load, with `tokenguard_on_store_error closed` and
# `open` side by side: killed (SIGKILL) and restarted, its connections
# reset mid-pipeline (CLIENT KILL), stalled past the timeout (SIGSTOP,
# DEBUG SLEEP), scripts flushed again and again, error replies (OOM,
# READONLY, WRONGTYPE).  After each: the counters equal what the clients
# were admitted (closed) or admitted and journaled (open), never more,
# never less, and no reservation is left once the reservation TTL (2s
# here) has passed.  Every request costs its worst case (max_tokens 0,
# 7 prompt tokens of gpt-4o: 18 micro-USD), so the counts are exact.
# t/ledger_faults.t has the single-request versions.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use TG;

my $month = strftime('%Y-%m', gmtime);
# budget leases are the default; t/lease_off_faults_redis.t sets 0
my $leased = ($ENV{TG_LEASE} // 1) ne '0';

my $server = q{
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    tokenguard_reservation_ttl 2s;
    location /closed/ {
        tokenguard on;
        proxy_pass http://stub/;
    }
    location /open/ {
        tokenguard on;
        tokenguard_on_store_error open;
        proxy_pass http://stub/;
    }
    location /long/ {
        tokenguard on;
        tokenguard_reservation_ttl 1m;
        proxy_pass http://stub/;
    }
    location /plain {
        return 200 "plain\n";
    }
};

sub count { my ($s, @l) = @_; scalar grep { $_ eq $s } @l }

sub req {
    my ($path, $user, $team, %h) = @_;
    return ['POST', "$path/v1/chat/completions",
            { model => 'gpt-4o', max_tokens => 0,
              messages => [{ role => 'user', content => 'hello there' }] },
            { 'Content-Type' => 'application/json', 'X-User' => $user,
              ($team ? ('X-Team' => $team) : ()), 'X-Stub-Usage' => '7,0',
              %h }];
}

# n requests at once, in the background
sub burst {
    my ($t, $n, @req) = @_;
    return $t->parallel_start(map { req(@req) } 1 .. $n);
}

# n closed and n open requests, interleaved, at once; pair_wait() gives
# their statuses back as two lists
sub pair {
    my ($t, $n, $closed, $open) = @_;
    return $t->parallel_start(map { (req(@$closed), req(@$open)) } 1 .. $n);
}

sub pair_wait {
    my ($t, @h) = @_;
    my (@c, @o, @el);
    for my $h (@h) {
        my @s = $t->parallel_wait($h);
        push @el, @{ $t->{elapsed} };
        push @{ $_ % 2 ? \@o : \@c }, $s[$_] for 0 .. $#s;
    }
    $t->{elapsed} = \@el;
    return (\@c, \@o);
}

sub field {
    my ($t, $scope, $f) = @_;
    return $t->hash("tg:{$scope}:$month")->{$f} // 0;
}

# a request the provider fails: its reservation script purges what
# expired, and it counts nothing.  Tried again while it gets 503: after
# an outage nginx reconnects only once its backoff (up to 5s) has passed.
sub probe {
    my ($t, $user, $team) = @_;
    my $status;
    TG::wait_for(sub {
        $status = $t->request(@{ req('/closed', $user, $team,
                                     'X-Stub-Status' => 500) })->{status};
        $status != 503;
    }, 10);
    return $status;
}

# waits (at most $secs, plus a lease flush) for $n requests counted in
# $scope, then checks the counters to the micro-dollar
sub ledger_is {
    my ($t, $name, $scope, $n, $secs) = @_;
    TG::wait_for(sub { field($t, $scope, 'requests') >= $n },
                 ($secs // 10) + 2);
    my $h = $t->hash("tg:{$scope}:$month");
    is($h->{requests} // 0, $n, "$name: $scope: $n requests counted");
    is($h->{usd} // 0, 18 * $n, "$name: $scope: spend exact");
    is($h->{tokens_in} // 0, 7 * $n, "$name: $scope: tokens exact");
}

sub nothing_reserved {
    my ($t, $name, $scope) = @_;
    # a release is written after the client has its answer; with leases
    # a slice goes back once its scope is idle (3 s by default)
    TG::wait_for(sub { !field($t, $scope, 'reserved_requests')
                       && !field($t, $scope, 'reserved_usd') }, 10);
    my $h = $t->hash("tg:{$scope}:$month");
    is($h->{reserved_requests} // 0, 0, "$name: $scope: no reservation left");
    is($h->{reserved_usd} // 0, 0, "$name: $scope: no money reserved");
    is($h->{reserved_tokens} // 0, 0, "$name: $scope: no tokens reserved");
}

# after the TTL: a probe per user purges what expired (the scripts purge
# the scopes they touch), then nothing may be reserved, and the counts
# are still those checked before (a late replay counts nothing twice)
sub expire_and_check {
    my ($t, $name, @users) = @_;
    sleep 3.1;
    for my $s (@users) {
        my ($u, $team, $n) = @$s;
        is(probe($t, $u, $team), 500, "$name: probe for $u");
        nothing_reserved($t, "$name, after the TTL", "u:$u");
        nothing_reserved($t, "$name, after the TTL", "t:$team") if $team;
        ledger_is($t, "$name, after the TTL", "u:$u", $n, 0) if defined $n;
    }
}

sub max { my $m = 0; $_ > $m and $m = $_ for @_; $m }

# requests of $user the provider has received (a leased request reserves
# nothing of its own in Redis, so "in flight" is read at the provider)
sub upstream_of {
    my ($t, $user) = @_;
    return scalar grep { ($_->{headers}{'x-user'} // '') eq $user }
                       $t->upstream_all;
}


# ---- A: two workers, Redis with an AOF fsynced on every write, so that a
# SIGKILL loses nothing it acknowledged

my $multi = TG->new(workers => 2, server => $server,
                    redis_args => ['--appendonly', 'yes', '--appendfsync',
                                   'always', '--enable-debug-command',
                                   'local']);
my @check;

# killed and restarted mid-load
{
    my $h1 = pair($multi, 10, ['/closed', 'kc', 'tk', 'X-Stub-Delay-Ms' => 1500],
                  ['/open', 'ko', undef, 'X-Stub-Delay-Ms' => 1500]);
    ok(TG::wait_for(sub { field($multi, 'u:kc', 'reserved_requests') >= 2
                          && field($multi, 'u:ko', 'reserved_requests') >= 2 }),
       'kill: requests in flight');
    $multi->stop_redis('KILL');
    # answered while Redis is down: a slow fork must not let them see it
    # back.  A worker that holds a slice admits from it until its next
    # lease call fails (at most one flush, 1s), so with leases the
    # bursts go on until a closed one is refused, for at most 3s.
    my (@c2, @o2);
    my $down = time;
    do {
        my ($c, $o) = pair_wait($multi,
                                pair($multi, 6, ['/closed', 'kc', 'tk'],
                                     ['/open', 'ko']));
        push @c2, @$c;
        push @o2, @$o;
        sleep 0.2 unless count(503, @c2);
    } while ($leased && !count(503, @c2) && time - $down < 3);
    $multi->start_redis;
    my $h3 = pair($multi, 6, ['/closed', 'kc', 'tk', 'X-Stub-Delay-Ms' => 200],
                  ['/open', 'ko', undef, 'X-Stub-Delay-Ms' => 200]);
    my ($c, $o) = pair_wait($multi, $h1, $h3);
    my @c = (@$c, @c2);
    my @o = (@$o, @o2);
    my $all = @c;
    my $n = count(200, @c);
    is($n + count(503, @c), $all, "kill, closed: each got 200 or 503"
       . " ($n of $all 200)");
    ok(count(503, @c2) >= 1, 'kill, closed: 503 while redis was down');
    is(count(200, @o), $all, 'kill, open: every request got 200');
    ok(TG::wait_for(sub { $multi->request(@{ req('/closed', 'kc2') })
                          ->{status} == 200 }), 'kill: serving again');
    ledger_is($multi, 'kill, closed', 'u:kc', $n);
    ledger_is($multi, 'kill, closed', 't:tk', $n);
    ledger_is($multi, 'kill, open', 'u:ko', $all);
    push @check, ['kc', 'tk', $n], ['ko', undef, $all];
}

# its connections reset while commands are pipelined on them: requests
# over 1.2s; Redis is held in DEBUG SLEEP for 80 ms so that commands queue
# on nginx's connections, and the CLIENT KILL sent during the sleep runs
# after them, before their replies are written: until one hit commands
# in flight (a bare CLIENT KILL loop rarely does on a fast machine)
{
    my $in_flight = qr/(?:closed the connection|cannot read); failing the/;
    my $from = length $multi->error_log;
    my $new_log = sub { substr $multi->error_log, $from };
    my $killer = fork // die;
    if ($killer == 0) {
        my $end = time + 3;
        while (time < $end && $new_log->() !~ $in_flight) {
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $multi->{redis_port})
                or die "redis: $!";
            print $s "DEBUG SLEEP 0.08\r\n";
            sleep 0.04;
            eval { $multi->redis('CLIENT', 'KILL', 'TYPE', 'normal') };
            close $s;
            sleep 0.01;
        }
        POSIX::_exit(0);
    }
    my ($c, $o) = pair_wait($multi, $multi->parallel_start(map {
        ([@{ req('/closed', 'rc', 'rt', 'X-Stub-Delay-Ms' => 100) }, 0.1 * $_],
         [@{ req('/open', 'ro', undef, 'X-Stub-Delay-Ms' => 100) }, 0.1 * $_])
    } 0 .. 11));
    waitpid $killer, 0;
    my @c = @$c;
    my @o = @$o;
    my $n = count(200, @c);
    is($n + count(503, @c), 12, "reset, closed: each got 200 or 503 ($n 200)");
    is(count(200, @o), 12, 'reset, open: every request got 200');
    like($new_log->(), $in_flight,
         'reset: connections were reset with commands in flight');
    ledger_is($multi, 'reset, closed', 'u:rc', $n);
    ledger_is($multi, 'reset, closed', 't:rt', $n);
    ledger_is($multi, 'reset, open', 'u:ro', 12);
    push @check, ['rc', 'rt', $n], ['ro', undef, 12];
}

expire_and_check($multi, 'A', @check);
$multi->stop;


# ---- B: one worker, so that the plain location is served by the worker
# whose AI requests wait for Redis

my $single = TG->new(redis_timeout => '600ms', server => $server,
                     redis_args => ['--enable-debug-command', 'local']);
@check = ();

# READONLY: Redis turned into a read-only replica of a second one (first:
# the sync empties it)
{
    my $port2 = TG::free_port();
    my $r2 = fork // die;
    if ($r2 == 0) {
        open STDOUT, '>', '/dev/null';
        exec 'redis-server', '--bind', '127.0.0.1', '--port', $port2,
             '--save', '', '--appendonly', 'no', '--dir', $single->{dir};
        die;
    }
    TG::wait_port($port2, 'second redis');
    my $w = burst($single, 4, '/closed', 'yc', undef, 'X-Stub-Delay-Ms' => 800);
    ok(TG::wait_for(sub { upstream_of($single, 'yc') == 4 }),
       'READONLY: 4 admitted and in flight');
    $single->redis('REPLICAOF', '127.0.0.1', $port2);
    ok(TG::wait_for(sub { ($single->redis('HINCRBY', 'x', 'y', 1)->{error}
                           // '') =~ /^READONLY/ }, 5),
       'READONLY: a replica now, refusing writes');
    my @c = map { $single->request(@{ req('/closed', 'yc2') })->{status} }
            1 .. 2;
    my @o = map { $single->request(@{ req('/open', 'yo') })->{status} } 1 .. 2;
    is("@c", '503 503', 'READONLY, closed: 503');
    is("@o", '200 200', 'READONLY, open: 200');
    is(count(200, $single->parallel_wait($w)), 4,
       'READONLY: the 4 in flight got 200');
    $single->redis('REPLICAOF', 'NO', 'ONE');
    kill 'TERM', $r2;
    waitpid $r2, 0;
    ledger_is($single, 'READONLY, admitted before', 'u:yc', 4, 1);
    ledger_is($single, 'READONLY, open', 'u:yo', 2, 0);
    ledger_is($single, 'READONLY, closed', 'u:yc2', 0, 0);
    push @check, ['yc'], ['yc2'], ['yo'];
}

# the plain location, three times while Redis is stalled: each at once
sub plain_fast {
    my ($name) = @_;
    my $worst = 0;
    for (1 .. 3) {
        my $t0 = time;
        my $r = HTTP::Tiny->new(timeout => 5)->get($single->url('/plain'));
        $worst = max($worst, time - $t0);
        return fail("$name: plain location: $r->{status}")
            if $r->{status} != 200;
        sleep 0.05;
    }
    ok($worst < 1, sprintf "$name: the worker answers a plain location"
       . ' at once (worst %.3fs)', $worst);
}

for my $stall (['SIGSTOP', sub { kill 'STOP', $single->{redis_pid}; 0 },
                sub { kill 'CONT', $single->{redis_pid} }],
               ['DEBUG SLEEP', sub {
                    my $pid = fork // die;
                    if ($pid == 0) {
                        $single->redis('DEBUG', 'SLEEP', '4.5');
                        POSIX::_exit(0);
                    }
                    sleep 0.2;
                    return $pid;
                }, sub { waitpid $_[0], 0 }])
{
    my ($name, $start, $end) = @$stall;
    my ($uc, $uo) = $name eq 'SIGSTOP' ? ('sc', 'so') : ('dc', 'do');
    my $stalled = $start->();
    my $h = pair($single, 4, ['/closed', $uc, "${uc}t"], ['/open', $uo]);
    plain_fast($name);
    my ($c, $o) = pair_wait($single, $h);
    my @c = @$c;
    my @o = @$o;
    my $took = max(@{ $single->{elapsed} });
    is(count(503, @c), 4, "$name, closed: 503 once the timeout passed");
    is(count(200, @o), 4, "$name, open: 200");
    ok($took < 3, sprintf "$name: each answered after the timeout, not"
       . ' the stall (slowest %.2fs)', $took);
    $end->($stalled);
    is(probe($single, 'probe'), 500, "$name: serving again");
    ledger_is($single, "$name, open", "u:$uo", 4);
    ledger_is($single, "$name, closed", "u:$uc", 0, 0);
    push @check, [$uc, "${uc}t", 0], [$uo, undef, 4];
}
like($single->error_log, qr/redis at "[^"]+" timed out/,
     'stall: timeout logged');

# SCRIPT FLUSH once under load: the settles (and reservations) that meet
# NOSCRIPT load the scripts again and are sent once more
{
    my $w = burst($single, 20, '/closed', 'nc', 'nt', 'X-Stub-Delay-Ms' => 300);
    ok(TG::wait_for(sub { field($single, 'u:nc', 'reserved_requests') >= 5 }),
       'SCRIPT FLUSH: requests in flight');
    $single->redis('SCRIPT', 'FLUSH');
    my @c = $single->parallel_wait($w);
    is(count(200, @c), 20, 'SCRIPT FLUSH under load: all 20 admitted')
        or diag "@c";
    # with leases the first script after the flush may be the next lease
    # call (at most one flush, 1s, after the requests)
    my $errs = '';
    TG::wait_for(sub {
        $errs = $single->redis('INFO', 'errorstats');
        $errs =~ /errorstat_NOSCRIPT:count=\d/;
    }, 3);
    like($errs, qr/errorstat_NOSCRIPT:count=\d/,
         'SCRIPT FLUSH: redis did answer NOSCRIPT');
    ledger_is($single, 'SCRIPT FLUSH', 'u:nc', 20);
    ledger_is($single, 'SCRIPT FLUSH', 't:nt', 20);
    nothing_reserved($single, 'SCRIPT FLUSH', 'u:nc');
    nothing_reserved($single, 'SCRIPT FLUSH', 't:nt');
}

# SCRIPT FLUSH every 10 ms under load: a flush can fall between a
# command's reload and its resend
{
    my $noscript = sub {
        ($single->redis('INFO', 'errorstats') =~ /errorstat_NOSCRIPT:count=(\d+)/)[0] // 0;
    };
    my $before = $noscript->();
    my $flusher = fork // die;
    if ($flusher == 0) {
        for (1 .. 60) { $single->redis('SCRIPT', 'FLUSH'); sleep 0.01; }
        POSIX::_exit(0);
    }
    my @c = $single->parallel_wait(burst($single, 30, '/closed', 'fc', 'ft',
                                         'X-Stub-Delay-Ms' => 50));
    waitpid $flusher, 0;
    # a command that meets NOSCRIPT is sent again as EVAL with the
    # script's text, which a second flush cannot fail
    ok($noscript->() - $before >= 2, sprintf 'SCRIPT FLUSH storm: %d'
       . ' commands met NOSCRIPT', $noscript->() - $before);
    is(count(200, @c), 30, 'SCRIPT FLUSH storm: all 30 admitted')
        or diag "@c";
    ledger_is($single, 'SCRIPT FLUSH storm', 'u:fc', 30, 2);
}

# the team's reservation gets an error reply after the user's was
# admitted (WRONGTYPE: the team's period key is a string)
{
    $single->redis('SET', "tg:{t:wt}:$month", 'not a hash');
    my @c = map { $single->request(@{ req('/closed', 'wc', 'wt') })->{status} }
            1 .. 2;
    is("@c", '503 503', 'team refused by redis, closed: 503');
    ledger_is($single, 'team refused by redis, closed', 'u:wc', 0, 0);
    nothing_reserved($single, 'team refused by redis, closed: user released',
                     'u:wc');
    my @o = map { $single->request(@{ req('/open', 'wo', 'wt') })->{status} }
            1 .. 3;
    is("@o", '200 200 200', 'team refused by redis, open: 200');
    nothing_reserved($single, 'team refused by redis, open', 'u:wo');
    ledger_is($single, 'team refused by redis, open', 'u:wo', 3, 1);
    $single->redis('DEL', "tg:{t:wt}:$month");
}

# OOM (maxmemory 1, noeviction): requests admitted before settle during
# it; open requests go through; once memory is back all must count
{
    my $day = strftime('%Y-%m-%d', gmtime);
    my $w = burst($single, 4, '/long', 'mc', undef, 'X-Stub-Delay-Ms' => 800);
    my $x = burst($single, 4, '/closed', 'mx', undef, 'X-Stub-Delay-Ms' => 800);
    ok(TG::wait_for(sub { upstream_of($single, 'mc') == 4
                          && upstream_of($single, 'mx') == 4 }),
       'OOM: 8 admitted and in flight');
    # mx also holds a reservation that expired (its worker was killed),
    # which its next script must purge first
    for my $k ("tg:{u:mx}:$month", "tg:{u:mx}:$day") {
        $single->redis('HINCRBY', $k, $_->[0], $_->[1])
            for ['reserved_usd', 18], ['reserved_tokens', 7],
                ['reserved_requests', 1];
    }
    $single->redis('HSET', 'tg:{u:mx}:resv', 'dead-1',
                   "tg:{u:mx}:$month|tg:{u:mx}:$day|18|7|0");
    $single->redis('ZADD', 'tg:{u:mx}:resv:exp', 1000, 'dead-1');
    $single->redis('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    $single->redis('CONFIG', 'SET', 'maxmemory', '1');
    like($single->redis('HINCRBY', 'x', 'y', 1)->{error} // '', qr/^OOM/,
         'OOM: redis refuses writes');
    my @c = map { $single->request(@{ req('/closed', 'mc2') })->{status} }
            1 .. 2;
    my @o = map { $single->request(@{ req('/open', 'mo') })->{status} } 1 .. 2;
    # a lease call's first write (an EXPIRE, which OOM does not refuse)
    # lets the script go on writing, so Redis grants the slice: admitted
    # and counted; a reservation's first write is refused
    is("@c", $leased ? '200 200' : '503 503',
       'OOM, closed: ' . ($leased ? '200 (leased)' : '503'));
    is("@o", '200 200', 'OOM, open: 200');
    is(count(200, $single->parallel_wait($w), $single->parallel_wait($x)), 8,
       'OOM: the 8 in flight got 200');
    like($single->error_log, qr/OOM command not allowed/,
         'OOM: error.log says so') unless $leased;
    $single->redis('CONFIG', 'SET', 'maxmemory', '0');
    # a script that has written once may go on writing under OOM: the
    # settle's first write (a trim) lets it through, unless it has an
    # expired reservation to purge first (mx): that settle, and the
    # index writes, meet OOM and are journaled, replayed within a second
    # or so of memory being back
    ledger_is($single, 'OOM, admitted before', 'u:mc', 4, 1);
    ledger_is($single, 'OOM, open', 'u:mo', 2, 0);
    ledger_is($single, 'OOM, closed', 'u:mc2', $leased ? 2 : 0, 0);
    ledger_is($single, 'OOM, admitted before, an expired reservation'
              . ' to purge (journaled)', 'u:mx', 4, 5);
    my %in;
    TG::wait_for(sub {
        %in = map { $_ => 1 }
              @{ $single->redis('SMEMBERS', "tg:idx:$month:users") || [] };
        $in{mc} && $in{mo} && $in{mx};
    }, 5);
    ok($in{mc} && $in{mo} && $in{mx},
       'OOM: the users are in the period index');
    push @check, ['mc'], ['mx'], ['mc2'], ['mo'];
}

expire_and_check($single, 'B', @check, ['wc', 'wt'], ['wo'], ['nc', 'nt', 20],
                 ['fc', 'ft']);
$single->stop;


# ---- C: the default timeout (1s); a steady trickle of requests to a
# stalled Redis must not keep pushing the timeout back

my $c = TG->new(server => $server, redis_timeout => '1s');
{
    kill 'STOP', $c->{redis_pid};
    my @st = $c->parallel(map { [@{ req('/closed', 'tc') }, 0.45 * $_] }
                          0 .. 5);
    my @el = @{ $c->{elapsed} };
    kill 'CONT', $c->{redis_pid};
    is(count(503, @st), 6, 'a trickle to a stalled redis: 503');
    ok($el[0] < 2, sprintf 'the first request failed after the timeout'
       . ' (%.2fs), not after the trickle stopped', $el[0]);
}
$c->stop;

done_testing;
