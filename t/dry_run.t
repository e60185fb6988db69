# tokenguard_dry_run: every decision made and recorded, none enforced.
# Each would-be refusal passes with the ORIGINAL model upstream, shows as
# DECISION_dry_run in the log and the metrics, and is counted in the
# ledger (dry_denied, dry_denied:KIND); its spend is settled once.
# Routes are named and priced, not applied (route:TAG:dry_saved_usd).
# Next to it, in the same server, a location without dry-run enforces.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $month = strftime('%Y-%m', gmtime);

my $common = q{
        tokenguard on;
        tokenguard_cap user 0.05usd month;
        tokenguard_cap team 1usd month;
        tokenguard_deny_prompt SECRET-[0-9]+ name=secrets;
        tokenguard_allow_models ^gpt-4o;
        tokenguard_route ^gpt-4o$ gpt-4o-mini prompt~summari[sz]e tag=saver;
        proxy_pass http://stub/;
};

my $t = TG->new(server => qq{
    tokenguard_user \$http_x_user;
    tokenguard_team \$http_x_team;
    tokenguard_sandbox \$http_x_sandbox;
    location /dry/ {
        tokenguard_dry_run on;
        $common
    }
    location /teamcap/ {
        tokenguard_dry_run on;
        tokenguard on;
        tokenguard_cap user 100usd month;
        tokenguard_cap team 0.01usd month;
        proxy_pass http://stub/;
    }
    location /enf/ {
        $common
    }
    location = /metrics {
        tokenguard_metrics;
    }
});

sub chat {
    my ($path, %o) = @_;
    my %h = ('X-Stub-Usage' => $o{usage} // '1000,100',
             %{ $o{headers} || {} });
    $h{'X-User'} = $o{user} if defined $o{user};
    my $r = $t->post("$path/v1/chat/completions", {
        model => $o{model} // 'gpt-4o', max_tokens => $o{max} // 100,
        messages => [{ role => 'user', content => $o{prompt} // 'hello' }] },
        \%h);
    return $r;
}

sub wait_field {
    my ($key, $field, $want) = @_;
    TG::wait_for(sub { ($t->redis('HGET', $key, $field) // '') eq $want },
                 5);
    return $t->redis('HGET', $key, $field);
}

sub metrics {
    my $r = HTTP::Tiny->new->get($t->url('/metrics'));
    my %m;
    $m{$1} = $2 while $r->{content} =~ /^(\S+) (\S+)$/mg;
    return \%m;
}

# gpt-4o: 1000 in * 2.5 + 100 out * 10 = 3500 micro-USD;
# gpt-4o-mini: 1000 * 0.15 + 100 * 0.6 = 210

# --- budget: the worst case is over the user's cap -------------------

my $r = chat('/dry', user => 'ann', max => 10000);   # 100000+ > 50000
is($r->{status}, 200, 'budget: passes in dry-run');
is($t->upstream->{json}{model}, 'gpt-4o', 'budget: upstream got the model');
is($t->last_log->{decision}, 'deny_budget_dry_run',
   'budget: decision deny_budget_dry_run');
my $k = "tg:{u:ann}:$month";
is(wait_field($k, 'usd', 3500), 3500, 'budget: its spend is settled');
is(wait_field($k, 'dry_denied:budget', 1), 1, 'budget: dry_denied:budget');
is($t->redis('HGET', $k, 'dry_denied'), 1, 'budget: dry_denied');
is($t->redis('HGET', $k, 'denied'), undef, 'budget: not counted as denied');
is($t->redis('HGET', $k, 'requests'), 1, 'budget: one request');
is($t->redis('HGET', $k, 'reserved_usd') // 0, 0, 'budget: nothing held');
sleep 0.3;
is($t->redis('HGET', $k, 'usd'), 3500, 'budget: settled exactly once');

$r = chat('/enf', user => 'ann2', max => 10000);
is($r->{status}, 429, 'budget: the enforcing location refuses');
is($t->last_log->{decision}, 'deny_budget', 'budget: decision deny_budget');

# a team cap: the user admitted, the team would refuse
$r = chat('/teamcap', user => 'tia', max => 10000,
          headers => { 'X-Team' => 'ops' });
is($r->{status}, 200, 'team cap: passes in dry-run');
is($t->last_log->{decision}, 'deny_budget_dry_run', 'team cap: decision');
is(wait_field("tg:{t:ops}:$month", 'usd', 3500), 3500,
   'team cap: the team is charged');
is(wait_field("tg:{u:tia}:$month", 'usd', 3500), 3500,
   'team cap: the user is charged');
is(wait_field("tg:{t:ops}:$month", 'dry_denied:budget', 1), 1,
   'team cap: counted for the team');
ok($t->wait_settled("tg:{u:tia}:$month"),
   'team cap: the user\'s reservation is settled, not left');

# --- policy: a denied prompt, a model not allowed ---------------------

$r = chat('/dry', user => 'bob', prompt => 'my key SECRET-1234');
is($r->{status}, 200, 'prompt: passes in dry-run');
ok($t->upstream, 'prompt: the provider got it');
is($t->last_log->{decision}, 'deny_policy_dry_run', 'prompt: decision');
$k = "tg:{u:bob}:$month";
is(wait_field($k, 'dry_denied:policy', 1), 1, 'prompt: dry_denied:policy');
is(wait_field($k, 'usd', 3500), 3500, 'prompt: charged');
is($t->redis('HGET', $k, 'denied'), undef, 'prompt: not denied');

$r = chat('/enf', user => 'bob', prompt => 'my key SECRET-1234');
is($r->{status}, 403, 'prompt: the enforcing location refuses');

$r = chat('/dry', user => 'cid', model => 'o3-mini');
is($r->{status}, 200, 'model: passes in dry-run');
is($t->upstream->{json}{model}, 'o3-mini', 'model: as sent');
is($t->last_log->{decision}, 'deny_policy_dry_run', 'model: decision');
is(wait_field("tg:{u:cid}:$month", 'dry_denied:policy', 1), 1,
   'model: dry_denied:policy');

# --- identity: counted under the empty name ----------------------------

$r = chat('/dry');
is($r->{status}, 200, 'identity: passes in dry-run');
is($t->last_log->{decision}, 'deny_identity_dry_run', 'identity: decision');
is($t->last_log->{user}, '', 'identity: no user');
is(wait_field("tg:{u:}:$month", 'dry_denied:identity', 1), 1,
   'identity: dry_denied:identity under tg:{u:}');
is(wait_field("tg:{u:}:$month", 'usd', 3500), 3500, 'identity: charged');
ok(grep({ $_ eq '' } @{ $t->redis('SMEMBERS', "tg:idx:$month:users") }),
   'identity: the empty name is in the period index');

$r = chat('/enf');
is($r->{status}, 401, 'identity: the enforcing location refuses');

# a good user whose team name is too long stays the user, without a team:
# the empty name is only for callers without a usable user name
$r = chat('/dry', user => 'dlong', headers => { 'X-Team' => 'x' x 300 });
is($r->{status}, 200, 'team name too long: passes in dry-run');
is($t->last_log->{decision}, 'deny_identity_dry_run',
   'team name too long: decision');
is(wait_field("tg:{u:dlong}:$month", 'dry_denied:identity', 1), 1,
   'team name too long: counted as the user');
is(wait_field("tg:{u:}:$month", 'dry_denied:identity', 1), 1,
   'team name too long: not under the empty name');

# --- sandbox without an allowance --------------------------------------

$r = chat('/dry', user => 'dee', headers => { 'X-Sandbox' => '1' });
is($r->{status}, 200, 'sandbox: passes in dry-run');
is($t->last_log->{decision}, 'deny_sandbox_dry_run', 'sandbox: decision');
$k = "tg:{u:dee}:$month";
is(wait_field($k, 'sandbox_usd', 3500), 3500, 'sandbox: charged as sandbox');
is(wait_field($k, 'dry_denied:sandbox', 1), 1, 'sandbox: dry_denied:sandbox');

# --- a route: named and priced, not applied -----------------------------

$r = chat('/dry', user => 'eve', prompt => 'summarize this');
is($r->{status}, 200, 'route: passes');
is($t->upstream->{json}{model}, 'gpt-4o', 'route: upstream got the ORIGINAL'
   . ' model');
is($r->{headers}{'x-tokenguard-route'}, undef, 'route: no route header');
my $log = $t->last_log;
is($log->{route}, 'saver', 'route: $tokenguard_route names the route');
is($log->{model}, 'gpt-4o', 'route: $tokenguard_model is what went');
is($log->{decision}, 'allow', 'route: decision allow');
$k = "tg:{u:eve}:$month";
is(wait_field($k, 'route:saver:dry_saved_usd', 3290), 3290,
   'route: would have saved 3500 - 210');
is($t->redis('HGET', $k, 'route:saver:dry_requests'), 1, 'route: counted');
is($t->redis('HGET', $k, 'dry_saved_usd'), 3290, 'route: dry_saved_usd');
is($t->redis('HGET', $k, 'rerouted'), undef, 'route: not rerouted');
is($t->redis('HGET', $k, 'model:gpt-4o:usd'), 3500, 'route: charged at the'
   . ' requested model');

$r = chat('/enf', user => 'fay', prompt => 'summarize this');
is($t->upstream->{json}{model}, 'gpt-4o-mini', 'route: enforcing rewrites');
$k = "tg:{u:fay}:$month";
is(wait_field($k, 'route:saver:saved_usd', 3290), 3290,
   'route: enforcing records route:TAG:saved_usd');
is($t->redis('HGET', $k, 'route:saver:requests'), 1,
   'route: route:TAG:requests');

# --- what dry-run does not let through ---------------------------------

$r = $t->post('/dry/v1/chat/completions', '{"model": "gpt-4o", ',
              { 'X-User' => 'gus' });
is($r->{status}, 400, 'invalid: an unparseable body is still refused');
is($t->last_log->{decision}, 'deny_invalid', 'invalid: decision');
$r = $t->post('/dry/v1/files', '{}', { 'X-User' => 'gus' });
is($r->{status}, 403, 'endpoint: an unmetered call is still refused');
is($t->last_log->{decision}, 'deny_endpoint', 'endpoint: decision');

# --- a client cannot turn dry-run on ------------------------------------

for my $hd ('X-TokenGuard-Dry-Run', 'X-Dry-Run', 'X-TokenGuard-Mode') {
    $r = chat('/enf', user => 'hal', prompt => 'SECRET-9',
              headers => { $hd => 'on' });
    is($r->{status}, 403, "security: $hd: on does not lift a refusal");
}

# --- metrics ------------------------------------------------------------

my $m = metrics();
is($m->{'tokenguard_requests_total{decision="deny_budget_dry_run"}'}, 2,
   'metrics: deny_budget_dry_run');
is($m->{'tokenguard_requests_total{decision="deny_policy_dry_run"}'}, 2,
   'metrics: deny_policy_dry_run');
is($m->{'tokenguard_requests_total{decision="deny_identity_dry_run"}'}, 2,
   'metrics: deny_identity_dry_run (no user, a team name too long)');
is($m->{'tokenguard_requests_total{decision="deny_sandbox_dry_run"}'}, 1,
   'metrics: deny_sandbox_dry_run');
is($m->{'tokenguard_reroutes_total{tag="saver"}'}, 1,
   'metrics: only the enforced reroute is a reroute');
is($m->{'tokenguard_reroute_saved_usd_total{tag="saver"}'}, '0.003290',
   'metrics: tokenguard_reroute_saved_usd_total');

# --- the report -----------------------------------------------------------

my $html = "$t->{dir}/report.html";
my $c = $t->ctl('report', '--period', $month, '--json', '--html', $html);
is($c->{rc}, 0, 'report runs') or diag $c->{err};
my $j = JSON::PP->new->decode($c->{out} =~ s/^wrote.*\n//mr);
my %dry = map { ("$_->{scope}:$_->{name}" => $_) } @{ $j->{dry_run}{refused} };
is($dry{'user:ann'}{refusals}, 1, 'report: ann would have been refused once');
is($dry{'user:ann'}{budget}, 1, 'report: by the budget');
is($dry{'team:ops'}{budget}, 1, 'report: the team too');
is($dry{'user:'}{identity}, 1, 'report: the caller without an identity');
my ($saver) = grep { $_->{tag} eq 'saver' } @{ $j->{dry_run}{routes} };
is($saver->{saved_usd}, 0.00329, 'report: saver would have saved $0.00329');
is($saver->{requests}, 1, 'report: once');
($saver) = grep { $_->{tag} eq 'saver' } @{ $j->{route_savings} };
is($saver->{saved_usd}, 0.00329, 'report: reroute savings by route');
my $page = TG::slurp($html);
like($page, qr/What enforcing would have done/, 'report page: the section');
like($page, qr/\$0\.00329/, 'report page: small amounts keep their digits');

# usage shows the cap nginx.conf applied, recorded by the module
$c = $t->ctl('usage', 'user', 'ann');
like($c->{out}, qr/limit\s+\$0\.05\s+\(nginx\.conf usd_month\)/,
     'usage: the cap nginx.conf applied');
like($c->{out}, qr/spent\s+\$0\.0035 of \$0\.05 \(nginx\.conf\)/,
     'usage: spent of the cap, and whose');
$t->redis('HSET', 'tg:{u:ann}:limits', 'usd_month', 2000000);
$c = $t->ctl('usage', 'user', 'ann');
like($c->{out}, qr/limit\s+\$2\.00\s+\(ops override usd_month\)/,
     'usage: an override wins, and says so');
$c = $t->ctl('--json', 'usage', 'user', 'ann');
is($c->{json}{limit_source}, 'override', 'usage --json: limit_source');
$c = $t->ctl('--json', 'usage', 'user', 'bob');
is($c->{json}{limit_source}, 'nginx.conf', 'usage --json: nginx.conf');
is($c->{json}{limit_usd}, 0.05, 'usage --json: its limit');

# top: the caps that apply, sortable by the share used
$c = $t->ctl('--json', 'top', '--sort', 'share');
my @share = map { $_->{used_pct} // -1 } @{ $c->{json}{rows} || [] };
ok(@share >= 3, 'top --sort share: rows') or diag $c->{out};
is_deeply(\@share, [sort { $b <=> $a } @share], 'top --sort share: biggest'
          . ' share first');
$c = $t->ctl('top', '--sort', 'share', '-n', '50');
like($c->{out}, qr/by share of the cap used/, 'top: the heading says so');
like($c->{out}, qr/^\s+\(no identity\)\s/m, 'top: the empty name shown');
like($c->{out}, qr/^\s+ann\s.*\$2\.00 \(override\)/m,
     'top: the override, and whose');
like($c->{out}, qr/^\s+bob\s.*\$0\.05 \(nginx\.conf\)/m,
     'top: the cap nginx.conf applied, and whose');
$c = $t->ctl('top', '--sort', 'cost');
is($c->{rc}, 2, 'top --sort: a bad value is a usage error');

# a team's share divides numbers of one pass: spend that landed in a
# team's hash after the users' were read (a burst) never makes it > 100%
$t->redis('HINCRBY', "tg:{t:ops}:$month", 'usd', 500000000);
$c = $t->ctl('report', '--period', $month, '--json');
my ($ops) = grep { $_->{name} eq 'ops' } @{ $c->{json}{teams} };
ok($ops->{share_pct} <= 100, "report: a team's share stays <= 100%"
   . " ($ops->{share_pct})");

unlike($t->error_log, qr/\[alert\]|\[emerg\]/, 'no alert in error.log');

done_testing;
