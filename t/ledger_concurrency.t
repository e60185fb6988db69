# Concurrency at the cap: 200 requests at once for one user whose cap
# fits exactly 50 worst cases admit exactly 50; then 500 requests at once
# through two nginx instances on one Redis, against USD and token caps of
# users and of teams: no cap is ever passed, counting what is in flight,
# and no request whose worst case fitted is refused.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $month = strftime('%Y-%m', gmtime);

sub count { my ($s, @l) = @_; scalar grep { $_ eq $s } @l }

# an nginx whose provider is a server of its own (no process per
# request): limit_req lets 200 requests a second through, so hundreds
# wait upstream at once with their reservations held.  The provider
# reports 7 prompt tokens: with max_tokens 0 the worst case is the prompt
# estimate (7 tokens, 7 * 2.5 = 17.5 -> 18 micro-USD), which is also what
# settles, so the results do not depend on the order requests finish in.
sub gateway {
    my (%opt) = @_;
    my $provider = TG::free_port();
    my $caps = $opt{caps};
    return TG->new(workers => 2, %opt, http => qq{
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

# one nginx, one user whose cap fits 50
my $t = gateway(caps => 'tokenguard_cap user 0.0009usd month;');
my @st = TG::concurrent([map { req($t, 'zed') } 1 .. 200]);
is(count(200, @st), 50, 'one nginx: exactly 50 of 200 admitted');
is(count(429, @st), 150, 'the other 150 refused with 429');
$t->wait_settled("tg:{u:zed}:$month");
my $h = $t->hash("tg:{u:zed}:$month");
is($h->{requests}, 50, '50 requests counted');
is($h->{usd}, 50 * 18, 'spend: 50 prompts');
is($h->{reserved_usd}, 0, 'nothing left reserved');
is($h->{denied}, 150, '150 denied');

# ---- two nginx instances, one Redis, 500 requests at once
#
# Every cap kind of both scopes is set (loose) in nginx.conf, and ops
# overrides in Redis make one cap bind per group of 100 requests:
#
#   group  scope binding  cap                  fits
#   A      user ua        900 micro-USD        50
#   B      user ub        280 tokens           40
#   C      team tc        1080 micro-USD       60  (users c0..c4)
#   D      team td        315 tokens           45  (users d0..d4)
#   E      team te        1080 micro-USD       60  (users e0, e1)
#          and users      540 micro-USD each   30 each: all three bind
#          e0, e1                                   together
#
# A request costs 18 micro-USD and 7 tokens, worst case and settled, so
# every group must admit exactly what fits: fewer would be a request
# refused although its worst case fitted, more a cap passed.

my $caps = q{
            tokenguard_cap user 1usd month;
            tokenguard_cap user 1000000tokens month;
            tokenguard_cap team 1usd month;
            tokenguard_cap team 1000000tokens month;};
my $t2 = gateway(caps => $caps, redis_port => $t->{redis_port});
my $t3 = gateway(caps => $caps, redis_port => $t->{redis_port});

my %limit = ('u:ua' => [usd_month => 900], 'u:ub' => [tokens_month => 280],
             't:tc' => [usd_month => 1080], 't:td' => [tokens_month => 315],
             't:te' => [usd_month => 1080], 'u:e0' => [usd_month => 540],
             'u:e1' => [usd_month => 540]);
$t->redis('HSET', "tg:{$_}:limits", @{ $limit{$_} }) for keys %limit;

my %fits = (A => 50, B => 40, C => 60, D => 45, E => 60, 'u:e0' => 30,
            'u:e1' => 30);
my (@reqs, @group);
for my $i (0 .. 99) {
    for my $g (['A', 'ua', 'ta'], ['B', 'ub', 'tb'], ['C', 'c' . $i % 5, 'tc'],
               ['D', 'd' . $i % 5, 'td'], ['E', 'e' . $i % 2, 'te'])
    {
        # every other request to the other instance
        push @reqs, req(@reqs % 2 ? $t3 : $t2, $g->[1], $g->[2]);
        push @group, $g;
    }
}

# a sampler: the most each capped scope ever had spent plus in flight
my $samples = "$t->{dir}/samples";
my $sampler = fork // die;
if ($sampler == 0) {
    my %max;
    my $end = time + 120;
    while (time < $end && !-e "$samples.stop") {
        for my $s (keys %limit) {
            my $v = $t->redis('HMGET', "tg:{$s}:$month", 'usd', 'reserved_usd',
                              'tokens_in', 'tokens_out', 'reserved_tokens');
            my ($usd, $rusd, $tin, $tout, $rtok) = map { $_ // 0 } @$v;
            my $used = $limit{$s}[0] =~ /usd/ ? $usd + $rusd
                                              : $tin + $tout + $rtok;
            $max{$s} = $used if $used > ($max{$s} // 0);
        }
        sleep 0.02;
    }
    open my $f, '>', $samples or die;
    print $f join(' ', %max);
    close $f;
    POSIX::_exit(0);
}

my @all = TG::concurrent(\@reqs);
for my $i (0, 1) {
    my @s = @all[grep { $_ % 2 == $i } 0 .. $#all];
    is(count(200, @s) + count(429, @s), 250, 'instance ' . ($i + 1)
       . ': 250 answered, 200 or 429');
    ok(count(200, @s), 'instance ' . ($i + 1) . ': admitted some');
}

# every scope, capped or not: with leases a slice goes back once idle
for my $s (keys %limit, map { "t:$_" } qw(ta tb tc td te)) {
    $t->wait_settled("tg:{$s}:$month");
}
open my $done, '>', "$samples.stop" or die;
close $done;
waitpid $sampler, 0;
my %max = split ' ', $t->read_file('samples');

my %admitted;
$admitted{ $group[$_][0] }++, $admitted{ 'u:' . $group[$_][1] }++
    for grep { $all[$_] == 200 } 0 .. $#all;

# E: the users' caps add up to the team's: a request its user refuses
# must never hold team headroom (the team is asked only once the user has
# admitted), or other users' requests would find the team full
for my $g (grep { !/:/ } sort keys %fits) {
    my $team = { A => 'ta', B => 'tb', C => 'tc', D => 'td', E => 'te' }->{$g};
    is($admitted{$g} // 0, $fits{$g}, "group $g: exactly the $fits{$g}"
       . ' that fit admitted');
    my $h = $t->hash("tg:{t:$team}:$month");
    is($h->{requests}, $admitted{$g}, "group $g: team $team counted them");
    is($h->{usd}, 18 * $admitted{$g}, "group $g: team $team spend exact");
    is($h->{reserved_usd}, 0, "group $g: team $team has nothing reserved");
}

for my $s (sort keys %limit) {
    my ($field, $cap) = @{ $limit{$s} };
    my $h = $t->hash("tg:{$s}:$month");
    my $used = $field =~ /usd/ ? $h->{usd} : $h->{tokens_in} + $h->{tokens_out};
    ok($used <= $cap, "$s: $used within its $field cap $cap");
    ok(($max{$s} // 0) <= $cap, "$s: spent plus in flight never above the"
       . " cap (at most $max{$s} seen)");
    is($h->{requests}, $admitted{$s}, "$s: counted what it was admitted")
        if $s =~ /^u:/;
    is($admitted{$s}, $fits{$s}, "$s: exactly the $fits{$s} that fit"
       . ' admitted') if $fits{$s};
}
is($t->hash("tg:{u:ua}:$month")->{usd}, 900, 'user ua: spend exactly its cap');
is($t->hash("tg:{u:ub}:$month")->{tokens_in}, 280,
   'user ub: tokens exactly its cap');
is($t->hash("tg:{t:td}:$month")->{tokens_in}, 315,
   'team td: tokens exactly its cap');

$t3->stop;
$t2->stop;
$t->stop;
done_testing;
