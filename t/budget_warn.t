# tokenguard_budget_warn: X-TokenGuard-Budget-Warning once the tightest
# cap that applies (user or team, usd, tokens or requests, day or month,
# the sandbox allowance; from nginx.conf or an ops override) passes a
# threshold, the tokenguard_budget_warnings_total{threshold} counter, and
# $tokenguard_budget_pct; budget>= still reads the user's USD share; with
# leases off and on.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $month = strftime('%Y-%m', gmtime);
my ($y, $m) = (gmtime)[5, 4];
my $reset_month = sprintf('%04d-%02d-01T00:00:00Z',
                          $m == 11 ? $y + 1901 : $y + 1900,
                          $m == 11 ? 1 : $m + 2);

for my $lease (0, 1) {
    my $t = TG->new(lease => $lease, server => q{
        tokenguard_user $http_x_user;
        add_header X-Pct "[$tokenguard_budget_pct]" always;
        location /warn/ {
            tokenguard on;
            tokenguard_cap user 1usd month;
            tokenguard_budget_warn 50 80;
            proxy_pass http://stub/;
        }
        location /tight/ {
            tokenguard on;
            tokenguard_cap user 100usd month;
            tokenguard_cap user 0.5usd day;
            tokenguard_budget_warn 50;
            proxy_pass http://stub/;
        }
        location /quiet/ {
            tokenguard on;
            tokenguard_headers off;
            tokenguard_cap user 1usd month;
            tokenguard_budget_warn 50;
            proxy_pass http://stub/;
        }
        location /nocap/ {
            tokenguard on;
            tokenguard_budget_warn 1;
            proxy_pass http://stub/;
        }
        location /plain/ {
            tokenguard on;
            tokenguard_cap user 1usd month;
            proxy_pass http://stub/;
        }
        location /team/ {
            tokenguard on;
            tokenguard_team $http_x_team;
            tokenguard_cap user 100usd month;
            tokenguard_cap team 1usd month;
            tokenguard_budget_warn 50;
            proxy_pass http://stub/;
        }
        location /tokens/ {
            tokenguard on;
            tokenguard_cap user 100usd month;
            tokenguard_cap user 300000tokens day;
            tokenguard_budget_warn 50;
            tokenguard_route ^gpt-4o$ gpt-4o-mini budget>=50% tag=cheap;
            proxy_pass http://stub/;
        }
        location /requests/ {
            tokenguard on;
            tokenguard_cap user 100usd month;
            tokenguard_cap user 4requests month;
            tokenguard_budget_warn 50;
            proxy_pass http://stub/;
        }
        location /override/ {
            tokenguard on;
            tokenguard_cap user 100usd month;
            tokenguard_cap user 10000000tokens month;
            tokenguard_budget_warn 50;
            proxy_pass http://stub/;
        }
        location /sandbox/ {
            tokenguard on;
            tokenguard_sandbox $http_x_sandbox;
            tokenguard_cap user 100usd month;
            tokenguard_sandbox_allowance 1usd month;
            tokenguard_budget_warn 50;
            proxy_pass http://stub/;
        }
        location = /metrics {
            tokenguard_metrics;
        }
    });
    my $mode = $lease ? 'leases on' : 'leases off';

    # 100000 in * 2.5 + 10000 out * 10 = $0.35 a request on gpt-4o
    my $chat = sub {
        my ($path, $user, %h) = @_;
        my $r = $t->post("$path/v1/chat/completions", {
            model => 'gpt-4o', max_tokens => 10,
            messages => [{ role => 'user', content => 'hi' }] },
            { 'X-User' => $user, 'X-Stub-Usage' => '100000,10000', %h });
        $t->wait_settled("tg:{u:$user}:$month");
        $t->wait_settled("tg:{t:$h{'X-Team'}}:$month") if $h{'X-Team'};
        return $r;
    };
    my $warning = sub { $_[0]{headers}{'x-tokenguard-budget-warning'} };

    my $r = $chat->('/warn', 'ann');
    is($warning->($r), undef, "$mode: 0% used: no warning");
    is($r->{headers}{'x-pct'}, '[0]', "$mode: \$tokenguard_budget_pct 0");
    $r = $chat->('/warn', 'ann');
    is($warning->($r), undef, "$mode: 35%: below 50: no warning");
    is($r->{headers}{'x-pct'}, '[35]', "$mode: \$tokenguard_budget_pct 35");
    $r = $chat->('/warn', 'ann');
    is($warning->($r), "70%; user usd month: \$0.30 of \$1.00 left;"
       . " resets $reset_month", "$mode: 70%: the 50% warning");
    $r = $chat->('/warn', 'ann');
    is($r->{status}, 429, "$mode: 105%: refused");
    like($warning->($r), qr/^105%; user usd month: \$0\.00 of \$1\.00 left/,
         "$mode: the refusal carries the warning too");

    # the tightest cap wins: the day's
    $chat->('/tight', 'bob');
    $r = $chat->('/tight', 'bob');
    like($warning->($r), qr/^70%; user usd day: \$0\.15 of \$0\.50 left;/,
         "$mode: the tightest cap (the day's) is the one warned of");
    like($warning->($r), qr/resets \d{4}-\d\d-\d\dT00:00:00Z$/,
         "$mode: the day's reset");

    # headers off: no header, still counted
    $chat->('/quiet', 'cid') for 1 .. 2;
    $r = $chat->('/quiet', 'cid');
    is($warning->($r), undef, "$mode: tokenguard_headers off: no header");
    is($r->{headers}{'x-pct'}, '[70]', "$mode: the share is still known");

    # no cap: no warning, the share is empty
    $r = $chat->('/nocap', 'dee');
    $r = $chat->('/nocap', 'dee');
    is($warning->($r), undef, "$mode: no cap: no warning");
    is($r->{headers}{'x-pct'}, '[]', "$mode: no cap: the share is empty");

    # without tokenguard_budget_warn nothing is read or added
    $chat->('/plain', 'eve') for 1 .. 2;
    $r = $chat->('/plain', 'eve');
    is($warning->($r), undef, "$mode: no tokenguard_budget_warn: no header");

    # a team cap tighter than the user's: the team's share is warned of,
    # to a member who spent nothing yet
    $chat->('/team', 'fay', 'X-Team' => 'ops') for 1 .. 2;
    $r = $chat->('/team', 'gus', 'X-Team' => 'ops');
    is($warning->($r), "70%; team usd month: \$0.30 of \$1.00 left;"
       . " resets $reset_month", "$mode: the team's cap is the tightest");
    is($r->{headers}{'x-pct'}, '[70]', "$mode: the share is the team's");

    # a token cap tighter than the USD cap; budget>= still reads USD
    $chat->('/tokens', 'hal') for 1 .. 2;
    $r = $chat->('/tokens', 'hal');
    my $reset_day = strftime('%Y-%m-%dT00:00:00Z', gmtime(time + 86400));
    is($warning->($r), "73%; user tokens day: 80000 of 300000 left;"
       . " resets $reset_day",
         "$mode: the token cap is the tightest");
    is($r->{headers}{'x-pct'}, '[73]', "$mode: the share is the tokens'");
    is($r->{headers}{'x-tokenguard-route'}, undef,
       "$mode: budget>= reads the USD share (0%), not the tokens'");

    # a requests cap
    $chat->('/requests', 'ivy') for 1 .. 2;
    $r = $chat->('/requests', 'ivy');
    is($warning->($r), "50%; user requests month: 2 of 4 left;"
       . " resets $reset_month", "$mode: the requests cap is the tightest");

    # an ops override lowers a cap below nginx.conf's
    $t->redis('HSET', 'tg:{u:jo}:limits', 'tokens_month', 300000);
    $chat->('/override', 'jo') for 1 .. 2;
    $r = $chat->('/override', 'jo');
    is($warning->($r), "73%; user tokens month: 80000 of 300000 left;"
       . " resets $reset_month", "$mode: the ops override is the cap");

    # a sandbox request: its allowance, not the caps
    $chat->('/sandbox', 'kim', 'X-Sandbox' => 1) for 1 .. 2;
    $r = $chat->('/sandbox', 'kim', 'X-Sandbox' => 1);
    is($warning->($r), "70%; sandbox usd month: \$0.30 of \$1.00 left;"
       . " resets $reset_month", "$mode: the sandbox allowance");
    $r = $chat->('/sandbox', 'kim');
    is($warning->($r), undef, "$mode: outside the sandbox: the caps (0%)");

    # with leases on, requests while the slices are held read the shares
    # from them (no script): the team's too
    if ($lease) {
        my $live = sub {
            $t->post('/team/v1/chat/completions', {
                model => 'gpt-4o', max_tokens => 10,
                messages => [{ role => 'user', content => 'hi' }] },
                { 'X-User' => 'lou', 'X-Team' => 'lab',
                  'X-Stub-Usage' => '100000,10000' });
        };
        $live->() for 1 .. 2;
        $r = $live->();
        is($warning->($r), "70%; team usd month: \$0.30 of \$1.00 left;"
           . " resets $reset_month", "$mode: the team's share from its slice");
        $t->wait_settled("tg:{u:lou}:$month");
        $t->wait_settled("tg:{t:lab}:$month");
    }

    my $mt = HTTP::Tiny->new->get($t->url('/metrics'))->{content};
    my $n = $lease ? 9 : 8;
    like($mt, qr/^tokenguard_budget_warnings_total\{threshold="50"\} $n$/m,
         "$mode: 50% counted (ann, bob, cid, gus, hal, ivy, jo, kim, lou)");
    like($mt, qr/^tokenguard_budget_warnings_total\{threshold="80"\} 1$/m,
         "$mode: 80% counted once");
    like($mt, qr/^tokenguard_budget_warnings_total\{threshold="1"\} 0$/m,
         "$mode: a configured threshold is shown at 0");

    unlike($t->error_log, qr/\[alert\]/, "$mode: no alert");
}

done_testing;
