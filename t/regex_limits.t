# Regexes on client text run under PCRE2 limits: a catastrophic
# backtracking rule against a crafted 100 KB prompt gives up at once
# (JIT on and off), a tokenguard_deny_prompt rule that gives up refuses
# (fails closed) with a warning that names the rule and shows no prompt
# text, a route or classify rule that gives up does not apply, and
# tokenguard_regex_match_limit sets the limit.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time);
use TG;

my $conf = q{
    location / {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_deny_prompt "^(a+)+$" name=redos;
        tokenguard_deny_prompt "(x+x+)+y" name=needs-y;
        tokenguard_classify "(b|bb)+$" bees;
        tokenguard_route ^gpt-4o$ gpt-4o-mini "prompt~(c|cc)+$" tag=cees;
        proxy_pass http://stub;
    }
    location /low/ {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_regex_match_limit 1000;
        tokenguard_deny_prompt "(?s)BEGIN.*PRIVATE KEY" name=key;
        proxy_pass http://stub/;
    }
    location /utf/ {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_deny_prompt "(*UTF)caf.(?= hi)" name=utf;
        proxy_pass http://stub/;
    }
    location /high/ {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_deny_prompt "(?s)BEGIN.*PRIVATE KEY" name=key;
        proxy_pass http://stub/;
    }
};

my %u = ('X-User' => 'alice');

sub chat {
    my ($text, $model) = @_;
    return { model => $model // 'gpt-4o-mini', max_tokens => 5,
             messages => [{ role => 'user', content => $text }] };
}

sub timed_post {
    my ($t, @args) = @_;
    my $t0 = time;
    my $r = $t->post(@args);
    return ($r, time - $t0);
}

sub fast {
    my ($secs, $name) = @_;
    SKIP: {
        skip 'no timing under valgrind', 1 if $ENV{TG_VALGRIND};
        cmp_ok($secs, '<', 1, "$name: under a second")
            or diag sprintf '%.3f s', $secs;
    }
}

# under valgrind JIT is off anyway
for my $jit ($ENV{TG_VALGRIND} ? (0) : (1, 0)) {
    my $mode = $jit ? 'JIT' : 'no JIT';
    my $t = TG->new(server => $conf, jit => $jit);

    my $r = $t->post('/v1/chat/completions', chat('a' x 1000), \%u);
    is($r->{status}, 403, "$mode: a prompt the rule matches is denied");
    like($r->{json}{error}{message}, qr/refused by the policy rule "redos"/,
         "$mode: by the rule");

    $r = $t->post('/v1/chat/completions', chat('hello'), \%u);
    is($r->{status}, 200, "$mode: a prompt it does not match passes");

    for my $size (30_000, 100_000) {
        my $kb = $size / 1000;
        my $secs;
        ($r, $secs) = timed_post($t, '/v1/chat/completions',
                                 chat('a' x $size . '!'), \%u);
        fast($secs, "$mode: ^(a+)+\$ on $kb KB of a…a!");
        is($r->{status}, 403, "$mode, $kb KB: refused (fails closed)");
        is($r->{json}{error}{code}, 'prompt_denied', "$mode: prompt_denied");
        like($r->{json}{error}{message},
             qr/could not be checked against the policy rule "redos"/,
             "$mode: the message names the rule");
        ok(!$t->upstream, "$mode: nothing reached the provider");
        is($t->last_log->{decision}, 'deny_policy', "$mode: deny_policy");
    }

    my $log = $t->error_log;
    like($log, qr/\[warn\].*prompt of user "alice" refused: rule "redos"/,
         "$mode: error.log warns, naming the rule");
    like($log, qr/\[warn\].*regex "\^\(a\+\)\+\$" gave up on a 100001-byte/,
         "$mode: and the regex, the size and the PCRE2 error");
    unlike($log, qr/aaaaaaaa/, "$mode: no prompt text in error.log");

    # PCRE2 sees that "y" is missing before it backtracks at all
    my $secs;
    ($r, $secs) = timed_post($t, '/v1/chat/completions',
                             chat('x' x 100_000), \%u);
    fast($secs, "$mode: (x+x+)+y on 100 KB of x");
    is($r->{status}, 200, "$mode: (x+x+)+y without a y: no match, passes");

    # classify and route conditions that give up do not apply
    ($r, $secs) = timed_post($t, '/v1/chat/completions',
                             chat('b' x 50_000 . '!', 'gpt-4o'), \%u);
    fast($secs, "$mode: classify and route regexes on 50 KB");
    is($r->{status}, 200, "$mode: classify gives up: the request passes");
    is($t->last_log->{category}, 'chat', "$mode: not classified");
    ($r, $secs) = timed_post($t, '/v1/chat/completions',
                             chat('c' x 50_000 . '!', 'gpt-4o'), \%u);
    fast($secs, "$mode: route condition on 50 KB");
    is($r->{status}, 200, "$mode: route gives up: the request passes");
    is($t->upstream->{json}{model}, 'gpt-4o', "$mode: not rerouted");
    ($r) = timed_post($t, '/v1/chat/completions', chat('cc', 'gpt-4o'), \%u);
    is($t->upstream->{json}{model}, 'gpt-4o-mini',
       "$mode: the same route applies when it can be evaluated");

    # the limit is per location: ".*" backtracks once a byte after BEGIN
    # (the "Y" at the end, or PCRE2 would not even try)
    my $key = 'BEGIN ' . ('z' x 5000) . ' KEY';
    $r = $t->post('/high/v1/chat/completions', chat($key), \%u);
    is($r->{status}, 200, "$mode: default limit: 5 KB after BEGIN passes");
    $r = $t->post('/low/v1/chat/completions', chat($key), \%u);
    is($r->{status}, 403,
       "$mode: tokenguard_regex_match_limit 1000: the same prompt refused");
    $r = $t->post('/low/v1/chat/completions', chat('BEGIN PRIVATE KEY'), \%u);
    like($r->{json}{error}{message}, qr/refused by the policy rule "key"/,
         "$mode: low limit: a short match still denies");

    # a (*UTF) rule reads characters, not bytes: its meaning is kept
    # (that it goes through pcre2_match(), which checks the subject, rather
    # than straight to its JIT code, cannot be seen from here: every
    # subject is UTF-8 by then, request text is checked or made so)
    $r = $t->post('/utf/v1/chat/completions', chat("caf\xc3\xa9 hi"), \%u);
    is($r->{status}, 403, "$mode: a (*UTF) rule: its '.' is one character");
    like($r->{json}{error}{message}, qr/refused by the policy rule "utf"/,
         "$mode: by the rule");

    $t->stop;
}

my $t = TG->new(no_start => 1, location => q{
    tokenguard on;
    tokenguard_regex_match_limit 10;
});
my ($rc, $out) = $t->nginx_test;
isnt($rc, 0, 'a limit under 1000 is refused');
like($out, qr/\Qinvalid value "10" in "tokenguard_regex_match_limit"\E
              \Q directive, it must be from 1000 to 100000000\E/x,
     'with a clear message');
$t->stop_stub;

done_testing;
