# Redis over TLS, as a managed Redis serves it: the ledger works through
# a TLS connection with a client certificate (admitted, refused at the
# cap, settled exactly), the journal replays over TLS after Redis comes
# back, a wrong CA or a wrong name is a 503 with one line that says
# which, verification off accepts a self-signed certificate, and a Redis
# that accepts TCP but never answers the handshake times out per
# timeout= while the worker keeps serving other locations.  The
# certificates are made for each run with the openssl CLI (TG.pm).
use strict;
use warnings;
use lib 't/lib';
use IO::Socket::INET;
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use TG;

my $day = strftime('%Y-%m-%d', gmtime);

my $server = q{
    tokenguard_user $http_x_user;
    location /closed/ {
        tokenguard on;
        tokenguard_cap user 3requests day;
        proxy_pass http://stub/;
    }
    location /open/ {
        tokenguard on;
        tokenguard_on_store_error open;
        proxy_pass http://stub/;
    }
    location /plain {
        return 200 "plain\n";
    }
};

# 7 prompt tokens of gpt-4o, no output: 18 micro-USD each, exactly
sub req {
    my ($path, $user) = @_;
    return ('POST', "$path/v1/chat/completions",
            { model => 'gpt-4o', max_tokens => 0,
              messages => [{ role => 'user', content => 'hello there' }] },
            { 'Content-Type' => 'application/json', 'X-User' => $user,
              'X-Stub-Usage' => '7,0' });
}

# the lines tokenguard wrote about redis
sub redis_lines {
    my ($t) = @_;
    return grep { /tokenguard: redis/ } split /\n/, $t->error_log;
}


# the ledger over TLS, with a client certificate the server asks for
{
    my $t = TG->new(server => $server, redis_tls => { auth_clients => 'yes' },
                 redis_ssl => "tokenguard_redis_ssl_trusted_certificate"
                              . " %%TLS%%/ca.crt;\n"
                              . "tokenguard_redis_ssl_certificate"
                              . " %%TLS%%/client.crt;\n"
                              . "tokenguard_redis_ssl_certificate_key"
                              . " %%TLS%%/client.key;\n");
    my $d = "$t->{dir}/tls";
    like($t->conf_text, qr/tokenguard_redis 127\.0\.0\.1:$t->{redis_tls_port} tls/,
         'nginx is given the TLS port only');

    my @s = map { $t->request(req('/closed', 'alice'))->{status} } 1 .. 4;
    is("@s", '200 200 200 429', 'over TLS: three admitted, the cap refuses '
                                . 'the fourth');
    ok($t->wait_settled("tg:{u:alice}:$day"), 'settled');
    my $h = $t->hash("tg:{u:alice}:$day");
    is($h->{requests}, 3, 'three requests counted');
    is($h->{usd}, 3 * 18, 'their cost counted exactly');
    is($h->{reserved_usd} // 0, 0, 'nothing left reserved');

    # Redis gone: open requests are journaled, replayed over TLS later
    $t->stop_redis('KILL');
    @s = map { $t->request(req('/open', 'jo'))->{status} } 1 .. 2;
    is("@s", '200 200', 'redis down, open: 200');
    my $r = $t->request(req('/closed', 'bob'));
    is($r->{status}, 503, 'redis down, closed: 503');
    is($r->{headers}{'x-tokenguard-code'}, 'store_unavailable',
       'store_unavailable');
    $t->start_redis;
    ok(TG::wait_for(sub {
        ($t->redis('HGET', "tg:{u:jo}:$day", 'requests') // 0) == 2 }, 15),
       'the journal replayed over TLS once redis is back');
    ok($t->wait_settled("tg:{u:jo}:$day"), 'replayed and settled');
    is($t->hash("tg:{u:jo}:$day")->{usd}, 2 * 18, 'replayed cost exact');

    @s = map { $t->request(req('/closed', 'carol'))->{status} } 1 .. 2;
    is("@s", '200 200', 'reconnected over TLS: admitted again');

    # tokenguardctl over TLS with the client certificate sees the same
    ok($t->wait_settled("tg:{u:carol}:$day"), 'carol settled');
    my $c = $t->ctl('-r', "127.0.0.1:$t->{redis_tls_port}", '--tls',
                    '--ssl-trusted-certificate', "$d/ca.crt", '--ssl-certificate', "$d/client.crt",
                    '--ssl-certificate-key', "$d/client.key", '--json',
                    'usage', 'user', 'carol', '--period', $day);
    is($c->{rc}, 0, 'tokenguardctl usage over TLS') or diag $c->{err};
    is($c->{json}{requests}, 2, 'tokenguardctl: two requests');
    is($c->{json}{spent_usd}, 2 * 18 / 1e6, 'tokenguardctl: the same cost');

    # without its certificate the server refuses tokenguardctl
    $c = $t->ctl('-r', "127.0.0.1:$t->{redis_tls_port}", '--tls',
                 '--ssl-trusted-certificate', "$d/ca.crt", 'usage', 'user', 'alice');
    isnt($c->{rc}, 0, 'tokenguardctl without a client certificate fails');
    like($c->{err}, qr/TLS/, 'and says TLS') or diag $c->{err};

    # the wrong CA for tokenguardctl
    $c = $t->ctl('-r', "127.0.0.1:$t->{redis_tls_port}", '--tls',
                 '--ssl-trusted-certificate', "$d/other-ca.crt", '--ssl-certificate', "$d/client.crt",
                 '--ssl-certificate-key', "$d/client.key", 'usage', 'user', 'alice');
    isnt($c->{rc}, 0, 'tokenguardctl with the wrong CA fails');
    like($c->{err}, qr/certificate verify failed/, 'and says why')
        or diag $c->{err};

    # nginx with no client certificate: the server's alert is the reason
    my $nc = TG->new(server => $server, redis_port => $t->{redis_port},
                     redis_tls => 1, redis_tls_port => $t->{redis_tls_port},
                     redis_ssl => "tokenguard_redis_ssl_trusted_certificate"
                                  . " $d/ca.crt;\n");
    $r = $nc->request(req('/closed', 'dave'));
    is($r->{status}, 503, 'no client certificate: 503');
    my @l = redis_lines($nc);
    is(scalar(@l), 1, 'no client certificate: one line') or diag "@l";
    like($l[0] // '', qr/redis 127\.0\.0\.1:\d+ TLS: .*(?:alert certificate required|reset by peer)/,
         'it names the address and the alert');
    $nc->stop;

    $t->stop;
}


# a wrong CA, a wrong name: 503, one line naming the cause
{
    my $t = TG->new(server => $server, redis_tls => 1);
    my $d = "$t->{dir}/tls";

    my @cases = (
        ['wrong CA', "tokenguard_redis_ssl_trusted_certificate"
                     . " $d/other-ca.crt;\n",
         qr/TLS: certificate verify failed \((?:unable to get local issuer|self-signed certificate in certificate chain)/],
        ['wrong name', "tokenguard_redis_ssl_trusted_certificate $d/ca.crt;\n"
                       . "tokenguard_redis_ssl_name wrong.test;\n",
         qr/TLS: certificate does not match "wrong\.test"/],
        ['right name', "tokenguard_redis_ssl_trusted_certificate $d/ca.crt;\n"
                       . "tokenguard_redis_ssl_name redis.test;\n", undef],
    );

    for my $case (@cases) {
        my ($name, $ssl, $like) = @$case;
        my $n = TG->new(server => $server, redis_port => $t->{redis_port},
                        redis_tls => 1, redis_tls_port => $t->{redis_tls_port},
                        redis_ssl => $ssl);
        my $r = $n->request(req('/closed', "u$name" =~ s/ /_/gr));
        if (!$like) {
            is($r->{status}, 200, "$name: 200");
            is(scalar(redis_lines($n)), 0, "$name: no error line");
            $n->stop;
            next;
        }
        is($r->{status}, 503, "$name: 503");
        is($r->{headers}{'x-tokenguard-code'}, 'store_unavailable',
           "$name: store_unavailable");
        my @l = redis_lines($n);
        is(scalar(@l), 1, "$name: exactly one error line") or diag "@l";
        like($l[0] // '', qr/\[error\].*tokenguard: redis 127\.0\.0\.1:\d+ /,
             "$name: the line names the address");
        like($l[0] // '', $like, "$name: and the cause");
        $n->stop;
    }

    $t->stop;
}


# verification off: a self-signed certificate is accepted
{
    my $t = TG->new(server => $server, redis_tls => { cert => 'self' },
                    redis_ssl => "tokenguard_redis_ssl_verify off;\n",
                    error_log_level => 'debug');
    my $r = $t->request(req('/closed', 'selfie'));
    is($r->{status}, 200, 'verify off, self-signed: 200');
    ok($t->wait_settled("tg:{u:selfie}:$day"), 'verify off: settled');
    is($t->hash("tg:{u:selfie}:$day")->{requests}, 1, 'verify off: counted');

    # the connection killed: the next one resumes the TLS session
    like($t->error_log, qr/redis TLS session reused: 0/, 'a full handshake');
    $t->redis('CLIENT', 'KILL', 'TYPE', 'normal');
    ok(TG::wait_for(sub {
        $t->request(req('/closed', 'selfie2'))->{status} == 200 }),
       'reconnected');
    like($t->error_log, qr/redis TLS session reused: 1/,
         'the reconnect resumed the session');
    $t->stop;
}


# a server that accepts TCP and never answers TLS: the handshake times
# out per timeout=, the worker serves other locations meanwhile
{
    my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                     Listen => 16, ReuseAddr => 1)
        or die "listen: $!";
    my $port = $mute->sockport;
    my $t = TG->new(server => $server, no_redis => 1,
                    http => "tokenguard_redis 127.0.0.1:$port tls"
                            . " timeout=1500ms;\n"
                            . "tokenguard_redis_ssl_verify off;\n");
    my $h = $t->parallel_start([req('/closed', 'mute')]);
    sleep 0.3;
    my @plain;
    for (1 .. 5) {
        my $t0 = time;
        my $r = $t->get('/plain');
        push @plain, [$r->{status}, time - $t0];
        sleep 0.1;
    }
    my ($st) = $t->parallel_wait($h);
    my $el = $t->{elapsed}[0];
    is($st, 503, 'a mute TLS server: 503');
    ok($el >= 1.3 && $el < 4, "after the 1.5 s timeout ($el s)");
    is(scalar(grep { $_->[0] == 200 } @plain), 5,
       'other locations served while the handshake waits');
    ok(!grep({ $_->[1] > 0.5 } @plain), 'and at once')
        or diag join ' ', map { $_->[1] } @plain;
    my @l = redis_lines($t);
    is(scalar(@l), 1, 'one line') or diag "@l";
    like($l[0] // '', qr/redis 127\.0\.0\.1:$port TLS: handshake timed out/,
         'it says the handshake timed out');
    $t->stop;
    close $mute;
}


# configuration errors fail nginx -t
{
    my @cases = (
        ["tokenguard_redis 127.0.0.1:1 tls;",
         qr/has "tls" with verification on but no "tokenguard_redis_ssl_trusted_certificate"/,
         'tls without a CA'],
        ["tokenguard_redis 127.0.0.1:1 tls;\ntokenguard_redis_ssl_verify off;"
         . "\ntokenguard_redis_ssl_certificate_key /nonexistent;",
         qr/"tokenguard_redis_ssl_certificate" and "tokenguard_redis_ssl_certificate_key" go together/,
         'a key without a certificate'],
        ["tokenguard_redis 127.0.0.1:1;\ntokenguard_redis_ssl_name x;",
         qr/"tokenguard_redis_ssl_\*" is set but "tokenguard_redis" has no "tls"/,
         'ssl settings without tls'],
        ["tokenguard_redis 127.0.0.1:1 tls;"
         . "\ntokenguard_redis_ssl_trusted_certificate /nonexistent/ca.crt;",
         qr/nonexistent\/ca\.crt/, 'a CA file that is not there'],
        ["tokenguard_redis 127.0.0.1:1 user=tg;",
         qr/has "user=" without "password="/, 'user= without password='],
        ["tokenguard_redis 127.0.0.1:1 tlsx;",
         qr/invalid parameter "tlsx".*expected "tls", "user=NAME"/,
         'an unknown parameter'],
    );
    for my $case (@cases) {
        my ($http, $like, $name) = @$case;
        my $t = TG->new(location => 'tokenguard on;', no_redis => 1,
                        http => "$http\n", no_start => 1);
        my ($rc, $out) = $t->nginx_test;
        isnt($rc, 0, "$name: nginx -t fails");
        like($out, $like, "$name: says why") or diag $out;
        $t->stop_stub;
    }
}

done_testing;
