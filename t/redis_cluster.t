# Redis Cluster: a real cluster of three masters and three replicas on
# loopback (TG::start_cluster).  Requests in flight for many users spread
# over every master are counted exactly, each in its own user's slot;
# caps hold exactly at the cap; the scripts' keys never mix slots.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $month = strftime('%Y-%m', gmtime);

sub count { my ($s, @l) = @_; scalar grep { $_ eq $s } @l }

# as ledger_concurrency.t: a provider of nginx's own, 7 prompt tokens
# (18 micro-USD) for every request, whatever order they finish in
sub gateway {
    my (%opt) = @_;
    my $provider = TG::free_port();
    my $canned = TG::free_port();
    my $caps = $opt{caps} // '';
    my $rate = $opt{rate} // '200r/s';
    # the provider answers $rate requests a second: limit_req (preaccess)
    # in front of a canned answer in another server, since a "return" in
    # the same location would answer in the rewrite phase, before it
    return TG->new(workers => 2, cluster => 1, %opt, http => qq{
        limit_req_zone \$server_port zone=provider:1m rate=$rate;
        server {
            listen 127.0.0.1:$provider;
            location / {
                limit_req zone=provider burst=1000;
                proxy_pass http://127.0.0.1:$canned;
            }
        }
        server {
            listen 127.0.0.1:$canned;
            location / {
                default_type application/json;
                return 200 '{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":0}}';
            }
        }
    }, server => qq{
        location / {
            tokenguard on;
            tokenguard_user \$http_x_user;
            tokenguard_team \$http_x_team;
            $caps
            proxy_pass http://127.0.0.1:$provider;
        }
        location /closed/ {
            tokenguard on;
            tokenguard_user \$http_x_user;
            proxy_pass http://127.0.0.1:$provider/;
        }
    });
}

sub req {
    my ($t, $user, $team) = @_;
    return [$t, 'POST', '/v1/chat/completions',
            { model => 'gpt-4o', max_tokens => 0,
              messages => [{ role => 'user', content => 'hello there' }] },
            { 'X-User' => $user, ($team ? ('X-Team' => $team) : ()),
              'Content-Type' => 'application/json' }];
}

# the master port that owns key
sub owner {
    my ($t, $masters, $key) = @_;
    my $slot = $t->redis('CLUSTER', 'KEYSLOT', $key);
    for my $port (keys %$masters) {
        for my $r (@{ $masters->{$port} }) {
            return $port if $slot >= $r->[0] && $slot <= $r->[1];
        }
    }
    return undef;
}

my $t = gateway();
my $masters = $t->cluster_masters;
is(scalar(keys %$masters), 3, 'three masters');

# ---- plain routing: 60 users x 4 requests at once, over all masters

my @users = map { "u$_" } 1 .. 60;
my %on;
$on{ owner($t, $masters, "tg:{u:$_}:$month") }++ for @users;
is(scalar(keys %on), 3, 'the users\' keys live on all three masters')
    or diag explain \%on;

my @st = TG::concurrent([map { my $u = $_; map { req($t, $u, 'eng') } 1 .. 4 }
                         @users]);
is(count(200, @st), 240, 'all 240 requests answered 200')
    or diag explain { map { $_ => count($_, @st) } @st };

my $exact = 0;
for my $u (@users) {
    $t->wait_settled("tg:{u:$u}:$month");
    my $h = $t->hash("tg:{u:$u}:$month");
    $exact++ if ($h->{requests} // 0) == 4 && ($h->{usd} // 0) == 4 * 18
                && ($h->{reserved_usd} // 0) == 0;
}
is($exact, 60, 'every user counted exactly: 4 requests, 72 micro-USD');

$t->wait_settled("tg:{t:eng}:$month");
my $team = $t->hash("tg:{t:eng}:$month");
is($team->{requests}, 240, 'the team counted every request once');
is($team->{usd}, 240 * 18, 'the team\'s spend');

# the index is a key of its own slot, on its own master
ok(TG::wait_for(sub {
       ($t->redis('SCARD', "tg:idx:$month:users") // 0) == 60 }),
   'the users\' index names all 60');

# ---- tokenguardctl --cluster: the seed's map, every master's keys

my $c = $t->ctl('--cluster', '--json', 'top', '-n', '100');
is($c->{rc}, 0, 'ctl --cluster top: exit 0') or diag $c->{err};
is($c->{json}{count}, 60, 'ctl --cluster top: all 60 users, from the'
   . ' index on its master');
my $sum = 0;
$sum += $_->{requests} for @{ $c->{json}{rows} || [] };
is($sum, 240, 'ctl --cluster top: their requests, read on every master');
$c = $t->ctl('--cluster', '--json', 'usage', 'team', 'eng');
is($c->{json}{requests}, 240, 'ctl --cluster usage team');

# a seed that owns none of a user's slots: MOVED followed
my ($other) = grep { $_ != owner($t, $masters, "tg:{u:u1}:limits") }
              sort keys %$masters;
$c = $t->ctl('--cluster', '-r', "127.0.0.1:$other", 'limit', 'set',
             'user', 'u1', 'usd_month', '5');
is($c->{rc}, 0, 'ctl --cluster limit set through another seed')
    or diag $c->{err};
is($t->redis('HGET', 'tg:{u:u1}:limits', 'usd_month'), 5000000,
   'the limit is on the owner');
$c = $t->ctl('--json', 'usage', 'user', 'u1');
isnt($c->{rc}, 0, 'without --cluster a key elsewhere is an error');
$c = $t->ctl('--cluster', '--db', '2', 'top');
is($c->{rc}, 2, '--db with --cluster: a usage error');

# ---- caps exact at the cap, for users on every master

$t->stop;

$t = gateway(caps => 'tokenguard_cap user 0.00018usd month;');
$masters = $t->cluster_masters;

# one capped user per master: 10 requests fit each
my %capped;
for my $i (1 .. 200) {
    my $port = owner($t, $masters, "tg:{u:c$i}:$month");
    $capped{$port} //= "c$i";
    last if keys %capped == 3;
}
is(scalar(keys %capped), 3, 'a capped user on each master');

my @cu = sort values %capped;
@st = TG::concurrent([map { my $u = $_; map { req($t, $u) } 1 .. 30 } @cu]);
is(count(200, @st), 30, 'exactly 10 of 30 admitted for each of 3 users');
is(count(429, @st), 60, 'the rest refused with 429');
for my $u (@cu) {
    $t->wait_settled("tg:{u:$u}:$month");
    my $h = $t->hash("tg:{u:$u}:$month");
    is("$h->{requests}/$h->{usd}/$h->{denied}", '10/180/20',
       "$u: 10 counted, at the cap, 20 denied");
}

unlike($t->error_log, qr/CROSSSLOT|MOVED/, 'no CROSSSLOT or MOVED error'
       . ' reached a request');

$t->stop;

# ---- a slot migrated by hand under load: ASK, TRYAGAIN, then MOVED
#
# A manual failover pauses the master's clients until its replica took
# over (up to seconds here, on a busy machine): the store timeout is 5 s
# so that a paused command waits rather than fails.

$t = gateway(redis_timeout => '5s');
$masters = $t->cluster_masters;

sub node_id { my ($t, $port) = @_; $t->redis_at($port, 'CLUSTER', 'MYID') }

# in flight: requests reserve, wait upstream (200 a second), settle
sub load {
    my ($t, $n, @users) = @_;
    return $t->parallel_start(map { my $u = $_; map {
        my $r = req($t, $u, 'ops'); [@$r[1 .. 4], 0.01 * $_] } 1 .. $n }
        @users);
}

sub exact {
    my ($t, $n, @users) = @_;
    my @bad;
    for my $u (@users) {
        $t->wait_settled("tg:{u:$u}:$month");
        my $h = $t->hash("tg:{u:$u}:$month");
        push @bad, "$u: " . join(',', map { "$_=" . ($h->{$_} // 0) }
                                      qw(requests usd reserved_usd))
            unless ($h->{requests} // 0) == $n && ($h->{usd} // 0) == $n * 18
                   && ($h->{reserved_usd} // 0) == 0;
    }
    return @bad;
}

my $key = "tg:{u:mig}:$month";
my $slot = $t->redis('CLUSTER', 'KEYSLOT', $key);
my $src = owner($t, $masters, $key);
my ($dst) = grep { $_ != $src } sort keys %$masters;
my ($src_id, $dst_id) = (node_id($t, $src), node_id($t, $dst));

my $h = load($t, 40, 'mig', 'stay');
sleep 0.1;
is($t->redis_at($dst, 'CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $src_id),
   'OK', 'importing on the target');
is($t->redis_at($src, 'CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $dst_id),
   'OK', 'migrating on the source');
sleep 0.2;
my $moved = 0;
while (1) {
    my $keys = $t->redis_at($src, 'CLUSTER', 'GETKEYSINSLOT', $slot, 100);
    last unless ref $keys eq 'ARRAY' && @$keys;
    my $r = $t->redis_at($src, 'MIGRATE', '127.0.0.1', $dst, '', 0, 5000,
                         'KEYS', @$keys);
    $moved += @$keys;
    sleep 0.1;
}
ok($moved > 0, "$moved keys migrated with requests in flight");

# with leases a scope calls Redis only when a slice is due (a flush, half
# of the room gone, the give-back once idle), so the slot stays half
# moved until one of those calls met it, not for a fixed time
sub redirects {
    my ($t, @ports) = @_;
    my $n = 0;
    for my $port (@ports) {
        my $e = $t->redis_at($port, 'INFO', 'errorstats');
        $n += $1 while $e =~ /errorstat_(?:ASK|TRYAGAIN):count=(\d+)/g;
    }
    return $n;
}
for (1 .. 80) {
    last if redirects($t, $src, $dst);
    select undef, undef, undef, 0.1;
}
for my $port (sort keys %$masters) {
    $t->redis_at($port, 'CLUSTER', 'SETSLOT', $slot, 'NODE', $dst_id);
}
$t->wait_cluster;
my @st2 = $t->parallel_wait($h);
is(count(200, @st2), 80, 'every request of the migration answered 200')
    or diag explain { map { $_ => count($_, @st2) } @st2 };
is(owner($t, $t->cluster_masters, $key), $dst, 'the slot has moved');
my %err;
for my $port ($src, $dst) {
    my $e = $t->redis_at($port, 'INFO', 'errorstats');
    $err{$1} += $2 while $e =~ /errorstat_(\w+):count=(\d+)/g;
}
my $asking = $t->redis_at($dst, 'INFO', 'commandstats')
             =~ /cmdstat_asking:calls=(\d+)/ ? $1 : 0;
diag("migration: " . join(', ', map { "$_ $err{$_}" } sort keys %err)
     . ", ASKING $asking");
ok(($err{ASK} // 0) + ($err{TRYAGAIN} // 0) > 0,
   'the migration was met in flight (ASK or TRYAGAIN answered)');
is_deeply([exact($t, 40, 'mig', 'stay')], [],
          'counts exact across the migration');

# after the move: the old owner says MOVED, the map follows
@st2 = TG::concurrent([map { req($t, 'mig', 'ops') } 1 .. 10]);
is(count(200, @st2), 10, 'after the move: answered');
is_deeply([exact($t, 50, 'mig')], [], 'and counted on the new owner');

# ---- CLUSTER FAILOVER on a replica under load

$key = "tg:{u:fo}:$month";
$src = owner($t, $t->cluster_masters, $key);
my $replica;
for my $port (@{ $t->{cluster_ports} }) {
    my $info = $t->redis_at($port, 'INFO', 'replication');
    $replica = $port if $info =~ /role:slave/ && $info =~ /master_port:$src\b/;
}
ok($replica, "a replica of $src");
$h = load($t, 40, 'fo');
sleep 0.3;
is($t->redis_at($replica, 'CLUSTER', 'FAILOVER'), 'OK', 'CLUSTER FAILOVER');
ok(TG::wait_for(sub {
       $t->redis_at($replica, 'INFO', 'replication') =~ /role:master/ }, 20),
   'the replica is master');
$t->wait_cluster;
@st2 = $t->parallel_wait($h);
is(count(200, @st2), 40, 'every request of the failover answered 200')
    or diag explain { map { $_ => count($_, @st2) } @st2 };
is_deeply([exact($t, 40, 'fo')], [], 'counts exact across the failover');

$t->stop;

# ---- a master SIGKILLed with requests in flight (open): they and those
# sent while its slots have no master are journaled; once the replica is
# promoted the service is back and the journal replays, exactly once
#
# The provider answers 2 requests a second, so most of the 20 first
# requests are reserved and waiting upstream when the master dies; the kill waits
# until the replica has every write the master acknowledged (Redis
# replicates asynchronously: an acknowledged write a SIGKILL beats to
# the replica is lost by Redis, not by tokenguard).

$t = gateway(lease => 0, rate => '2r/s', caps => 'tokenguard_cap user 1usd month;'
                                    . ' tokenguard_on_store_error open;');
$key = "tg:{u:kill}:$month";
$src = owner($t, $t->cluster_masters, $key);
$replica = undef;
for my $port (@{ $t->{cluster_ports} }) {
    my $info = $t->redis_at($port, 'INFO', 'replication');
    $replica = $port if $info =~ /role:slave/ && $info =~ /master_port:$src\b/;
}
ok($replica, "a replica of $src");

$h = $t->parallel_start(map { [@{ req($t, 'kill', 'ops') }[1 .. 4]] } 1 .. 20);
ok(TG::wait_for(sub {
       ($t->redis('HGET', $key, 'reserved_requests') // 0) >= 10 }, 30),
   'kill: 10 or more requests reserved and in flight')
    or diag explain $t->hash($key);
sub offset {
    my ($t, $port, $what) = @_;
    my ($o) = $t->redis_at($port, 'INFO', 'replication') =~ /$what:(\d+)/;
    return $o // -1;
}
ok(TG::wait_for(sub { offset($t, $replica, 'slave_repl_offset')
                      == offset($t, $src, 'master_repl_offset') }),
   'the replica has all the master wrote');
$t->stop_cluster_node($src, 'KILL');
my $killed = time;

# while the slot has no master: open lets them through, journaled
@st2 = TG::concurrent([map { req($t, 'kill', 'ops') } 1 .. 10]);
is(count(200, @st2), 10, 'killed, open: the 10 sent meanwhile answered 200');
@st2 = $t->parallel_wait($h);
is(count(200, @st2), 20, 'killed, open: the 20 in flight answered 200');

ok(TG::wait_for(sub {
       $t->redis_at($replica, 'INFO', 'replication') =~ /role:master/ }, 30),
   'the replica is promoted');
my $promoted = time;
ok($t->wait_cluster, 'cluster_state ok again');
my $closed = ['POST', '/closed/v1/chat/completions',
              { model => 'gpt-4o', max_tokens => 0,
                messages => [{ role => 'user', content => 'hi' }] },
              { 'X-User' => 'kill2', 'Content-Type' => 'application/json' }];
ok(TG::wait_for(sub { $t->request(@$closed)->{status} == 200 }, 10),
   'closed requests served again');
my $back = time - $promoted;
ok($back < 10, sprintf('service back %.1f s after the promotion', $back));
diag(sprintf('killed to promoted %.1f s, promoted to served %.1f s',
             $promoted - $killed, $back));

ok(TG::wait_for(sub { ($t->hash($key)->{requests} // 0) >= 30 }, 20),
   'the journal replayed');
sleep 2;
is_deeply([exact($t, 30, 'kill')], [],
          'each of the 30 counted exactly once, nothing left reserved');

$t->stop;

# ---- configuration

for my $case (['tokenguard_redis 127.0.0.1:7000 cluster db=1;',
               qr/"db=" cannot be used with "cluster"/],
              ['tokenguard_redis 127.0.0.1:7000 127.0.0.1:7001;',
               qr/several addresses in "tokenguard_redis" directive are/],
              ['tokenguard_redis cluster;',
               qr/no address in "tokenguard_redis"/])
{
    my $c = TG->new(no_redis => 1, no_start => 1, http => $case->[0],
                    location => 'tokenguard on; tokenguard_user u;');
    my ($rc, $out) = $c->nginx_test;
    isnt($rc, 0, "$case->[0]: nginx -t fails");
    like($out, $case->[1], "$case->[0]: message");
    $c->stop_stub;
}

done_testing;
