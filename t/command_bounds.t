# Every Redis command is built by one bounded builder (core/tg_command.c):
# the longest legal names (user and team of 256 bytes that all need
# escaping, models of 256 bytes rerouted to models of 256 bytes), the
# largest caps and a huge max_tokens neither overflow a buffer nor lose a
# count, per request and with leases; a lease flush that carries more
# spend fields than one call takes splits over several calls and counts
# every one of them.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $month = strftime('%Y-%m', gmtime);
my $day = strftime('%Y-%m-%d', gmtime);

# every byte of these is escaped in the keys: 3 * 256 + 8 bytes a prefix
my $user = '}' x 256;
my $team = '{' x 255 . '%';
my $long_a = 'a' x 256;
my $long_b = 'b' . 'a' x 255;

sub esc { (my $s = $_[0]) =~ s/([^A-Za-z0-9._\@-])/sprintf '%%%02X', ord $1/ge; $s }

# the largest caps tokenguard takes, every one set: the longest numbers
my $caps = q{
        tokenguard_cap user 1000000000usd month;
        tokenguard_cap user 1000000000usd day;
        tokenguard_cap user 1000000000000000tokens month;
        tokenguard_cap user 1000000000000000tokens day;
        tokenguard_cap user 1000000000000000requests month;
        tokenguard_cap user 1000000000000000requests day;
        tokenguard_cap team 1000000000usd month;
        tokenguard_cap team 1000000000usd day;
        tokenguard_cap team 1000000000000000tokens month;
        tokenguard_cap team 1000000000000000tokens day;
        tokenguard_cap team 1000000000000000requests month;
        tokenguard_cap team 1000000000000000requests day;
        tokenguard_sandbox_allowance 1000000000usd month;
        tokenguard_sandbox_allowance 1000000000usd day;
};

my %conf = (server => qq{
    location / {
        tokenguard on;
        tokenguard_user \$http_x_user;
        tokenguard_team \$http_x_team;
        $caps
        tokenguard_route ^a(a+)\$ b\$1 tag=long;
        proxy_pass http://stub;
    }
});

sub chat {
    my ($t, $model, $max, %h) = @_;
    return $t->post('/v1/chat/completions',
                    { model => $model, max_tokens => $max,
                      messages => [{ role => 'user', content => 'hi' }] },
                    { 'X-User' => $user, 'X-Team' => $team,
                      'X-Stub-Usage' => '5,3', %h });
}

sub check_counted {
    my ($t, $name, $n) = @_;

    for my $scope (['u', $user], ['t', $team]) {
        my $key = "tg:{$scope->[0]:" . esc($scope->[1]) . "}:$month";
        ok($t->wait_settled($key), "$name: $scope->[0]: settled");
        my $h = $t->hash($key);
        is($h->{requests}, $n, "$name: $scope->[0]: $n requests counted");
        is($h->{tokens_in}, 5 * $n, "$name: $scope->[0]: tokens_in");
        is($h->{"model:$long_b:tokens_out"}, 3 * $n,
           "$name: $scope->[0]: the routed 256-byte model's field, whole");
        is($h->{"reroute:$long_a->$long_b:requests"}, $n,
           "$name: $scope->[0]: the reroute field of two 256-byte models");
        is($h->{reserved_requests} // 0, 0,
           "$name: $scope->[0]: nothing left reserved");
        is($h->{reserved_usd} // 0, 0,
           "$name: $scope->[0]: no USD left reserved");
        my $dkey = "tg:{$scope->[0]:" . esc($scope->[1]) . "}:$day";
        is($t->hash($dkey)->{requests}, $n, "$name: $scope->[0]: day key");
    }

    my $members = $t->redis('SMEMBERS', "tg:idx:$month:users") || [];
    ok((grep { $_ eq $user } @$members), "$name: the index names the user");
}

for my $lease (0, 1) {
    my $name = $lease ? 'leased' : 'per request';
    # the routed model is expensive: a worst case of many digits
    my $t = TG->new(%conf, workers => 1,
                    prices => { default => { input => 1, output => 2 },
                                models => { $long_b => {
                                    input => 1, output => 100_000 } } },
                    ($lease ? (http => 'tokenguard_lease on flush=100ms'
                                       . ' idle=300ms;') : ()));

    # the longest numbers too: a worst case of 1e14 micro-USD (the lease
    # script once wrote it "1e+14" in its record and never gave it back)
    for (1 .. 3) {
        my $r = chat($t, $long_a, 999_999_999);
        is($r->{status}, 200, "$name: the longest names: 200")
            or diag explain $r->{json};
    }

    is($t->last_log->{model}, $long_b, "$name: routed to the 256-byte model");
    check_counted($t, $name, 3);
    $t->stop;
}

# A lease flush with more spend fields than one call carries (1024): 400
# models of 256 bytes, three fields each, in one flush interval.  The
# split calls must count every model once.
{
    my $t = TG->new(server => qq{
        location / {
            tokenguard on;
            tokenguard_user \$http_x_user;
            $caps
            proxy_pass http://stub;
        }
    }, workers => 1, http => 'tokenguard_lease on flush=30s idle=2s;');

    my @models = map { sprintf('m%03d', $_) . 'x' x 252 } 1 .. 400;
    my $ok = 0;

    for my $m (@models) {
        my $r = $t->post('/v1/chat/completions',
                         { model => $m, max_tokens => 10,
                           messages => [{ role => 'user',
                                          content => 'hi' }] },
                         { 'X-User' => 'many', 'X-Stub-Usage' => '5,3' });
        $ok++ if $r->{status} == 200;
    }

    is($ok, 400, 'many models: 400 requests of 400 models: 200');

    # idle: the slice goes back with its spend, in as many calls as needed
    my $key = "tg:{u:many}:$month";
    ok(TG::wait_for(sub { ($t->hash($key)->{requests} // 0) == 400 }, 20),
       'many models: all 400 requests counted');
    my $h = $t->hash($key);
    is($h->{tokens_out}, 1200, 'many models: tokens_out');
    my @fields = grep { /^model:m\d{3}x{252}:tokens_out$/ } keys %$h;
    is(scalar @fields, 400, 'many models: a field for each of the 400');
    is((grep { $h->{$_} != 3 } @fields), 0,
       'many models: each counted exactly once');
    ok(TG::wait_for(sub { ($t->redis('SCARD', 'tg:{u:many}:leases') // 0)
                          == 0 }, 10),
       'many models: the slice is given back');
    $t->stop;
}

# many scopes at once, leased, each with a long escaped name
{
    my $t = TG->new(server => qq{
        location / {
            tokenguard on;
            tokenguard_user \$http_x_user;
            tokenguard_cap user 1usd month;
            proxy_pass http://stub;
        }
    }, workers => 1, http => 'tokenguard_lease on flush=100ms idle=500ms;');

    my @users = map { sprintf('%03d', $_) . ' /' x 126 . 'z' } 1 .. 60;
    my @req = map {
        ['POST', '/v1/chat/completions',
         { model => 'gpt-4o-mini', max_tokens => 10,
           messages => [{ role => 'user', content => 'hi' }] },
         { 'X-User' => $_, 'X-Stub-Usage' => '5,3' }]
    } (@users, @users);

    my @st = $t->parallel(@req);
    is((grep { $_ == 200 } @st), 120,
       'many scopes: 120 requests of 60 long users: 200');

    my $bad = 0;
    for my $u (@users) {
        my $key = 'tg:{u:' . esc($u) . "}:$month";
        $t->wait_settled($key);
        $bad++ unless TG::wait_for(sub {
            ($t->hash($key)->{requests} // 0) == 2 }, 5);
    }
    is($bad, 0, 'many scopes: each of the 60 users counted twice');
    $t->stop;
}

done_testing;
