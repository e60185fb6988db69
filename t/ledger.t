# The budget ledger with a real redis-server: caps of every kind and
# period, ops overrides, team caps, the sandbox allowance, prices, the
# Redis layout, hostile names, budget>= routing.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $month = strftime('%Y-%m', gmtime);
my $day = strftime('%Y-%m-%d', gmtime);

my $t = TG->new(server => q{
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    tokenguard_sandbox $http_x_sandbox;
    location /usd/ {
        tokenguard on;
        tokenguard_cap user 0.05usd month;
        tokenguard_sandbox_allowance 0.02usd month;
        proxy_pass http://stub/;
    }
    location /daily/ {
        tokenguard on;
        tokenguard_cap user 1usd month;
        tokenguard_cap user 0.02usd day;
        proxy_pass http://stub/;
    }
    location /tokens/ {
        tokenguard on;
        tokenguard_cap user 2500tokens month;
        proxy_pass http://stub/;
    }
    location /requests/ {
        tokenguard on;
        tokenguard_cap user 2requests day;
        proxy_pass http://stub/;
    }
    location /team/ {
        tokenguard on;
        tokenguard_cap user 100usd month;
        tokenguard_cap team 0.03usd month;
        proxy_pass http://stub/;
    }
    location /route/ {
        tokenguard on;
        tokenguard_cap user 1usd month;
        tokenguard_route ^gpt-4o$ gpt-4o-mini budget>=50% tag=saver;
        proxy_pass http://stub/;
    }
    location /free/ {
        tokenguard on;
        proxy_pass http://stub/;
    }
});

# prompt "hello there" = 11 bytes = 3 tokens + 4 = 7; max_tokens 1000
# gpt-4o: worst case 7 * 2.5 + 1000 * 10 = 10017.5 -> 10018 micro-USD;
# settled (prompt only, no output yet) 7 * 2.5 = 17.5 -> 18
sub chat {
    my ($path, $user, %o) = @_;
    my $h = { 'X-User' => $user, 'X-Stub-Usage' => '7,0',
              %{ $o{headers} || {} } };
    my $r = $t->post("$path/v1/chat/completions", {
        model => $o{model} // 'gpt-4o', max_tokens => $o{max} // 1000,
        messages => [{ role => 'user', content => 'hello there' }] }, $h);
    (my $k = $user) =~ s/([^A-Za-z0-9._\@-])/sprintf '%%%02X', ord $1/ge;
    $t->wait_settled("tg:{u:$k}:$month");
    $t->wait_settled("tg:{t:$h->{'X-Team'}}:$month") if $h->{'X-Team'};
    return $r;
}

sub uhash { $t->hash("tg:{u:$_[0]}:" . ($_[1] // $month)) }

# USD, month
my $r = chat('/usd', 'ann');
is($r->{status}, 200, 'usd: first request fits');
is($r->{headers}{'x-tokenguard-budget-remaining'}, '0.039982',
   'X-TokenGuard-Budget-Remaining: cap minus worst case');
is($t->last_log->{decision}, 'allow', 'decision allow');
my $h = uhash('ann');
is($h->{usd}, 18, 'settled: prompt cost');
is($h->{tokens_in}, 7, 'tokens_in');
is($h->{requests}, 1, 'requests');
is($h->{reserved_usd}, 0, 'reservation released');
is($h->{'model:gpt-4o:usd'}, 18, 'per model usd');
is($h->{'model:gpt-4o:tokens_in'}, 7, 'per model tokens');
is($h->{'cat:chat:usd'}, 18, 'per category usd');
is($h->{'cat:chat:requests'}, 1, 'per category requests');
is(uhash('ann', $day)->{usd}, 18, 'the day hash too');
ok($t->redis('TTL', "tg:{u:ann}:$month") > 390 * 86400, 'month key expires'
   . ' after the retention');
ok(grep({ $_ eq 'ann' } @{ $t->redis('SMEMBERS', "tg:idx:$month:users") }),
   'period index');

chat('/usd', 'ann') for 1 .. 3;
$r = chat('/usd', 'ann');     # 4 * 18 spent + 10018 = 10090 fits 50000
is($r->{status}, 200, 'usd: still fits');
$r = chat('/usd', 'ann', max => 5000);   # 90 + 50018 > 50000
is($r->{status}, 429, 'usd: worst case over the cap: 429');
is($r->{headers}{'x-tokenguard-code'}, 'budget_exceeded', 'budget_exceeded');
like($r->{json}{error}{message},
     qr/user "ann" has used \$0\.00 of the \$0\.05 monthly USD cap.*up to \$0\.050018.*resets \d{4}-\d\d-01/,
     'message: spend, limit, cost, reset');
ok($r->{headers}{'retry-after'} > 0
   && $r->{headers}{'retry-after'} <= 31 * 86400, 'Retry-After');
is($t->last_log->{decision}, 'deny_budget', 'decision deny_budget');
is(uhash('ann')->{denied}, 1, 'denied counted');
is(uhash('ann')->{reserved_usd}, 0, 'nothing stays reserved');

# sandbox: apart from the caps
$r = chat('/usd', 'ann', max => 1500, headers => { 'X-Sandbox' => '1' });
is($r->{status}, 200, 'sandbox: fits the allowance though over the cap');
$h = uhash('ann');
is($h->{sandbox_usd}, 18, 'sandbox_usd');
is($h->{usd}, 90, 'usd untouched by the sandbox');
$r = chat('/usd', 'ann', max => 2000, headers => { 'X-Sandbox' => '1' });
is($r->{status}, 429, 'sandbox: allowance exhausted');
is($r->{headers}{'x-tokenguard-code'}, 'sandbox_exhausted', 'sandbox_exhausted');
like($r->{json}{error}{message}, qr/sandbox allowance/, 'message says sandbox');
is($t->last_log->{decision}, 'deny_sandbox', 'decision deny_sandbox');
$r = chat('/free', 'ann', headers => { 'X-Sandbox' => '1' });
is($r->{status}, 429, 'sandbox without an allowance: refused');
like($r->{json}{error}{message}, qr/has none/, 'message: no allowance');

# ops overrides win over the config
$t->redis('HSET', 'tg:{u:bea}:limits', 'usd_month', 5000);
$r = chat('/usd', 'bea');
is($r->{status}, 429, 'override lowers the cap');
like($r->{json}{error}{message}, qr/\$0\.00 of the \$0\.00/, 'message uses it');
$t->redis('HSET', 'tg:{u:bea}:limits', 'usd_month', -1);
$r = chat('/usd', 'bea', max => 100000);
is($r->{status}, 200, 'override -1 removes the cap');
$t->redis('HSET', 'tg:{u:bea}:limits', 'usd_month', 2000000);
$r = chat('/usd', 'bea', max => 100000);
is($r->{status}, 200, 'override raises the cap');

# day caps
$r = chat('/daily', 'cid');
is($r->{status}, 200, 'daily: fits');
$r = chat('/daily', 'cid', max => 2000);
is($r->{status}, 429, 'daily: over the day cap');
like($r->{json}{error}{message}, qr/daily USD cap/, 'message: daily');
ok($r->{headers}{'retry-after'} <= 86400, 'Retry-After within a day');

# tokens: 7 + 1000 per request against 2500
is(chat('/tokens', 'dan')->{status}, 200, 'tokens: 1st');
is(chat('/tokens', 'dan')->{status}, 200, 'tokens: 2nd (14 spent + 1007)');
is(chat('/tokens', 'dan', max => 2480)->{status}, 429, 'tokens: over');
like($t->last_log && $r->{json}{error}{message} // '', qr/./, 'message');

# requests
is(chat('/requests', 'eve')->{status}, 200, 'requests: 1');
is(chat('/requests', 'eve')->{status}, 200, 'requests: 2');
$r = chat('/requests', 'eve');
is($r->{status}, 429, 'requests: 3rd refused');
like($r->{json}{error}{message}, qr/2 of the 2 daily request cap/,
     'message: request cap');

# team caps: the team's 0.03usd; users have room
is(chat('/team', 'fay', headers => { 'X-Team' => 'ml' })->{status}, 200,
   'team: first fits');
is(chat('/team', 'gus', headers => { 'X-Team' => 'ml' })->{status}, 200,
   'team: a teammate fits');
$r = chat('/team', 'gus', max => 3000, headers => { 'X-Team' => 'ml' });
is($r->{status}, 429, 'team: over the team cap');
like($r->{json}{error}{message}, qr/team "ml"/, 'message names the team');
sleep 0.2;
is(uhash('gus')->{reserved_usd}, 0, "team refusal released the user's"
   . ' reservation');
is($t->hash("tg:{t:ml}:$month")->{usd}, 36, 'team spend');
ok(grep({ $_ eq 'ml' } @{ $t->redis('SMEMBERS', "tg:idx:$month:teams") }),
   'team index');

# prices
$r = chat('/free', 'hal', model => 'gpt-4o-2024-08-06');
is($r->{status}, 200, 'dated variant');
is(uhash('hal')->{'model:gpt-4o-2024-08-06:usd'}, 18,
   'priced like gpt-4o');
$r = chat('/free', 'hal', model => 'claude-3-5-haiku-20241022');
is(uhash('hal')->{'model:claude-3-5-haiku-20241022:usd'}, 6,
   'anthropic dated variant: 7 * 0.8 = 5.6 -> 6');

my $t2 = TG->new(location => 'tokenguard on; tokenguard_user u;',
                 prices => { models => { 'gpt-4o' => { input => 1,
                                                       output => 1 } } });
$r = $t2->post('/v1/chat/completions', { model => 'mystery', messages => [] });
is($r->{status}, 403, 'no price and no default: 403');
like($r->{json}{error}{message}, qr/no price is known for the model "mystery"/,
     'message: no price');
$t2->stop;

# budget>= routing: ivy has spent 60% of her 1usd
$t->redis('HSET', "tg:{u:ivy}:$month", 'usd', 600000);
$r = chat('/route', 'ivy', max => 10);
is($r->{headers}{'x-tokenguard-route'}, 'saver', 'budget>=50% holds at 60%');
is($t->upstream->{json}{model}, 'gpt-4o-mini', 'routed');
$t->redis('HSET', "tg:{u:jim}:$month", 'usd', 400000);
$r = chat('/route', 'jim', max => 10);
ok(!$r->{headers}{'x-tokenguard-route'}, 'not at 40%');

# hostile names stay in their own keys
for my $name ('kim}:' . $month, 'ann}', '*', 'u:ann', '%41nn', 'a b') {
    $r = chat('/usd', $name);
    is($r->{status}, 200, "hostile name \"$name\" served");
}
is(uhash('ann')->{requests}, 5, "ann's counters untouched");
ok(scalar(keys %{ $t->hash('tg:{u:kim%7D%3A' . $month . '}:' . $month) }),
   'escaped key for kim}:...');
ok(scalar(keys %{ $t->hash("tg:{u:%2A}:$month") }), 'escaped key for *');
ok(scalar(keys %{ $t->hash("tg:{u:%2541nn}:$month") }), '% escaped too');
$r = chat('/usd', 'x' x 300);
is($r->{status}, 401, 'a name over 256 bytes is refused');

$t->stop;
done_testing;
