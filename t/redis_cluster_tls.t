# Redis Cluster over TLS with an ACL user, as ElastiCache and MemoryDB
# serve it: three masters and three replicas whose clients, cluster bus
# and replication speak TLS (TG::start_cluster with redis_tls), the ACL
# user of docs/redis.md's rule set on every node.  Requests for users on
# all three masters are counted exactly, caps hold exactly, a slot moved
# under nginx's map is a MOVED followed to the new owner's TLS port, a
# reconnect to each node resumes that node's TLS session, and no node's
# ACL LOG shows a command or key refused.  tokenguardctl --cluster --tls
# reads the same numbers.  A wrong CA is a 503 and one error line for
# each seed, with its address and the cause.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $month = strftime('%Y-%m', gmtime);

sub count { my ($s, @l) = @_; scalar grep { $_ eq $s } @l }

my ($rule) = TG::slurp("$TG::TOP/docs/redis.md")
             =~ /^ACL SETUSER (tokenguard on .*)$/m;
ok($rule, 'docs/redis.md gives the ACL rule');
$rule =~ s/>SECRET/>s3cret/;

my $server = q{
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    location / {
        tokenguard on;
        proxy_pass http://stub;
    }
    location /capped/ {
        tokenguard on;
        tokenguard_cap user 0.00018usd month;
        proxy_pass http://stub/;
    }
};

# 7 prompt tokens of gpt-4o, no output: 18 micro-USD each
sub req {
    my ($t, $user, $path) = @_;
    return [$t, 'POST', ($path // '') . '/v1/chat/completions',
            { model => 'gpt-4o', max_tokens => 0,
              messages => [{ role => 'user', content => 'hello there' }] },
            { 'Content-Type' => 'application/json', 'X-User' => $user,
              'X-Team' => 'eng', 'X-Stub-Usage' => '7,0' }];
}

# the master (plain port) that owns key
sub owner {
    my ($t, $key) = @_;
    my $slot = $t->redis('CLUSTER', 'KEYSLOT', $key);
    my $m = $t->cluster_masters;
    for my $port (keys %$m) {
        return $port if grep { $slot >= $_->[0] && $slot <= $_->[1] }
                        @{ $m->{$port} };
    }
    return undef;
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

my $t = TG->new(cluster => 1, redis_tls => 1, workers => 2,
                redis_users => [$rule], server => $server,
                redis_params => 'user=tokenguard password=s3cret',
                error_log_level => 'debug');
my $masters = $t->cluster_masters;
is(scalar(keys %$masters), 3, 'three masters');
my @tls = map { $t->{cluster_tls}{$_} } sort keys %$masters;
like($t->read_file('nginx.conf'),
     qr/tokenguard_redis 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ cluster tls/,
     'nginx is given TLS seeds');

# ---- counts: 30 users x 4 requests at once, over all masters

my @users = map { "u$_" } 1 .. 30;
my %on;
$on{ owner($t, "tg:{u:$_}:$month") }++ for @users;
is(scalar(keys %on), 3, 'the users\' keys live on all three masters');

my @st = TG::concurrent([map { my $u = $_; map { req($t, $u) } 1 .. 4 }
                         @users]);
is(count(200, @st), 120, 'all 120 requests answered 200')
    or diag explain { map { $_ => count($_, @st) } @st };
is_deeply([exact($t, 4, @users)], [],
          'every user counted exactly: 4 requests, 72 micro-USD');
$t->wait_settled("tg:{t:eng}:$month");
my $team = $t->hash("tg:{t:eng}:$month");
is("$team->{requests}/$team->{usd}", '120/' . 120 * 18,
   'the team counted every request once');

# nginx is the ACL user on every master, not the default user
for my $port (sort keys %$masters) {
    like($t->redis_at($port, 'CLIENT', 'LIST'), qr/ user=tokenguard /,
         "master $port: nginx's connections are user tokenguard");
}

# ---- caps exact, one capped user per master

my %capped;
for my $i (1 .. 300) {
    $capped{ owner($t, "tg:{u:c$i}:$month") } //= "c$i";
    last if keys %capped == 3;
}
is(scalar(keys %capped), 3, 'a capped user on each master');
my @cu = sort values %capped;
@st = TG::concurrent([map { my $u = $_; map { req($t, $u, '/capped') } 1 .. 30 }
                      @cu]);
is(count(200, @st), 30, 'exactly 10 of 30 admitted for each of 3 users');
is(count(429, @st), 60, 'the rest refused with 429');
for my $u (@cu) {
    $t->wait_settled("tg:{u:$u}:$month");
    my $h = $t->hash("tg:{u:$u}:$month");
    is("$h->{requests}/$h->{usd}/$h->{denied}", '10/180/20',
       "$u: 10 counted, at the cap, 20 denied");
}

# ---- a slot moved under nginx's map: MOVED, to the TLS port, followed

my $key = "tg:{u:mover}:$month";
my $slot = $t->redis('CLUSTER', 'KEYSLOT', $key);
my $src = owner($t, $key);
my ($dst) = grep { $_ != $src } sort keys %$masters;
my $dst_id = $t->redis_at($dst, 'CLUSTER', 'MYID');
sub moved { my $e = $t->redis_at($src, 'INFO', 'errorstats');
            $e =~ /errorstat_MOVED:count=(\d+)/ ? $1 : 0 }
my $moved = moved();
# the slot holds no key yet: it is given to dst at once
for my $port (sort keys %$masters) {
    my $r = $t->redis_at($port, 'CLUSTER', 'SETSLOT', $slot, 'NODE',
                         $dst_id);
    is($r, 'OK', "SETSLOT NODE on $port") or diag explain $r;
}
ok($t->wait_cluster, 'cluster ok after the move');
@st = TG::concurrent([map { req($t, 'mover') } 1 .. 5]);
is(count(200, @st), 5, 'after the move: answered 200');
is_deeply([exact($t, 5, 'mover')], [], 'counted exactly on the new owner');
is(owner($t, $key), $dst, 'the slot is on the new owner');
ok(moved() > $moved, 'the old owner said MOVED: nginx followed it');
unlike($t->error_log, qr/tokenguard: redis .*(MOVED|CROSSSLOT)/,
       'no MOVED reached a request');

# ---- the TLS session of each node is resumed on a reconnect

for my $p (@tls) {
    like($t->error_log, qr/redis TLS session reused: 0 \(127\.0\.0\.1:$p\)/,
         "master TLS port $p: a full handshake first");
}
$t->redis_at($_, 'CLIENT', 'KILL', 'TYPE', 'normal') for keys %$masters;
my %one = map { owner($t, "tg:{u:$_}:$month") => $_ } @users;
for my $port (sort keys %one) {
    ok(TG::wait_for(sub {
           (TG::concurrent([req($t, $one{$port})]))[0] == 200 }),
       "reconnected to master $port");
}
for my $p (@tls) {
    like($t->error_log, qr/redis TLS session reused: 1 \(127\.0\.0\.1:$p\)/,
         "master TLS port $p: the reconnect resumed its session");
}

# ---- tokenguardctl --cluster --tls as the ACL user

my %env = (TOKENGUARD_REDIS_PASSWORD => 's3cret');
my @o = ('--cluster', '--tls', '--ssl-trusted-certificate',
         "$t->{dir}/tls/ca.crt", '--user', 'tokenguard');
my $c = $t->ctl(\%env, '-r', "127.0.0.1:$tls[0]", @o, '--json', 'top',
                '-n', '100');
is($c->{rc}, 0, 'ctl --cluster --tls top: exit 0') or diag $c->{err};
my %rows = map { $_->{name} => $_->{requests} } @{ $c->{json}{rows} || [] };
is(scalar(grep { ($rows{$_} // 0) >= 4 } @users), 30,
   'ctl top: every user, read on every master over TLS')
    or diag explain $c->{json};
$c = $t->ctl(\%env, '-r', "127.0.0.1:$tls[0]", @o, '--json', 'usage',
             'team', 'eng');
is($c->{rc}, 0, 'ctl --cluster --tls usage team: exit 0') or diag $c->{err};
cmp_ok($c->{json}{requests} // 0, '>=', 120 + 30 + 5,
       'ctl usage team: the team\'s requests');
# a seed that owns none of the user's slot: MOVED followed over TLS
my ($other) = grep { $_ != $dst } sort keys %$masters;
$c = $t->ctl(\%env, '-r', "127.0.0.1:$t->{cluster_tls}{$other}", @o,
             '--json', 'usage', 'user', 'mover');
is($c->{rc}, 0, 'ctl usage through a seed that is not the owner')
    or diag $c->{err};
is($c->{json}{requests}, 5, 'ctl usage user: the owner\'s count');
# the wrong CA: refused, exit 3, said
$c = $t->ctl(\%env, '-r', "127.0.0.1:$tls[0]", '--cluster', '--tls',
             '--ssl-trusted-certificate', "$t->{dir}/tls/other-ca.crt",
             '--user', 'tokenguard', 'top');
is($c->{rc}, 3, 'ctl --cluster --tls with the wrong CA: exit 3');
like($c->{err}, qr/certificate verify failed/, 'ctl says why');

# ---- no node refused a command or a key of nginx or tokenguardctl

for my $port (@{ $t->{cluster_ports} }) {
    my $log = $t->redis_at($port, 'ACL', 'LOG');
    is(scalar(@{ $log || [] }), 0,
       "node $port: ACL LOG: no command or key refused")
        or diag explain $log;
}

# a wrong password: exit 3, and the seed's ACL LOG says so
$c = $t->ctl({ TOKENGUARD_REDIS_PASSWORD => 'nope' }, '-r',
             "127.0.0.1:$tls[0]", @o, 'top');
is($c->{rc}, 3, 'ctl --cluster --tls with a wrong password: exit 3');
like($c->{err}, qr/refused the password/, 'ctl says so');

# ---- a wrong CA: 503, a line for each seed

{
    my $n = TG->new(redis_port => $t->{redis_port}, redis_tls => 1,
                    redis_tls_port => $tls[0], no_start => 1,
                    server => $server,
                    redis_params => 'user=tokenguard password=s3cret',
                    redis_ssl => 'tokenguard_redis_ssl_trusted_certificate '
                                 . "$t->{dir}/tls/other-ca.crt;\n");
    @$n{qw(cluster cluster_ports cluster_tls)}
        = (1, $t->{cluster_ports}, $t->{cluster_tls});
    $n->write_conf;
    $n->start_nginx;
    my $r = $n->request(@{ req($n, 'wrongca') }[1 .. 4]);
    is($r->{status}, 503, 'wrong CA: 503');
    is($r->{headers}{'x-tokenguard-code'}, 'store_unavailable',
       'wrong CA: store_unavailable');
    # one line for each seed tried, naming it and the cause; nothing else
    my @l = grep { /tokenguard: redis/ } split /\n/, $n->error_log;
    my @seeds = map { "127.0.0.1:$t->{cluster_tls}{$_}" }
             @{ $t->{cluster_ports} }[0, 1];
    is(scalar(@l), 2, 'wrong CA: one error line for each of the two seeds')
        or diag "@l";
    # the seeds are tried in turn from either one: any order
    for my $seed (@seeds) {
        is(scalar(grep { /\[error\].*redis \Q$seed\E TLS: certificate verify fail/ }
                       @l), 1,
           "wrong CA: one line names seed $seed and the cause");
    }
    $n->stop;
}

$t->stop;

done_testing;
