# tokenguardctl, the ops CLI, against the counters real traffic leaves in
# a real redis-server: usage, top (and --watch), limit get/set/clear with
# the module obeying the change, sandbox grant, report --json; human
# output and --json to the micro-dollar; bad arguments (exit 2), Redis
# unreachable or refusing the password (exit 3).
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

plan skip_all => "build/tokenguardctl is missing: run make ctl"
    unless -x $TG::CTL;

my $month = strftime('%Y-%m', gmtime);
my $day = strftime('%Y-%m-%d', gmtime);

my $t = TG->new(server => q{
    tokenguard on;
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    tokenguard_sandbox $http_x_sandbox;
    tokenguard_classify "(?i)summar" summary;
    location / {
        tokenguard_sandbox_allowance 10usd month;
        proxy_pass http://stub;
    }
    location /routed/ {
        tokenguard_route ^gpt-4o$ gpt-4o-mini tag=mini;
        proxy_pass http://stub/;
    }
    location /capped/ {
        tokenguard_cap user 100usd month;
        proxy_pass http://stub/;
    }
    location /grant/ {
        proxy_pass http://stub/;
    }
});

# a chat request; the stub reports usage IN,OUT; settled before returning
sub chat {
    my ($path, $user, $usage, %o) = @_;
    my $body = { model => $o{model} // 'gpt-4o',
                 messages => [{ role => 'user',
                                content => $o{prompt} // 'hello there' }] };
    $body->{max_tokens} = $o{max} if $o{max};
    $body->{tools} = [{ type => 'function', function => { name => 'lookup',
                        parameters => { type => 'object' } } }] if $o{tools};
    my %h = ('X-User' => $user, 'X-Stub-Usage' => $usage);
    $h{'X-Team'} = $o{team} if $o{team};
    $h{'X-Sandbox'} = 1 if $o{sandbox};
    my $r = $t->post("$path/v1/chat/completions", $body, \%h);
    (my $k = $user) =~ s/([^A-Za-z0-9._\@-])/sprintf '%%%02X', ord $1/ge;
    $t->wait_settled("tg:{u:$k}:$month");
    $t->wait_settled("tg:{t:$o{team}}:$month") if $o{team};
    return $r;
}

# a JSON amount in dollars equals micro-USD
sub usd_is {
    my ($got, $micro, $name) = @_;
    is(defined $got ? sprintf('%.6f', $got) : 'null',
       sprintf('%.6f', $micro / 1e6), $name);
}

# the traffic.  gpt-4o 2.5/10 per 1M, gpt-4o-mini 0.15/0.6:
# alice (ml)  chat     1M in, 100k out       $3.50
# alice (ml)  summary  200k in, 50k out      $1.00
# bob (ml)    agentic  400k in, 20k out      $1.20
# carol (web) gpt-4o routed to mini, 1M/100k $0.21, saved $3.29
# dave        gpt-4o-mini 2M in              $0.30
# alice       sandbox  100k in, 10k out      $0.35 (apart from the caps)
is(chat('', 'alice', '1000000,100000', team => 'ml')->{status}, 200,
   'traffic: alice chat');
is(chat('', 'alice', '200000,50000', team => 'ml',
        prompt => 'Please summarize this report')->{status}, 200,
   'traffic: alice summary');
is(chat('', 'bob', '400000,20000', team => 'ml', tools => 1)->{status}, 200,
   'traffic: bob agentic');
my $r = chat('/routed', 'carol', '1000000,100000', team => 'web');
is($r->{headers}{'x-tokenguard-route'}, 'mini', 'traffic: carol rerouted');
is(chat('', 'dave', '2000000,0', model => 'gpt-4o-mini')->{status}, 200,
   'traffic: dave');
is(chat('', 'alice', '100000,10000', sandbox => 1)->{status}, 200,
   'traffic: alice sandbox');
is($t->hash("tg:{u:alice}:$month")->{usd}, 4500000,
   'the module counted what the test expects');

# usage user, human
my $c = $t->ctl('usage', 'user', 'alice');
is($c->{rc}, 0, 'usage user: exit 0');
like($c->{out}, qr/^user alice, \Q$month\E \(UTC month\)/, 'usage: heading');
like($c->{out}, qr/^  spent\s+\$4\.50$/m, 'usage: spent $4.50');
like($c->{out}, qr/^  reserved\s+\$0\.00$/m, 'usage: nothing reserved');
like($c->{out}, qr/^  limit\s+none \(nginx\.conf sets no cap\)/m,
     'usage: no override: the limit is nginx.conf\'s, as the module'
     . ' recorded it: none');
like($c->{out}, qr/^  tokens\s+1,200,000 in, 150,000 out$/m, 'usage: tokens');
like($c->{out}, qr/^  requests\s+2$/m, 'usage: requests');
like($c->{out}, qr/^  sandbox\s+\$0\.35 spent/m, 'usage: sandbox');
like($c->{out}, qr/^\s+gpt-4o\s+\$4\.85\s+1,300,000\s+160,000$/m,
     'usage: by model (sandbox included)');
like($c->{out}, qr/^\s+chat\s+routine\s+\$3\.85\s+2\s+79%$/m,
     'usage: by category, chat');
like($c->{out}, qr/^\s+summary\s+routine\s+\$1\.00\s+1\s+21%$/m,
     'usage: by category, summary');

# usage user --json
$c = $t->ctl('--json', 'usage', 'user', 'alice');
is($c->{rc}, 0, 'usage --json: exit 0');
my $j = $c->{json};
ok($j, 'usage --json: JSON') or diag $c->{out};
for my $f (qw(user period spent_usd reserved_usd limit_usd remaining_usd
              tokens_in tokens_out requests sandbox_spent_usd
              sandbox_limit_usd models categories)) {
    ok(exists $j->{$f}, "usage --json: field $f");
}
is($j->{user}, 'alice', 'usage --json: user');
is($j->{period}, $month, 'usage --json: period');
usd_is($j->{spent_usd}, 4500000, 'usage --json: spent_usd');
usd_is($j->{reserved_usd}, 0, 'usage --json: reserved_usd');
is($j->{limit_usd}, undef, 'usage --json: limit_usd null without override');
is($j->{remaining_usd}, undef, 'usage --json: remaining_usd null');
is($j->{tokens_in}, 1200000, 'usage --json: tokens_in');
is($j->{tokens_out}, 150000, 'usage --json: tokens_out');
is($j->{requests}, 2, 'usage --json: requests');
usd_is($j->{sandbox_spent_usd}, 350000, 'usage --json: sandbox_spent_usd');
is($j->{sandbox_limit_usd}, 10,
   'usage --json: sandbox_limit_usd: the allowance nginx.conf applied');
is($j->{sandbox_limit_source}, 'nginx.conf',
   'usage --json: sandbox_limit_source nginx.conf');
is_deeply([sort keys %{ $j->{models} }], ['gpt-4o'], 'usage --json: models');
usd_is($j->{models}{'gpt-4o'}{usd}, 4850000, 'usage --json: model usd');
is($j->{models}{'gpt-4o'}{tokens_in}, 1300000, 'usage --json: model in');
is($j->{models}{'gpt-4o'}{tokens_out}, 160000, 'usage --json: model out');
is_deeply([sort keys %{ $j->{categories} }], ['chat', 'summary'],
          'usage --json: categories');
usd_is($j->{categories}{chat}{usd}, 3850000, 'usage --json: chat usd');
is($j->{categories}{chat}{requests}, 2, 'usage --json: chat requests');
usd_is($j->{categories}{summary}{usd}, 1000000,
       'usage --json: summary usd');
is($j->{categories}{summary}{requests}, 1, 'usage --json: summary requests');

# a day period reads the day hash
$c = $t->ctl('--json', 'usage', 'user', 'alice', '--period', $day);
is($c->{json}{period}, $day, 'usage --period DAY: period');
usd_is($c->{json}{spent_usd}, 4500000, 'usage --period DAY: spent');

# a rerouted user: saved_usd
$c = $t->ctl('usage', 'user', 'carol', '--json');
usd_is($c->{json}{spent_usd}, 210000, 'usage carol: charged at the mini');
is($c->{json}{rerouted}, 1, 'usage carol: rerouted');
usd_is($c->{json}{saved_usd}, 3290000, 'usage carol: saved_usd');
usd_is($c->{json}{models}{'gpt-4o-mini'}{usd}, 210000,
       'usage carol: the routed model');
$c = $t->ctl('usage', 'user', 'carol');
like($c->{out}, qr/^  rerouted\s+1, saved \$3\.29$/m, 'usage carol: human');
like($c->{out}, qr/gpt-4o->gpt-4o-mini\s+1\s+\$3\.29/,
     'usage carol: the reroute pair');

# usage team
$c = $t->ctl('--json', 'usage', 'team', 'ml');
is($c->{rc}, 0, 'usage team: exit 0');
$j = $c->{json};
is($j->{team}, 'ml', 'usage team --json: team');
ok(!exists $j->{user}, 'usage team --json: no user field');
usd_is($j->{spent_usd}, 5700000, 'usage team --json: spent');
is($j->{requests}, 3, 'usage team --json: requests');
usd_is($j->{sandbox_spent_usd}, 0, 'usage team --json: sandbox is per user');
usd_is($j->{categories}{agentic}{usd}, 1200000, 'usage team: agentic');
$c = $t->ctl('usage', 'team', 'ml');
like($c->{out}, qr/^team ml, /, 'usage team: heading');
like($c->{out}, qr/^\s+agentic\s+agentic\s+\$1\.20\s+1\s+21%$/m,
     'usage team: agentic category');

# a name with no data: zeros, not an error
$c = $t->ctl('--json', 'usage', 'user', 'nobody');
is($c->{rc}, 0, 'no data: exit 0');
usd_is($c->{json}{spent_usd}, 0, 'no data: spent 0');
is($c->{json}{requests}, 0, 'no data: requests 0');
is_deeply($c->{json}{models}, {}, 'no data: no models');
$c = $t->ctl('usage', 'user', 'nobody');
like($c->{out}, qr/^  spent\s+\$0\.00$/m, 'no data: $0.00');
like($c->{out}, qr/no usage recorded/, 'no data: said so');

# a name that needs escaping reaches its own keys
is(chat('', 'x y/z', '100000,0', model => 'gpt-4o-mini')->{status}, 200,
   'traffic: a name with a space and a slash');
$c = $t->ctl('--json', 'usage', 'user', 'x y/z');
usd_is($c->{json}{spent_usd}, 15000, 'usage: escaped name (tg:{u:x%20y%2Fz})');
$t->redis('SREM', "tg:idx:$month:users", 'x y/z');
$t->redis('SREM', "tg:idx:$day:users", 'x y/z');

# top
$c = $t->ctl('top');
is($c->{rc}, 0, 'top: exit 0');
like($c->{out}, qr/^top users by spend, \Q$month\E/, 'top: heading');
my @rows = $c->{out} =~ /^  (alice|bob|carol|dave)\s/mg;
is("@rows", 'alice bob dave carol', 'top: by spend, biggest first');
like($c->{out}, qr/^  alice\s+\$4\.50\s+72%\s+-\s+-\s+2\s+1,200,000\s+150,000\s+\$0\.00\s+\$0\.35$/m,
     'top: alice row');
like($c->{out}, qr/total \$6\.21/, 'top: total');

$c = $t->ctl('--json', 'top', '-n', '2');
$j = $c->{json};
is($j->{by}, 'user', 'top --json: by user');
is($j->{count}, 4, 'top --json: count of all users');
is(scalar @{ $j->{rows} }, 2, 'top -n 2: two rows');
is($j->{rows}[0]{name}, 'alice', 'top --json: first');
usd_is($j->{rows}[0]{spent_usd}, 4500000, 'top --json: spent');
usd_is($j->{rows}[0]{sandbox_spent_usd}, 350000, 'top --json: sandbox');
is($j->{rows}[1]{name}, 'bob', 'top --json: second');
usd_is($j->{total_usd}, 6210000, 'top --json: total');

$c = $t->ctl('--json', 'top', '--by', 'team');
is_deeply([map { $_->{name} } @{ $c->{json}{rows} }], ['ml', 'web'],
          'top --by team');
usd_is($c->{json}{rows}[0]{spent_usd}, 5700000, 'top --by team: ml');
usd_is($c->{json}{rows}[1]{spent_usd}, 210000, 'top --by team: web');
$c = $t->ctl('top', '--by', 'team');
like($c->{out}, qr/^  ml\s+\$5\.70\s+96%/m, 'top --by team: human');

$c = $t->ctl('--json', 'top', '--by', 'model');
is_deeply([map { $_->{name} } @{ $c->{json}{rows} }],
          ['gpt-4o', 'gpt-4o-mini'], 'top --by model');
usd_is($c->{json}{rows}[0]{spent_usd}, 6050000, 'top --by model: gpt-4o');
usd_is($c->{json}{rows}[1]{spent_usd}, 510000, 'top --by model: mini');
is($c->{json}{rows}[0]{tokens_in}, 1700000, 'top --by model: tokens_in');
$c = $t->ctl('top', '--by', 'model');
like($c->{out}, qr/^  gpt-4o\s+\$6\.05\s+92%\s+1,700,000\s+180,000$/m,
     'top --by model: human');

$c = $t->ctl('--json', 'top', '--by', 'category');
is_deeply([map { $_->{name} } @{ $c->{json}{rows} }],
          ['chat', 'agentic', 'summary'], 'top --by category');
usd_is($c->{json}{rows}[0]{spent_usd}, 4360000, 'top --by category: chat');
is($c->{json}{rows}[1]{work}, 'agentic', 'top --by category: agentic work');
is($c->{json}{rows}[2]{work}, 'routine', 'top --by category: summary '
   . 'is routine');
$c = $t->ctl('top', '--by', 'category', '--period', $day);
like($c->{out}, qr/^  chat\s+routine\s+\$4\.36\s+66%\s+4$/m,
     'top --by category --period DAY: human');

# top --watch: redraws every 2 s until stopped
{
    my $out = "$t->{dir}/watch.out";
    system("timeout 3 $TG::CTL -r 127.0.0.1:$t->{redis_port} top --watch"
           . " > $out 2>&1");
    my $w = $t->read_file('watch.out');
    my $n = () = $w =~ /tokenguard top by user/g;
    ok($n >= 2, "top --watch under timeout 3: printed $n times");
    like($w, qr/alice\s+\$4\.50/, 'top --watch: the table');

    # Ctrl-C ends it cleanly
    my $pid = fork // die;
    if ($pid == 0) {
        open STDOUT, '>', $out or die;
        { exec $TG::CTL, '-r', "127.0.0.1:$t->{redis_port}", 'top',
               '--watch'; }
        POSIX::_exit(127);
    }
    sleep 2.5;
    kill 'INT', $pid;
    waitpid $pid, 0;
    is($?, 0, 'top --watch: Ctrl-C exits 0');
    $w = $t->read_file('watch.out');
    $n = () = $w =~ /tokenguard top by user/g;
    ok($n >= 2, "top --watch: two refreshes before Ctrl-C ($n)");

  SKIP: {
        skip 'no script(1) to give top --watch a terminal', 2
            unless -x '/usr/bin/script';
        system("script -qec 'timeout 3 $TG::CTL -r 127.0.0.1:"
               . "$t->{redis_port} top --watch' /dev/null > $out 2>&1");
        $w = $t->read_file('watch.out');
        $n = () = $w =~ /\e\[H\e\[2J/g;
        ok($n >= 2, "top --watch on a terminal: clears and redraws ($n)");
        like($w, qr/alice\s+\$4\.50/, 'top --watch on a terminal: table');
    }

    $c = $t->ctl('--json', 'top', '--watch');
    is($c->{rc}, 0, 'top --watch --json: prints once and exits');
    is($c->{json}{rows}[0]{name}, 'alice', 'top --watch --json: JSON');
}

# report --json (t/ctl_report.t checks the page)
$c = $t->ctl('report', '--json');
is($c->{rc}, 0, 'report --json: exit 0');
usd_is($c->{json}{total_usd}, 6560000, 'report --json: total with sandbox');
usd_is($c->{json}{routine_usd}, 5360000, 'report --json: routine');
usd_is($c->{json}{agentic_usd}, 1200000, 'report --json: agentic');

# limit: set, get, the module obeys, clear
$c = $t->ctl('limit', 'get', 'user', 'erin');
is($c->{rc}, 0, 'limit get: exit 0');
like($c->{out}, qr/^  usd_month\s+not set\s+\(limit: from nginx\.conf or none\)$/m,
     'limit get: nothing set: nginx.conf or none');
is(chat('/capped', 'erin', '1000,100', max => 200000)->{status}, 200,
   'erin: worst case $2 fits the $100 cap of nginx.conf');

$c = $t->ctl('limit', 'set', 'user', 'erin', 'usd_month', '1');
is($c->{rc}, 0, 'limit set: exit 0');
like($c->{out}, qr/usd_month is now \$1\.00 \(was not set\)/,
     'limit set: says what it was and is');
is($t->hash('tg:{u:erin}:limits')->{usd_month}, 1000000,
   'limit set: micro-USD in Redis');
$r = chat('/capped', 'erin', '1000,100', max => 200000);
is($r->{status}, 429, 'a lowered cap: the module refuses');
is($r->{headers}{'x-tokenguard-code'}, 'budget_exceeded', 'budget_exceeded');
like($r->{json}{error}{message}, qr/\$1\.00 monthly USD cap/,
     'the refusal names the new cap');

$c = $t->ctl('--json', 'limit', 'get', 'user', 'erin');
is_deeply($c->{json}{limits}, { usd_month => 1 }, 'limit get --json');
$c = $t->ctl('--json', 'usage', 'user', 'erin');
usd_is($c->{json}{limit_usd}, 1000000, 'usage: limit_usd from the override');
my $spent = $t->hash("tg:{u:erin}:$month")->{usd};
usd_is($c->{json}{remaining_usd}, 1000000 - $spent, 'usage: remaining_usd');
$c = $t->ctl('usage', 'user', 'erin');
like($c->{out}, qr/^  limit\s+\$1\.00  \(ops override usd_month\)$/m,
     'usage: the override');

$c = $t->ctl('limit', 'set', 'user', 'erin', 'usd_month', 'none');
is($t->hash('tg:{u:erin}:limits')->{usd_month}, -1, 'limit set none: -1');
like($c->{out}, qr/none \(no cap\)/, 'limit set none: says so');
is(chat('/capped', 'erin', '1000,100', max => 20000000)->{status}, 200,
   'none: the $200 worst case passes the $100 cap of nginx.conf');

$c = $t->ctl('limit', 'set', 'user', 'erin', 'usd_month', '2,000.50');
is($t->hash('tg:{u:erin}:limits')->{usd_month}, 2000500000,
   'limit set 2,000.50: 2000500000 micro-USD');
$c = $t->ctl('limit', 'set', 'user', 'erin', 'requests_day', '500');
is($t->hash('tg:{u:erin}:limits')->{requests_day}, 500,
   'limit set requests_day: a count');
$c = $t->ctl('limit', 'get', 'user', 'erin', 'requests_day');
like($c->{out}, qr/^  requests_day\s+500$/m, 'limit get FIELD');
unlike($c->{out}, qr/usd_month/, 'limit get FIELD: that field only');

$c = $t->ctl('limit', 'clear', 'user', 'erin', 'usd_month');
is($c->{rc}, 0, 'limit clear FIELD: exit 0');
like($c->{out}, qr/usd_month override removed \(was \$2,000\.50\)/,
     'limit clear FIELD: says what it was');
is_deeply($t->hash('tg:{u:erin}:limits'), { requests_day => 500 },
          'limit clear FIELD: only that field');
is(chat('/capped', 'erin', '1000,100', max => 20000000)->{status}, 429,
   'cleared: the cap of nginx.conf applies again');
$c = $t->ctl('limit', 'clear', 'user', 'erin');
is($t->redis('EXISTS', 'tg:{u:erin}:limits'), 0,
   'limit clear: the hash is gone');
like($c->{out}, qr/every ops override removed/, 'limit clear: says so');

$c = $t->ctl('limit', 'set', 'team', 'ml', 'usd_day', '0.25');
is($t->hash('tg:{t:ml}:limits')->{usd_day}, 250000, 'limit set team');
$c = $t->ctl('--json', 'limit', 'clear', 'team', 'ml');
is_deeply($c->{json}{limits}, {}, 'limit clear --json: nothing left');

# sandbox grant: a sandbox request with no allowance, then with one
$r = chat('/grant', 'frank', '1000,100', sandbox => 1);
is($r->{status}, 429, 'sandbox without allowance: refused');
is($r->{headers}{'x-tokenguard-code'}, 'sandbox_exhausted',
   'sandbox_exhausted');
$c = $t->ctl('sandbox', 'grant', 'user', 'frank', '5');
is($c->{rc}, 0, 'sandbox grant: exit 0');
like($c->{out}, qr/sandbox_usd_month is now \$5\.00/, 'sandbox grant: says');
is($t->hash('tg:{u:frank}:limits')->{sandbox_usd_month}, 5000000,
   'sandbox grant: sandbox_usd_month in micro-USD');
$r = chat('/grant', 'frank', '100000,10000', sandbox => 1);
is($r->{status}, 200, 'sandbox grant: a sandbox request is admitted');
$c = $t->ctl('--json', 'usage', 'user', 'frank');
usd_is($c->{json}{sandbox_limit_usd}, 5000000, 'usage: sandbox_limit_usd');
usd_is($c->{json}{sandbox_spent_usd}, 350000, 'usage: sandbox_spent_usd');
usd_is($c->{json}{spent_usd}, 0, 'usage: the caps did not see it');
$c = $t->ctl('usage', 'user', 'frank');
like($c->{out}, qr/^  sandbox\s+\$0\.35 spent of \$5\.00 .*\$4\.65 left\)$/m,
     'usage: sandbox against the allowance');
$c = $t->ctl('--json', 'sandbox', 'grant', 'user', 'frank', '1.5', 'day');
is($t->hash('tg:{u:frank}:limits')->{sandbox_usd_day}, 1500000,
   'sandbox grant day: sandbox_usd_day');
is_deeply($c->{json}{limits}, { sandbox_usd_day => 1.5 },
          'sandbox grant --json');

# bad arguments: exit 2 and a message, before any connection
my @bad = (
    [[], qr/usage: tokenguardctl/, 'no command'],
    [['frob'], qr/unknown command "frob"/, 'unknown command'],
    [['usage', 'group', 'x'], qr/"group" is not user or team/, 'bad scope'],
    [['usage', 'user'], qr/usage user\|team NAME/, 'missing name'],
    [['usage', 'user', 'a', '--period', '2025-13'], qr/bad period "2025-13"/,
     'bad month'],
    [['usage', 'user', 'a', '--period', '2025-02-30'],
     qr/bad period "2025-02-30"/, 'bad day'],
    [['usage', 'user', 'a', '--period', 'May'], qr/bad period/, 'bad word'],
    [['usage', 'user', 'a', '--watch'], qr/--watch is not an option of "usage"/,
     'option of another command'],
    [['--frob', 'top'], qr/unknown option "--frob"/, 'unknown option'],
    [['top', '--by', 'region'], qr/--by "region"/, 'bad --by'],
    [['top', '-n', '0'], qr/-n needs a number/, 'bad -n'],
    [['limit', 'get', 'user', 'a', 'usd_year'],
     qr/unknown limit field "usd_year"/, 'unknown field'],
    [['limit', 'set', 'user', 'a', 'usd_month', '-5'],
     qr/negative amount "-5" refused/, 'negative amount'],
    [['limit', 'set', 'user', 'a', 'usd_month', 'lots'],
     qr/"lots" is not an amount in dollars/, 'not an amount'],
    [['limit', 'set', 'user', 'a', 'tokens_day', '1.5'],
     qr/not a whole number/, 'a fraction of a token'],
    [['limit', 'set', 'user', 'a', 'usd_month'], qr/limit set user\|team/,
     'set without a value'],
    [['limit', 'drop', 'user', 'a'], qr/use get, set or clear/, 'bad verb'],
    [['sandbox', 'grant', 'team', 'ml', '5'], qr/allowances are per user/,
     'sandbox grant team'],
    [['sandbox', 'grant', 'user', 'a', '-1'], qr/negative amount/,
     'sandbox grant negative'],
    [['sandbox', 'grant', 'user', 'a', '5', 'week'], qr/"week" is not month/,
     'sandbox grant period'],
    [['report'], qr/--html FILE/, 'report without output'],
    [['-r', 'host:port', 'top'], qr/bad Redis address "host:port"/,
     'bad address'],
);
for my $b (@bad) {
    my ($args, $re, $name) = @$b;
    $c = $t->ctl(@$args);
    is($c->{rc}, 2, "bad arguments, $name: exit 2");
    like($c->{err}, $re, "bad arguments, $name: message");
}
$c = $t->ctl('--help');
is($c->{rc}, 0, '--help: exit 0');
like($c->{out}, qr/exit status/, '--help: the usage');

# Redis unreachable: exit 3, the address in the message
my $dead = TG::free_port();
for my $cmd (['usage', 'user', 'alice'], ['top'], ['limit', 'get', 'user',
             'a'], ['report', '--json']) {
    $c = $t->ctl('-r', "127.0.0.1:$dead", @$cmd);
    is($c->{rc}, 3, "unreachable, $cmd->[0]: exit 3");
    like($c->{err}, qr/cannot connect to Redis at 127\.0\.0\.1:$dead/,
         "unreachable, $cmd->[0]: names the address");
}
$c = $t->ctl('-r', "unix:$t->{dir}/no.sock", 'top');
is($c->{rc}, 3, 'unix socket missing: exit 3');
like($c->{err}, qr/\Qunix:$t->{dir}\/no.sock\E/, 'unix socket: named');

# another database: nothing there
$c = $t->ctl('--db', '5', '--json', 'usage', 'user', 'alice');
usd_is($c->{json}{spent_usd}, 0, '--db 5: another database');

# a password: missing, wrong, right (and from the environment)
$t->redis('CONFIG', 'SET', 'requirepass', 'sekret');
$t->{redis_password} = 'sekret';
$c = $t->ctl('top');
is($c->{rc}, 3, 'no password: exit 3');
like($c->{err}, qr/Redis at 127\.0\.0\.1:\d+ needs a password/,
     'no password: says so');
$c = $t->ctl('-a', 'wrong', 'top');
is($c->{rc}, 3, 'wrong password: exit 3');
like($c->{err}, qr/Redis at 127\.0\.0\.1:\d+ refused the password/,
     'wrong password: says so');
$c = $t->ctl('-a', 'sekret', '--json', 'usage', 'user', 'alice');
usd_is($c->{json}{spent_usd}, 4500000, '-a: the right password');
$c = $t->ctl({ TOKENGUARD_REDIS_PASSWORD => 'sekret' }, '--json', 'top');
is($c->{rc}, 0, 'TOKENGUARD_REDIS_PASSWORD: used');
$t->redis('CONFIG', 'SET', 'requirepass', '');
delete $t->{redis_password};

# a Redis that stops answering: the timeout, exit 3
{
    kill 'STOP', $t->{redis_pid};
    my $t0 = time;
    $c = $t->ctl('top');
    kill 'CONT', $t->{redis_pid};
    is($c->{rc}, 3, 'Redis stalled: exit 3');
    like($c->{err}, qr/127\.0\.0\.1:\d+.*no answer within 5 seconds/,
         'Redis stalled: says so');
    ok(time - $t0 <= 8, 'Redis stalled: gave up after the timeout');
}

$t->stop;
done_testing;
