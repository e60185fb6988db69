# Budget leases while a lease call is out: the requests that fit in the
# room the call keeps are admitted without waiting for its reply, the
# counts still come out exact, and a cap set lower meanwhile applies from
# the call's reply on (the room it kept is not admitted from any more).
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use TG;

my $month = strftime('%Y-%m', gmtime);

# the stalled call must outlive the probe, not fail at the timeout
my $t = TG->new(location => q{
    tokenguard on;
    tokenguard_user $http_x_user;
    tokenguard_cap user 1usd month;
}, workers => 1, redis_timeout => '10s',
   http => 'tokenguard_lease on flush=1s idle=5s;');

sub chat {
    my ($user) = @_;
    return $t->post('/v1/chat/completions',
                    { model => 'gpt-4o-mini', max_tokens => 10,
                      messages => [{ role => 'user', content => 'hi' }] },
                    { 'X-User' => $user, 'X-Stub-Usage' => '5,3' });
}

# a slice with room, and spend for the next flush to carry
for (1 .. 6) {
    is(chat('ann')->{status}, 200, "ann's request $_");
}

# Redis stalls; within a flush interval the worker sends its flush call,
# which cannot answer until Redis goes on
kill 'STOP', $t->{redis_pid};
sleep 1.5;
my $t0 = time;
my $r = chat('ann');
my $took = time - $t0;
kill 'CONT', $t->{redis_pid};
is($r->{status}, 200, 'admitted while the flush call is out');
cmp_ok($took, '<', 0.5,
       sprintf('without waiting for its reply (%.3f s, Redis stalled'
               . ' 1.5 s before)', $took));

# the flush call that was out lands once Redis goes on (long before the
# slice goes idle): it carried the 6 requests before the stall
ok(TG::wait_for(sub { ($t->hash("tg:{u:ann}:$month")->{requests} // 0) >= 6 },
                2),
   'the flush call that was out landed');
ok($t->wait_settled("tg:{u:ann}:$month"), 'the slice given back when idle');
my $h = $t->hash("tg:{u:ann}:$month");
is($h->{requests}, 7, '7 requests counted once each');
is($h->{tokens_in}, 35, 'their tokens in');
is($h->{reserved_usd}, 0, 'nothing left reserved');

# a cap set lower while bob holds room: the room may still be admitted
# from until the next flush call's reply, and not after it (that call
# itself still keeps room, priced by the cap it last knew)
for (1 .. 6) {
    is(chat('bob')->{status}, 200, "bob's request $_");
}
$t->redis('HSET', 'tg:{u:bob}:limits', 'usd_month', 0);
is(chat('bob')->{status}, 200, 'admitted from the room held before');
sleep 2.5;
is(chat('bob')->{status}, 429, 'refused once a flush call saw the cap');
ok($t->wait_settled("tg:{u:bob}:$month"), 'bob\'s slice given back');
is($t->hash("tg:{u:bob}:$month")->{reserved_usd}, 0,
   'bob: nothing left reserved');

$t->stop;
done_testing;
