# Reservation and lease ids are 128 random bits.  The settle script drops
# an id it has seen (a journal replay must count once), so an id that two
# nginx instances both make would be a request counted once for two: free
# tokens.  "pid-msec-seq" ids did repeat: two instances in containers
# have the same worker pid, the same monotonic clock and the same
# sequence.  Here two instances run, each in its own pid namespace (so
# their workers have the same pid), against one Redis, take requests at
# the same moments, are restarted and take more: every settle counts.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime :sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $month = strftime('%Y-%m', gmtime);
my $ID = qr/^[0-9a-f]{32}$/;

my $server = q{
    location = /pid {
        return 200 $pid;
    }
    location / {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_team $http_x_team;
        tokenguard_cap user 100usd month;
        tokenguard_cap team 100usd month;
        proxy_pass http://stub;
    }
};

my $chat = { model => 'gpt-4o-mini', max_tokens => 10,
             messages => [{ role => 'user', content => 'hi' }] };

# ---- the form of the ids ----

{
    # the per-request ledger's ids: with leases a settle is a slice's batch
    my $t = TG->new(server => $server, lease => 0);
    for (1 .. 5) {
        my $r = $t->post('/v1/chat/completions', $chat,
                         { 'X-User' => 'alice', 'X-Team' => 'eng',
                           'X-Stub-Usage' => '5,3' });
        is($r->{status}, 200, "per request: request $_: 200");
    }
    $t->wait_settled("tg:{u:alice}:$month");
    $t->wait_settled("tg:{t:eng}:$month");
    TG::wait_for(sub {
        @{ $t->redis('ZRANGE', 'tg:{t:eng}:settled', 0, -1) || [] } == 5 });

    my $u = $t->redis('ZRANGE', 'tg:{u:alice}:settled', 0, -1) || [];
    my $g = $t->redis('ZRANGE', 'tg:{t:eng}:settled', 0, -1) || [];
    is(scalar @$u, 5, 'per request: five settled ids');
    is((grep { !/$ID/ } @$u), 0, 'per request: each is 32 hex digits')
        or diag explain $u;
    my %seen = map { $_ => 1 } @$u;
    is(scalar keys %seen, 5, 'per request: all distinct');
    is_deeply([sort @$g], [sort @$u],
              'per request: the user and team settles share the id');
    $t->stop;
}

{
    my $t = TG->new(server => $server, workers => 1,
                    http => 'tokenguard_lease on flush=100ms idle=60s;');
    for (1 .. 3) {
        my $r = $t->post('/v1/chat/completions', $chat,
                         { 'X-User' => 'bob', 'X-Stub-Usage' => '5,3' });
        is($r->{status}, 200, "leased: request $_: 200");
    }
    my $leases = [];
    TG::wait_for(sub {
        $leases = $t->redis('SMEMBERS', 'tg:{u:bob}:leases') || [];
        @$leases == 1 });
    like($leases->[0] // '', qr/^L[0-9a-f]{32}$/,
         'leased: the slice id is "L" and 32 hex digits');
    my $batches = [];
    TG::wait_for(sub {
        $batches = $t->redis('ZRANGE', 'tg:{u:bob}:settled', 0, -1) || [];
        @$batches >= 1 });
    ok(@$batches && !grep({ !/^\Q$leases->[0]\E-\d+$/ } @$batches),
       'leased: the spend batches are the slice id and a number')
        or diag explain $batches;
    TG::wait_for(sub {
        ($t->hash("tg:{u:bob}:$month")->{requests} // 0) == 3 });
    is($t->hash("tg:{u:bob}:$month")->{requests}, 3, 'leased: 3 counted');
    $t->stop;
}

# ---- two instances, one Redis, the same worker pid ----

# nginx in a pid namespace of its own: its worker has the same pid as the
# other instance's.  The pid file holds a pid of that namespace, so it is
# written elsewhere and the harness never signals it; the namespace ends
# with the unshare process, which is this test's child.
sub start_in_ns {
    my ($t) = @_;
    my $conf = "$t->{dir}/nginx.conf";
    $t->write_conf;
    open my $f, '<', $conf or die $!;
    my $text = do { local $/; <$f> };
    close $f;
    $text =~ s{pid \S+/logs/nginx\.pid;}{pid $t->{dir}/logs/ns.pid;}
        or die "no pid line";
    open $f, '>', $conf or die $!;
    print $f $text;
    close $f;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec 'unshare', '--pid', '--fork', '--kill-child', 'sh', '-c',
             "$TG::NGINX -p $t->{dir} -c $conf && exec sleep 3600";
        die "exec unshare: $!";
    }
    $t->{ns_pid} = $pid;
    TG::wait_port($t->{port}, 'nginx in its namespace');
}

sub stop_ns {
    my ($t) = @_;
    return unless $t->{ns_pid};
    # unshare waits out TERM; its death kills the namespace (--kill-child)
    kill 'KILL', $t->{ns_pid};
    waitpid $t->{ns_pid}, 0;
    delete $t->{ns_pid};
    TG::wait_for(sub {
        !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$t->{port}") }, 5);
}

SKIP: {
    skip 'unshare --pid is not permitted here', 1
        unless system('unshare --pid --fork true 2>/dev/null') == 0;
    skip 'valgrind runs nginx in the foreground', 1 if $ENV{TG_VALGRIND};

    my $x = TG->new(server => $server, workers => 1, no_start => 1);
    my $y = TG->new(server => $server, workers => 1, no_start => 1,
                    redis_port => $x->{redis_port});
    my $rounds = 60;
    my $total = 0;

    for my $run (1, 2) {
        start_in_ns($_) for $x, $y;

        my $pa = $x->get('/pid')->{content};
        my $pb = $y->get('/pid')->{content};
        ok($pa && $pa eq $pb,
           "run $run: both workers have pid $pa (as in two containers)");

        # one request to each instance at once, round after round: both
        # workers make their n-th reservation at the same moment
        my $ok = 0;
        for my $i (1 .. $rounds) {
            my @st = TG::concurrent([
                [$x, 'POST', '/v1/chat/completions', $chat,
                 { 'X-User' => 'carol', 'X-Team' => 'ops',
                   'X-Stub-Usage' => '5,3' }],
                [$y, 'POST', '/v1/chat/completions', $chat,
                 { 'X-User' => 'carol', 'X-Team' => 'ops',
                   'X-Stub-Usage' => '5,3' }],
            ]);
            $ok += grep { $_ == 200 } @st;
        }
        is($ok, 2 * $rounds, "run $run: every request: 200");
        $total += 2 * $rounds;

        for my $key ("tg:{u:carol}:$month", "tg:{t:ops}:$month") {
            TG::wait_for(sub {
                ($x->hash($key)->{requests} // 0) >= $total }, 10);
            my $h = $x->hash($key);
            is($h->{requests}, $total, "run $run: $key: $total requests");
            is($h->{tokens_out}, 3 * $total, "run $run: $key: tokens_out");
        }

        # a restart: the same pids again, and a sequence starting over
        stop_ns($_) for $x, $y;
    }

    my $ids = $x->redis('ZRANGE', 'tg:{u:carol}:settled', 0, -1) || [];
    if (($ENV{TG_LEASE} // 1) ne '0') {
        # leased (the default): the settles are slices' batches; the two
        # instances and their restarts hold a slice each, none shared
        my %slices = map { /^(L[0-9a-f]{32})-\d+$/ ? ($1 => 1) : ('bad' => 1) }
                     @$ids;
        ok(@$ids && !$slices{bad}, 'leased: every settled id is a batch'
           . ' of a slice') or diag explain $ids;
        cmp_ok(scalar keys %slices, '>=', 4,
               'leased: 2 instances x 2 runs, a slice id each, none shared');
    } else {
        is(scalar @$ids, $total, "$total settled ids, none shared");
    }

    $_->stop for $y, $x;
}

done_testing;
