# Concurrency at the cap: 200 requests at once for one user whose cap
# fits exactly 50 worst cases admit exactly 50, and a second nginx on the
# same Redis enforces the same cap.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $month = strftime('%Y-%m', gmtime);

# max_tokens 0: the worst case is the prompt, 7 * 2.5 = 17.5 -> 18
# micro-USD, which is also what settles, so the result does not depend on
# how many requests finish before others start; the cap fits 50
my $conf = q{
    tokenguard on;
    tokenguard_user $http_x_user;
    tokenguard_cap user 0.0009usd month;
};

my $t = TG->new(location => $conf, workers => 2);
my $t2 = TG->new(location => $conf, workers => 2,
                 redis_port => $t->{redis_port});

sub req {
    my ($user) = @_;
    return ['POST', '/v1/chat/completions',
            { model => 'gpt-4o', max_tokens => 0,
              messages => [{ role => 'user', content => 'hello there' }] },
            { 'X-User' => $user, 'X-Stub-Delay-Ms' => 300, 'X-Stub-Usage' => '7,0',
              'Content-Type' => 'application/json' }];
}

sub count { my ($s, @l) = @_; scalar grep { $_ eq $s } @l }

my @st = $t->parallel(map { req('zed') } 1 .. 200);
is(count(200, @st), 50, 'one nginx: exactly 50 of 200 admitted');
is(count(429, @st), 150, 'the other 150 refused with 429');
$t->wait_settled("tg:{u:zed}:$month");
my $h = $t->hash("tg:{u:zed}:$month");
is($h->{requests}, 50, '50 requests counted');
is($h->{usd}, 50 * 18, 'spend: 50 prompts');
is($h->{reserved_usd}, 0, 'nothing left reserved');
is($h->{denied}, 150, '150 denied');

# two nginx instances, one Redis
my @both = map { req('yan') } 1 .. 200;
my ($a1, $a2) = (0, 0);
{
    my $pid = fork // die;
    if ($pid == 0) {
        my @s = $t2->parallel(@both[100 .. 199]);
        print STDERR '';
        open my $f, '>', "$t->{dir}/t2.out" or die;
        print $f join ' ', @s;
        close $f;
        POSIX::_exit(0);
    }
    my @s1 = $t->parallel(@both[0 .. 99]);
    waitpid $pid, 0;
    open my $f, '<', "$t->{dir}/t2.out" or die;
    my @s2 = split ' ', scalar <$f>;
    $a1 = count(200, @s1);
    $a2 = count(200, @s2);
    is(count(200, @s1) + count(429, @s1), 100, 'instance 1: all answered')
        or diag "instance 1 answered: @s1";
    is(count(200, @s2) + count(429, @s2), 100, 'instance 2: all answered')
        or diag "instance 2 answered: @s2";
}
is($a1 + $a2, 50, "two nginx: exactly 50 admitted ($a1 + $a2)");
ok($a1 > 0 && $a2 > 0, 'both instances admitted some');
$t->wait_settled("tg:{u:yan}:$month");
$h = $t->hash("tg:{u:yan}:$month");
is($h->{requests}, 50, 'two nginx: 50 requests counted');
is($h->{usd}, 900, 'two nginx: spend exactly the cap, never past it');

$t2->stop;
$t->stop;
done_testing;
