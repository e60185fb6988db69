# What ops run tokenguard with: conf/prometheus/tokenguard_rules.yml is
# accepted by promtool and its unit tests pass (t/prometheus/); every
# alert is tested both ways (made to fire always, or never, it fails the
# tests); conf/grafana/tokenguard_dashboard.json has Grafana's shape and
# names only metrics docs/metrics.md lists (or dryrun's two); and a real
# nginx's tokenguard_metrics exposes every metric the rules and the
# dashboard use.
use strict;
use warnings;
use lib 't/lib';
use File::Temp qw(tempdir);
use POSIX ();
use Test::More;
use TG;

my $promtool = `command -v promtool 2>/dev/null`;
chomp $promtool;
plan skip_all => 'promtool missing (make test-deps installs prometheus)'
    unless $promtool;

my $top = $TG::TOP;
my $rules_file = "$top/conf/prometheus/tokenguard_rules.yml";
my $tests_file = "$top/t/prometheus/rules_test.yml";
my $rules = TG::slurp($rules_file);
my $tests = TG::slurp($tests_file);

my $out = `$promtool check rules $rules_file 2>&1`;
is($?, 0, 'promtool check rules accepts the rules') or diag $out;

$out = `cd $top/t/prometheus && $promtool test rules rules_test.yml 2>&1`;
is($?, 0, 'promtool test rules: the unit tests pass') or diag $out;

# each alert, made to fire on anything or never, fails the unit tests
my @alerts = $rules =~ /^\s+- alert: (\w+)$/mg;
ok(@alerts >= 8, scalar(@alerts) . ' alerts');
my $dir = tempdir('tg-prom-XXXXXX', TMPDIR => 1, CLEANUP => 1);
(my $mtests = $tests) =~ s{\.\./\.\./conf/prometheus/tokenguard_rules\.yml}
                          {$dir/rules.yml};
open my $tf, '>', "$dir/test.yml" or die $!;
print $tf $mtests;
close $tf;

for my $a (@alerts) {
    ok($tests =~ /alertname: $a\n\s+exp_alerts: \[\]/,
       "$a: a test where it stays quiet");
    ok($tests =~ /alertname: $a\n\s+exp_alerts:\n/,
       "$a: a test where it fires");
    for my $mut (['vector(1)', 'always'], ['vector(1) < 0', 'never']) {
        (my $m = $rules) =~ s{(- alert: $a\n\s+expr: )(?:>-\n(?:\s{10}.*\n)+|.*\n)}
                             {$1$mut->[0]\n}
            or die "no expr for $a";
        open my $f, '>', "$dir/rules.yml" or die $!;
        print $f $m;
        close $f;
        my $o = `$promtool test rules $dir/test.yml 2>&1`;
        isnt($?, 0, "$a firing $mut->[1]: the unit tests fail");
    }
}

# the metrics docs/metrics.md lists, and the two the dryrun work adds
my %doc = map { $_ => 1 }
          TG::slurp("$top/docs/metrics.md") =~ /^\| `(tokenguard_\w+)`/mg;
ok(scalar(keys %doc) >= 9, 'docs/metrics.md lists the metrics');
my %dryrun = map { $_ => 1 }
             qw(tokenguard_budget_warnings_total
                tokenguard_reroute_saved_usd_total);

# the metric families an expression names (histogram series folded)
sub families {
    my ($expr) = @_;
    my %f;
    for my $n ($expr =~ /\b(tokenguard_[a-z_]+)\b/g) {
        (my $base = $n) =~ s/_(bucket|sum|count)$//;
        $f{$doc{$base} ? $base : $n} = 1;
    }
    return keys %f;
}

my %used;
for my $e ($rules =~ /expr: (?:>-\n((?:\s{10}.*\n)+)|(.*)\n)/g) {
    next unless defined $e;
    $used{$_}{rules} = 1 for families($e);
}
ok(scalar(keys %used) >= 7, 'the rules name the metrics')
    or diag explain \%used;
for my $n (sort keys %used) {
    ok($doc{$n} || $dryrun{$n}, "rules: $n is a documented metric");
}

# the dashboard: JSON, Grafana's fields, a target with PromQL per panel
my $d = eval { $TG::JSON->decode(
                   TG::slurp("$top/conf/grafana/tokenguard_dashboard.json")) };
ok($d, 'dashboard: valid JSON') or diag $@;
$d //= {};
for my $k (qw(title uid schemaVersion panels templating time)) {
    ok(defined $d->{$k}, "dashboard: has $k");
}
like($d->{schemaVersion} // '', qr/^\d+$/, 'dashboard: schemaVersion a number');
ok(ref $d->{panels} eq 'ARRAY' && @{ $d->{panels} } >= 8,
   'dashboard: panels');
my ($ds) = grep { $_->{type} eq 'datasource' }
           @{ $d->{templating}{list} || [] };
ok($ds && $ds->{query} eq 'prometheus',
   'dashboard: a Prometheus data source variable');

my (%ids, %titles);
my @want = ('Requests by decision', 'Tokens by model', 'Cost by model',
            'Reroute savings', 'Store latency', 'Journal depth');
for my $p (@{ $d->{panels} || [] }) {
    my $t = $p->{title} // '';
    $titles{$t} = 1;
    ok(!$ids{ $p->{id} // '' }++, "panel $t: a unique id");
    ok($p->{type} && $p->{type} ne 'row', "panel $t: a type");
    my $g = $p->{gridPos} || {};
    ok((grep { defined $g->{$_} && $g->{$_} =~ /^\d+$/ } qw(x y w h)) == 4
       && $g->{x} + $g->{w} <= 24, "panel $t: gridPos within 24 columns");
    my @tg = @{ $p->{targets} || [] };
    ok(@tg, "panel $t: has a target");
    for my $q (@tg) {
        my @f = families($q->{expr} // '');
        ok(length $q->{refId} && @f, "panel $t $q->{refId}: PromQL names"
           . " a tokenguard metric");
        for my $n (@f) {
            ok($doc{$n} || $dryrun{$n}, "panel $t: $n is a documented"
               . " metric");
            $used{$n}{dashboard} = 1;
        }
    }
}
ok($titles{$_}, "dashboard: a panel \"$_\"") for @want;

# a real nginx: every metric the rules and dashboard use is exposed
my $t = TG->new(server => q{
    tokenguard_user $http_x_user;
    location / {
        tokenguard on;
        tokenguard_route ^gpt-4o$ gpt-4o-mini tag=cheap;
        # a threshold's counter is exposed once one is configured
        tokenguard_budget_warn 80;
        proxy_pass http://stub;
    }
    location = /metrics {
        tokenguard_metrics;
    }
});
my $r = $t->post('/v1/chat/completions',
                 { model => 'gpt-4o',
                   messages => [{ role => 'user', content => 'hi' }] },
                 { 'X-User' => 'alice' });
is($r->{status}, 200, 'a rerouted request');
$t->wait_settled('tg:{u:alice}:' . POSIX::strftime('%Y-%m', gmtime));

my $text = HTTP::Tiny->new->get($t->url('/metrics'))->{content};
my %type = $text =~ /^# TYPE (\S+) (\S+)$/mg;
my %sample = map { /^(tokenguard_\w+?)(?:_bucket|_sum|_count)?[{ ]/
                   ? ($1 => 1) : () } split /\n/, $text;
my @skipped;
for my $n (sort keys %used) {
    my $where = join ' and ', sort keys %{ $used{$n} };
    if ($dryrun{$n} && !$type{$n}) {
        push @skipped, $n;
        next;
    }
    ok($type{$n}, "exposed: $n ($where)");
    ok($sample{$n}, "exposed: $n has a sample") or diag $text;
}
SKIP: {
    skip 'not exposed until the dryrun work is merged: '
         . join(', ', @skipped), 1 if @skipped;
    pass('every dryrun metric is exposed');
}
diag 'not exposed yet (dryrun): ' . join(', ', @skipped) if @skipped;

$t->stop;
done_testing();
