# tokenguard_metrics: the Prometheus text exposition, checked by a strict
# parser, with values equal to the traffic sent; kept across a reload.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $t = TG->new(server => q{
    tokenguard_user $http_x_user;
    location / {
        tokenguard on;
        tokenguard_cap user 0.5usd month;
        tokenguard_allow_models "^(gpt-4o|gpt-4o-mini|o3|m[0-9]+)$";
        tokenguard_route ^gpt-4o$ gpt-4o-mini "prompt~^cheap" tag=cheap;
        proxy_pass http://stub;
    }
    location = /metrics {
        tokenguard_metrics;
    }
});

# A strict reader of the text format (0.0.4): every sample's family has
# HELP and TYPE first, names and labels are well formed, values are
# numbers, no series twice, histograms cumulative and ending in +Inf.
sub parse_metrics {
    my ($text) = @_;
    my (%type, %help, %seen, %v, @err);
    my $name_re = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
    for my $line (split /\n/, $text) {
        if ($line =~ /^# HELP ($name_re) (.+)$/) {
            push @err, "HELP twice for $1" if $help{$1}++;
            next;
        }
        if ($line =~ /^# TYPE ($name_re) (counter|gauge|histogram)$/) {
            push @err, "TYPE twice for $1" if $type{$1};
            push @err, "TYPE before HELP for $1" unless $help{$1};
            $type{$1} = $2;
            next;
        }
        if ($line =~ /^#/) { push @err, "bad comment: $line"; next }
        if ($line !~ /^($name_re)(\{(.*)\})? (-?[0-9]+(\.[0-9]+)?|\+Inf)$/) {
            push @err, "bad sample: $line";
            next;
        }
        my ($name, $labels, $value) = ($1, $3 // '', $4);
        (my $family = $name) =~ s/_(bucket|sum|count)$//
            if !$type{$name};
        push @err, "no TYPE for $name" unless $type{$name} || $type{$family};
        my %l;
        my $rest = $labels;
        while (length $rest) {
            $rest =~ s/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)//
                or do { push @err, "bad labels: $labels"; last };
            $l{$1} = $2;
        }
        my $key = "$name\{" . join(',', map { "$_=$l{$_}" } sort keys %l) . '}';
        push @err, "series twice: $key" if $seen{$key}++;
        $v{$key} = $value;
    }
    return (\%v, \@err);
}

sub metrics {
    my $r = HTTP::Tiny->new->get($t->url('/metrics'));
    is($r->{headers}{'content-type'}, 'text/plain; version=0.0.4',
       'exposition content type');
    my ($v, $err) = parse_metrics($r->{content});
    is_deeply($err, [], 'strict exposition check: no errors')
        or diag $r->{content};
    return $v;
}

my $v = metrics();
is($v->{'tokenguard_requests_total{decision=allow}'}, 0, 'no traffic yet');

my $msgs = [{ role => 'user', content => 'hello there' }];
for my $i (1 .. 3) {
    $t->post('/v1/chat/completions', { model => 'gpt-4o', messages => $msgs },
             { 'X-User' => 'ann', 'X-Stub-Usage' => '100,10' });
}
$t->post('/v1/chat/completions', { model => 'gpt-4o', messages => [
         { role => 'user', content => 'cheap question' }] },
         { 'X-User' => 'ann', 'X-Stub-Usage' => '100,10' });
$t->post('/v1/chat/completions', { model => 'o1-pro', messages => $msgs },
         { 'X-User' => 'ann' });
$t->post('/v1/chat/completions', { model => 'gpt-4o', messages => $msgs });
$t->post('/v1/chat/completions', 'not json', { 'X-User' => 'ann' });
$t->post('/v1/chat/completions', { model => 'o3', max_tokens => 100000,
         messages => $msgs }, { 'X-User' => 'bob' });
$t->post('/v1/chat/completions', { model => 'gpt-4o', messages => $msgs },
         { 'X-User' => 'cid', 'X-Stub-Usage' => 'none' });
$t->wait_settled('tg:{u:cid}:' . POSIX::strftime('%Y-%m', gmtime));
sleep 0.3;

$v = metrics();
is($v->{'tokenguard_requests_total{decision=allow}'}, 5, 'allow: 5');
is($v->{'tokenguard_requests_total{decision=deny_policy}'}, 1, 'deny_policy');
is($v->{'tokenguard_requests_total{decision=deny_identity}'}, 1,
   'deny_identity');
is($v->{'tokenguard_requests_total{decision=deny_invalid}'}, 1,
   'deny_invalid');
is($v->{'tokenguard_requests_total{decision=deny_budget}'}, 1, 'deny_budget');
is($v->{'tokenguard_reroutes_total{tag=cheap}'}, 1, 'reroutes by tag');
is($v->{'tokenguard_tokens_total{direction=in,model=gpt-4o}'}, 300 + 7,
   'tokens in by model (3 x 100, and an estimate of 7)');
is($v->{'tokenguard_tokens_total{direction=in,model=gpt-4o-mini}'}, 100,
   'tokens in of the routed model');
is($v->{'tokenguard_tokens_total{direction=out,model=gpt-4o-mini}'}, 10,
   'tokens out');
# gpt-4o: 3 * (100 * 2.5 + 10 * 10) = 1050, plus the estimate
ok($v->{'tokenguard_cost_usd_total{model=gpt-4o}'} >= 0.00105,
   'cost by model');
is($v->{'tokenguard_cost_usd_total{model=gpt-4o-mini}'}, '0.000021',
   'cost by model, to the micro-dollar (100 * 0.15 + 10 * 0.6)');
is($v->{'tokenguard_usage_total{source=provider}'}, 4, 'usage from provider');
is($v->{'tokenguard_usage_total{source=estimate}'}, 1, 'usage estimated');
is($v->{'tokenguard_store_errors_total{}'}, 0, 'no store errors');
ok($v->{'tokenguard_store_latency_seconds_count{}'} >= 6,
   'latency observations');
is($v->{'tokenguard_store_latency_seconds_bucket{le=+Inf}'},
   $v->{'tokenguard_store_latency_seconds_count{}'}, '+Inf bucket = count');
my @b = map { $v->{"tokenguard_store_latency_seconds_bucket{le=$_}"} }
        qw(0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 +Inf);
ok(!grep({ $b[$_] < $b[$_ - 1] } 1 .. $#b), 'buckets are cumulative');
is($v->{'tokenguard_journal_pending{}'}, 0, 'journal empty');

# model labels are bounded: 40 more models, the rest under "other"
for my $i (1 .. 40) {
    $t->post('/v1/chat/completions', { model => "m$i", messages => $msgs },
             { 'X-User' => 'dan', 'X-Stub-Usage' => '1,1' });
}
my $r = HTTP::Tiny->new->get($t->url('/metrics'));
my $models = () = $r->{content} =~ /^tokenguard_cost_usd_total\{/mg;
is($models, 33, 'model labels bounded: 32 and "other"');
like($r->{content}, qr/^tokenguard_tokens_total\{model="other",direction="in"\} \d+$/m,
     'the rest count under "other"');

# Redis gone: errors and the journal show
$t->stop_redis;
$t->post('/v1/chat/completions', { model => 'gpt-4o', messages => $msgs },
         { 'X-User' => 'eve' });
$v = metrics();
ok($v->{'tokenguard_store_errors_total{}'} >= 1, 'store errors counted');
is($v->{'tokenguard_requests_total{decision=store_error}'}, 1,
   'store_error decision');

# a reload keeps the counters
SKIP: {
skip 'valgrind runs nginx as one process: no reload', 3 if $ENV{TG_VALGRIND};
my $before = $v->{'tokenguard_requests_total{decision=allow}'};
my $pid = $t->read_file('logs/nginx.pid');
chomp $pid;
kill 'HUP', $pid;
sleep 1;
$v = metrics();
is($v->{'tokenguard_requests_total{decision=allow}'}, $before,
   'counters kept across a reload');
}

$t->stop;
done_testing;
