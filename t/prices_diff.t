# tokenguard against an independent calculator: for every model of the
# shipped conf/prices.json that @pydantic/genai-prices knows, each dialect
# and a grid of usage shapes (plain, cached, cache writes 5m / 1h / both,
# each side of every tier threshold, reasoning, Gemini thoughts, audio,
# images, web searches; JSON and streams), the stub provider returns that
# usage and tokenguard must settle exactly calcPrice(extractUsage(
# response)) micro-USD: in $tokenguard_cost_usd and in the Redis ledger.
# t/prices_diff.mjs makes the cases; one nginx takes them in batches.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $pkg = "$TG::TOP/tools/prices/node_modules/\@pydantic/genai-prices";
plan skip_all => 'node or tools/prices/node_modules missing: run make test'
    unless -d $pkg && `node --version 2>/dev/null`;

my $month = strftime('%Y-%m', gmtime);

my $out = `node $TG::TOP/t/prices_diff.mjs $TG::TOP/conf/prices.json`;
die "t/prices_diff.mjs failed\n" if $?;
my $d = $TG::JSON->decode($out);
my @cases = @{ $d->{cases} };
# TG_PRICES_DIFF=REGEX runs only the cases whose name matches
@cases = grep { $_->{name} =~ /$ENV{TG_PRICES_DIFF}/ } @cases
    if $ENV{TG_PRICES_DIFF};
diag("not compared: $_") for @{ $d->{skipped} };

# the shipped table as it is: no default, so a model tokenguard does not
# find is refused (and named below), not priced at a made-up rate
open my $f, '<', "$TG::TOP/conf/prices.json" or die $!;
my $table = $TG::JSON->decode(do { local $/; <$f> });
close $f;

# kept-alive connections to the stub: no fork per request
my $t = TG->new(prices => $table, http => q{
    upstream stub_ka {
        server %%UPSTREAM%%;
        keepalive 16;
    }
}, server => q{
    location / {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_max_tokens_default 100;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://stub_ka;
    }
    location = /metrics {
        tokenguard_metrics;
    }
});

# one user per provider: the ledger's sum is checked per provider
my (%want, %id);
my $batch = 40;
for (my $i = 0; $i < @cases; $i += $batch) {
    my @reqs;
    for my $j ($i .. ($i + $batch - 1 < $#cases ? $i + $batch - 1 : $#cases))
    {
        my $c = $cases[$j];
        my ($user) = $c->{name} =~ m{^(\w+)/};
        $want{$user} += $c->{expected};
        $id{"d$j"} = $c;
        push @reqs, [$t, 'POST', $c->{path}, $c->{body}, {
            'Content-Type' => 'application/json',
            'X-User' => "diff-$user",
            'X-TG-Test-Id' => "d$j",
            'X-Stub-Usage-Json' => $TG::JSON->encode($c->{usage}) }];
    }
    my @st = TG::concurrent(\@reqs, 60);
    for my $k (0 .. $#st) {
        next if $st[$k] == 200;
        fail("$cases[$i + $k]{name}: status $st[$k]");
    }
}

# every access log line, by test id (the log phase may lag the response)
my %got;
TG::wait_for(sub {
    %got = ();
    for my $line (split /\n/, $t->access_log) {
        my $l = $TG::JSON->decode($line);
        $got{$l->{test_id}} = $l if exists $id{$l->{test_id}};
    }
    keys %got == keys %id;
}, 30);

my @differ;
for my $k (sort { substr($a, 1) <=> substr($b, 1) } keys %id) {
    my $c = $id{$k};
    my $l = $got{$k};
    my $usd = $l ? $l->{cost_usd} : 'no log line';
    my $micro = $usd =~ /^(\d+)\.(\d{6})$/ ? $1 * 1000000 + $2 : undef;
    next if defined $micro && $micro == $c->{expected};
    push @differ, sprintf('%s: tokenguard %s, genai-prices %.6f (%s USD)',
                          $c->{name}, $usd, $c->{expected} / 1e6,
                          $c->{expected_usd});
}

is(scalar @differ, 0, scalar(@cases) . ' cases: tokenguard settles what'
   . ' genai-prices charges, to the micro-dollar')
    or diag(join "\n", 'differ:', @differ);

# the ledger, tokenguardctl and the metrics hold the same figures
my $total = 0;
for my $user (sort keys %want) {
    my $key = "tg:{u:diff-$user}:$month";
    ok($t->wait_settled($key), "$user: every request settled");
    is($t->redis('HGET', $key, 'usd'), $want{$user},
       "$user: the Redis ledger holds the sum of the database's prices");
    my $c = $t->ctl('--json', 'usage', 'user', "diff-$user");
    is(sprintf('%.6f', $c->{json}{spent_usd} // -1),
       sprintf('%.6f', $want{$user} / 1e6), "$user: tokenguardctl too");
    $total += $want{$user};
}

my $m = $t->get('/metrics')->{content} // '';
my $sum = 0;
$sum += $1 * 1000000 + $2
    while $m =~ /^tokenguard_cost_usd_total\{[^}]*\} (\d+)\.(\d{6})$/mg;
is($sum, $total, 'the metrics count the same dollars');

my %models = map { ($_->{name} =~ m{^(\S+)})[0] => 1 } @cases;
cmp_ok(scalar keys %models, '>', 150, scalar(keys %models)
       . ' models compared') unless $ENV{TG_PRICES_DIFF};

$t->stop;
done_testing;
