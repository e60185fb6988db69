# An ACL user with exactly the rule docs/redis.md gives (read from it),
# over TLS: the ledger and the leases admit, refuse at the cap and settle
# exactly; tokenguardctl's every command works as that user; Redis's ACL
# LOG shows no command or key refused.  A wrong password is a 503 and
# one line that names the address and WRONGPASS.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $day = strftime('%Y-%m-%d', gmtime);
my $month = strftime('%Y-%m', gmtime);

my ($rule) = TG::slurp("$TG::TOP/docs/redis.md")
             =~ /^ACL SETUSER (tokenguard on .*)$/m;
ok($rule, 'docs/redis.md gives the ACL rule');
$rule =~ s/>SECRET/>s3cret/;

my $server = q{
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    location / {
        tokenguard on;
        tokenguard_cap user 3requests day;
        tokenguard_cap team 100usd month;
        tokenguard_sandbox $http_x_sandbox;
        tokenguard_sandbox_allowance 1usd day;
        proxy_pass http://stub;
    }
};

sub req {
    my ($user, %h) = @_;
    return ('POST', '/v1/chat/completions',
            { model => 'gpt-4o', max_tokens => 0,
              messages => [{ role => 'user', content => 'hello there' }] },
            { 'Content-Type' => 'application/json', 'X-User' => $user,
              'X-Team' => 'ml', 'X-Stub-Usage' => '7,0', %h });
}

my $params = 'user=tokenguard password=s3cret';

for my $lease (0, 1) {
    my $mode = $lease ? 'leases' : 'ledger';
    my $t = TG->new(server => $server, redis_tls => 1, redis_users => [$rule],
                    redis_params => $params, lease => $lease);
    my @s = map { $t->request(req('ann'))->{status} } 1 .. 4;
    is("@s", '200 200 200 429', "$mode: three admitted, the fourth refused");
    my $r = $t->request(req('ann', 'X-Sandbox' => '1'));
    is($r->{status}, 200, "$mode: a sandbox request");
    ok($t->wait_settled("tg:{u:ann}:$day"), "$mode: settled");
    my $h = $t->hash("tg:{u:ann}:$day");
    is($h->{requests}, 3, "$mode: three requests counted");
    is($h->{usd}, 3 * 18, "$mode: their cost exact");
    is($h->{sandbox_usd}, 18, "$mode: the sandbox request counted apart");
    ok(TG::wait_for(sub {
        ($t->hash("tg:{u:ann}:$month")->{requests} // 0) == 3 }),
       "$mode: the month too");
    is($t->redis('SISMEMBER', "tg:idx:$month:users", 'ann'), 1,
       "$mode: the index written");

    # Redis restarted: the scripts come back (SCRIPT LOAD, or EVAL)
    $t->stop_redis('KILL');
    $t->start_redis;
    # the first requests meet the lost connection and its backoff
    ok(TG::wait_for(sub { $t->request(req('warm'))->{status} == 200 }),
       "$mode: reconnected after a restart");
    $r = $t->request(req('bea'));
    is($r->{status}, 200, "$mode: after a restart, admitted");
    $t->redis('SCRIPT', 'FLUSH');
    $r = $t->request(req('bea'));
    is($r->{status}, 200, "$mode: after SCRIPT FLUSH (EVAL), admitted");
    ok($t->wait_settled("tg:{u:bea}:$day"), "$mode: settled again");
    is($t->hash("tg:{u:bea}:$day")->{usd}, 2 * 18, "$mode: counted again");

    if (!$lease) {
        # tokenguardctl as the same user, every command
        my $d = "$t->{dir}/tls";
        my @o = ('-r', "127.0.0.1:$t->{redis_tls_port}", '--tls',
                 '--ssl-trusted-certificate', "$d/ca.crt",
                 '--ssl-name', 'redis.test', '--user', 'tokenguard');
        my %env = (TOKENGUARD_REDIS_PASSWORD => 's3cret');
        my $c = $t->ctl(\%env, @o, '--json', 'usage', 'user', 'bea',
                        '--period', $day);
        is($c->{rc}, 0, 'ctl usage as the ACL user') or diag $c->{err};
        is($c->{json}{requests}, 2, 'ctl usage: two requests');
        for my $cmd (['top'], ['top', '--by', 'model'],
                     ['limit', 'set', 'user', 'bea', 'usd_month', '5'],
                     ['limit', 'get', 'user', 'bea'],
                     ['limit', 'clear', 'user', 'bea', 'usd_month'],
                     ['limit', 'clear', 'user', 'bea'],
                     ['sandbox', 'grant', 'user', 'bea', '2'],
                     ['report', '--json'],
                     ['report', '--html', "$t->{dir}/r.html"]) {
            $c = $t->ctl(\%env, @o, @$cmd);
            is($c->{rc}, 0, "ctl @$cmd as the ACL user") or diag $c->{err};
        }
        $c = $t->ctl({ TOKENGUARD_REDIS_PASSWORD => 'nope' }, @o, 'top');
        is($c->{rc}, 3, 'ctl with a wrong password: exit 3');
        like($c->{err}, qr/refused the password/, 'ctl says so');

        # the tokenguard user cannot read past tg:*
        $t->redis('SET', 'secret:x', '1');
        $c = $t->ctl(\%env, @o, 'limit', 'get', 'user', 'x');
        is($c->{rc}, 0, 'the ACL user reads tg:* keys');
    }

    # (the wrong password above is an "auth" entry; any other is a
    # command or key the rule does not allow)
    my @log = grep { my %e = @$_; $e{reason} ne 'auth' }
              @{ $t->redis('ACL', 'LOG') || [] };
    is(scalar(@log), 0, "$mode: ACL LOG: no command or key refused")
        or diag explain \@log;
    $t->stop;
}

# a wrong password: 503, one line naming the address and WRONGPASS
{
    my $t = TG->new(server => $server, redis_tls => 1, redis_users => [$rule],
                    redis_params => 'user=tokenguard password=wrong');
    my $r = $t->request(req('cy'));
    is($r->{status}, 503, 'wrong password: 503');
    is($r->{headers}{'x-tokenguard-code'}, 'store_unavailable',
       'wrong password: store_unavailable');
    my @l = grep { /tokenguard: redis/ } split /\n/, $t->error_log;
    is(scalar(@l), 1, 'wrong password: one line') or diag "@l";
    like($l[0] // '', qr/redis at "127\.0\.0\.1:\d+" refused AUTH: WRONGPASS/,
         'it names the address and the cause');
    $t->stop;
}

done_testing;
