# tokenguard_redis: a unix socket, db=, password=, and bad arguments.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $month = strftime('%Y-%m', gmtime);

# a unix socket and db=3, with a password
my $t = TG->new(no_redis => 1, location => 'tokenguard on; tokenguard_user u;',
                no_start => 1);
my $sock = "$t->{dir}/redis.sock";
my $pid = fork // die;
if ($pid == 0) {
    open STDOUT, '>', '/dev/null';
    exec 'redis-server', '--port', '0', '--unixsocket', $sock,
         '--requirepass', 'sekret', '--save', '', '--dir', $t->{dir};
    die;
}
for (1 .. 100) { last if -S $sock; sleep 0.02; }
$t->{http} = "tokenguard_redis unix:$sock password=sekret db=3 timeout=2s;";
$t->write_conf;
$t->start_nginx;

my $r = $t->post('/v1/chat/completions', { model => 'gpt-4o', max_tokens => 1,
                 messages => [{ role => 'user', content => 'hello there' }] });
is($r->{status}, 200, 'unix socket with AUTH: 200');

sub cli {
    my $out = `redis-cli -s $sock -a sekret --no-auth-warning @_ 2>&1`;
    chomp $out;
    return $out;
}
my $n = 0;
for (1 .. 50) { $n = cli('-n', 3, 'HGET', "'tg:{u:u}:$month'", 'requests');
                last if $n eq '1'; sleep 0.05; }
is($n, '1', 'counted in db 3');
is(cli('-n', 0, 'DBSIZE'), '0', 'nothing in db 0');
$t->stop;
kill 'TERM', $pid;
waitpid $pid, 0;

# bad arguments
for my $case (['tokenguard_redis 127.0.0.1:6379 pass=x;',
               qr/invalid parameter "pass=x" in "tokenguard_redis"/],
              ['tokenguard_redis 127.0.0.1:6379 db=x;',
               qr/invalid parameter "db=x"/],
              ['tokenguard_redis 127.0.0.1:6379 timeout=0;',
               qr/invalid parameter "timeout=0"/],
              ['tokenguard_redis 127.0.0.1:99999;',
               qr/invalid address "127.0.0.1:99999" in "tokenguard_redis"/],
              ['tokenguard_prices /nonexistent.json;',
               qr/tokenguard_prices "\/nonexistent.json": cannot open/],
              ['tokenguard_retention month=1d;',
               qr/invalid parameter "month=1d" in "tokenguard_retention"/])
{
    my $c = TG->new(no_redis => 1, no_start => 1, http => $case->[0],
                    location => 'tokenguard on; tokenguard_user u;');
    my ($rc, $out) = $c->nginx_test;
    isnt($rc, 0, "$case->[0]: nginx -t fails");
    like($out, $case->[1], "$case->[0]: message");
    $c->stop_stub;
}

done_testing;
