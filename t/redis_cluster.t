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
    my $caps = $opt{caps} // '';
    return TG->new(workers => 2, cluster => 1, %opt, http => qq{
        limit_req_zone \$server_port zone=provider:1m rate=200r/s;
        server {
            listen 127.0.0.1:$provider;
            location / {
                limit_req zone=provider burst=1000;
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
