# Prompt text never goes into logs, Redis, metrics or response headers.
# Requests of all three dialects (JSON and stream; admitted, rerouted,
# classified, denied by policy, refused by budget, without identity,
# invalid, spilled to a temp file) carry a unique canary in their prompt
# text.  The canary must then be nowhere: error.log at debug level (if
# the binary has it), the access log and the audit log of
# conf/tokenguard.conf, every Redis key and value, the metrics, the
# response headers and refusal bodies, any file left in the prefix.
# Positive controls: the provider did receive the canary, and the same
# searches find it where it was put on purpose.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Find;
use IO::Compress::Gzip qw(gzip);
use POSIX qw(strftime);
use TG;

my $debug = `$TG::NGINX -V 2>&1` =~ /--with-debug/;
diag $debug ? 'error.log at debug level' : 'no --with-debug: error.log at info';

my $canary = sprintf 'CNRY%08x%08xZQ', int(rand(2**32)), $$ ^ time;

my $t = TG->new(error_log_level => $debug ? 'debug' : 'info',
    http => qq{
    # the shipped policy, routes, caps and the audit log_format
    include $TG::TOP/conf/tokenguard.conf;
    # a log that records the body: the positive control of the log search
    log_format control escape=json '\$request_body';
}, server => q{
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    tokenguard_sandbox $http_x_sandbox;
    client_body_buffer_size 16k;

    location / {
        tokenguard on;
        access_log logs/access.log tg;
        access_log logs/audit.log tokenguard_audit;
        proxy_pass http://stub;
    }
    location /control/ {
        tokenguard on;
        access_log logs/control.log control;
        proxy_pass http://stub/;
    }
    location = /metrics {
        tokenguard_metrics;
    }
});

my $month = strftime('%Y-%m', gmtime);
# "poor" has ops overrides of one micro-dollar and no request at all:
# every request is 429
$t->redis('HSET', 'tg:{u:poor}:limits', 'usd_month', 1, 'requests_month', 0);

my $text = "Please keep this between us: $canary is the code word.";
my $key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE $canary\n";

sub has { index($_[0] // '', $canary) >= 0 }

# [name, path, body (ref: JSON, else raw), user, expected status, headers]
my @cases;

sub dialects {
    my ($what, $prompt, $user, $status) = @_;
    push @cases,
      ["$what openai chat", '/v1/chat/completions',
       { model => 'gpt-4o-mini', max_tokens => 20,
         messages => [{ role => 'system', content => "sys $prompt" },
                      { role => 'user', content => $prompt }] }, $user, $status],
      ["$what openai chat stream", '/v1/chat/completions',
       { model => 'gpt-4o', stream => JSON::PP::true, max_tokens => 20,
         messages => [{ role => 'user', content => [
             { type => 'text', text => $prompt }] }] }, $user, $status],
      ["$what openai responses", '/v1/responses',
       { model => 'gpt-4o-mini', input => $prompt,
         instructions => $prompt }, $user, $status],
      ["$what openai responses stream", '/v1/responses',
       { model => 'gpt-4o-mini', input => $prompt,
         stream => JSON::PP::true }, $user, $status],
      ["$what openai tools", '/v1/chat/completions',
       { model => 'gpt-4o-mini', max_tokens => 20,
         tools => [{ type => 'function', function => { name => 'f',
             description => $prompt, parameters => { type => 'object' } } }],
         messages => [{ role => 'user', content => $prompt },
                      { role => 'assistant', tool_calls => [{ id => 'c1',
                        type => 'function', function => { name => 'f',
                        arguments => "{\"q\":\"$canary\"}" } }] },
                      { role => 'tool', tool_call_id => 'c1',
                        content => $prompt }] }, $user, $status],
      ["$what openai embeddings", '/v1/embeddings',
       { model => 'text-embedding-3-small', input => [$prompt] },
       $user, $status],
      ["$what anthropic", '/v1/messages',
       { model => 'claude-3-5-haiku-latest', max_tokens => 20,
         system => $prompt,
         messages => [{ role => 'user', content => $prompt }] },
       $user, $status],
      ["$what anthropic stream", '/v1/messages',
       { model => 'claude-3-5-haiku-latest', max_tokens => 20,
         stream => JSON::PP::true,
         messages => [{ role => 'user', content => [
             { type => 'text', text => $prompt }] }] }, $user, $status],
      ["$what gemini", '/v1beta/models/gemini-2.0-flash:generateContent',
       { systemInstruction => { parts => [{ text => $prompt }] },
         contents => [{ role => 'user', parts => [{ text => $prompt }] }] },
       $user, $status],
      ["$what gemini stream",
       '/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse',
       { contents => [{ role => 'user', parts => [{ text => $prompt }] }] },
       $user, $status];
}

dialects('admitted', $text, 'alice', 200);
dialects('summary (rerouted, classified)', "Summarize this: $text",
         'alice', 200);
dialects('denied by policy', "$text\n$key", 'bob', 403);
dialects('refused by budget', $text, 'poor', 429);
dialects('no identity', $text, '', 401);

push @cases,
  ['admitted, spilled to a temp file', '/v1/chat/completions',
   { model => 'gpt-4o-mini', max_tokens => 20, messages => [
       { role => 'user', content => ("$text " x 4000) }] }, 'alice', 200],
  ['sandbox', '/v1/chat/completions',
   { model => 'gpt-4o-mini', max_tokens => 20, messages => [
       { role => 'user', content => $text }] }, 'alice', 200,
   { 'X-Sandbox' => 1 }],
  ['invalid: truncated JSON', '/v1/chat/completions',
   qq({"model":"gpt-4o-mini","messages":[{"role":"user","content":"$canary),
   'alice', 400],
  ['invalid: not JSON', '/v1/messages', "$canary " x 10, 'alice', 400],
  ['invalid: wrong type', '/v1/chat/completions',
   { model => 'gpt-4o-mini', max_tokens => "$canary",
     messages => [{ role => 'user', content => $text }] }, 'alice', 400],
  ['invalid: duplicate key', '/v1/chat/completions',
   qq({"model":"gpt-4o-mini","messages":[{"role":"user","content":"$canary"}],)
   . qq("model":"gpt-4o"}), 'alice', 400],
  ['invalid: anthropic messages not a list', '/v1/messages',
   { model => 'claude-3-5-haiku-latest', max_tokens => 5,
     messages => $canary }, 'alice', 400],
  ['invalid: gemini contents not a list',
   '/v1beta/models/gemini-2.0-flash:generateContent',
   { contents => $canary }, 'alice', 400],
  ['invalid: compressed', '/v1/chat/completions',
   do { my $z; gzip(\qq({"model":"gpt-4o-mini","messages":[{"role":"user",)
                     . qq("content":"$canary"}]}), \$z); $z },
   'alice', 400, { 'Content-Encoding' => 'gzip' }],
  ['too large', '/v1/chat/completions',
   { model => 'gpt-4o-mini', messages => [
       { role => 'user', content => ("$text " x 100_000) }] }, 'alice', 413];

my @answers;
for my $c (@cases) {
    my ($name, $path, $body, $user, $status, $extra) = @$c;
    my %h = (%{ $extra || {} });
    $h{'X-User'} = $user if length $user;
    $h{'X-Team'} = 'research' if length $user;
    $h{'Content-Type'} = 'application/json';
    my $r = $t->post($path, $body, \%h);
    is($r->{status}, $status, "$name: $status");
    push @answers, [$name, $r];
    # positive control: the canary does reach the provider
    my @up = $t->upstream_all;
    if ($status == 200) {
        ok((grep { index($_->{body}, $canary) >= 0 } @up),
           "$name: the provider got the prompt with the canary");
    } else {
        ok(!@up, "$name: nothing reached the provider");
    }
}

# let every settle land before searching
for my $u (qw(alice bob poor)) {
    ok($t->wait_settled("tg:{u:$u}:$month"), "$u: settled");
}
ok($t->wait_settled("tg:{t:research}:$month"), 'research: settled');

my $metrics = $t->get('/metrics')->{content};
like($metrics, qr/tokenguard_requests_total\{decision="deny_policy"\} [1-9]/,
     'the metrics saw the traffic');

# a probe in the request line: at debug level error.log records what
# flows through, so a prompt that leaked into it would be seen
my $probe = "PRB$canary" =~ s/CNRY/PROBE/r;
$t->get("/v1/models?probe=$probe", { 'X-User' => 'alice' });

# the same request through a location that logs $request_body
$t->post('/control/v1/chat/completions', $cases[0][2],
         { 'X-User' => 'alice' });

redis_search($t);
$t->stop;

# --- the searches, each with its positive control

my $control = $t->read_file('logs/control.log');
ok(has($control), 'control: a log of $request_body does hold the canary');

my $error_log = $t->error_log;
ok(length $error_log > 1000, 'error.log was written');
if ($debug) {
    like($error_log, qr/\[debug\].*tokenguard: model/,
         'error.log is at debug level, with the module\'s traces');
    ok(index($error_log, $probe) >= 0,
       'control: error.log records the request line at debug level');
}
ok(!has($error_log), 'no canary in error.log')
    or diag join "\n", grep { has($_) } split /\n/, $error_log;

for my $log (qw(access.log audit.log)) {
    my $text = $t->read_file("logs/$log");
    my @lines = split /\n/, $text;
    cmp_ok(scalar @lines, '>=', scalar @cases, "$log has every request");
    ok(!has($text), "no canary in $log")
        or diag join "\n", grep { has($_) } @lines;
}
like($t->read_file('logs/audit.log'), qr/"decision":"deny_budget"/,
     'the audit log is the tokenguard_audit format');

ok(!has($metrics), 'no canary in the metrics');

my @headers = map { my $h = $_->[1]{headers};
                    map { "$_: " . (ref $h->{$_} ? "@{$h->{$_}}" : $h->{$_}) }
                    keys %$h } @answers;
ok(@headers > 100, 'response headers collected');
ok(!(grep { has($_) } @headers), 'no canary in any response header');
my @refusals = grep { $_->[1]{status} >= 400 } @answers;
ok(!(grep { has($_->[1]{content}) } @refusals),
   'no canary in any refusal body')
    or diag join "\n", map { "$_->[0]: $_->[1]{content}" }
                       grep { has($_->[1]{content}) } @refusals;

# every file nginx left in its prefix, but the stub's recordings and the
# control log: temp files of spilled bodies must be gone or clean
my @files;
find(sub { push @files, $File::Find::name if -f }, $t->{dir});
sub file_has { open my $f, '<', $_[0] or return 0; local $/; has(scalar <$f>) }
my @leaks = grep { !m{/upstream/} && !m{/control\.log$} && file_has($_) }
            @files;
ok(!@leaks, 'no canary in any file left in the prefix') or diag "@leaks";
ok((grep { m{/upstream/} && file_has($_) } @files),
   'control: the same search finds it in the stub\'s recording');

done_testing;


# every key name and every value of every type
sub redis_dump {
    my ($t) = @_;
    my ($cursor, @out, %types) = (0);
    do {
        my $r = $t->redis('SCAN', $cursor, 'COUNT', 1000);
        $cursor = $r->[0];
        for my $k (@{ $r->[1] }) {
            my $type = $t->redis('TYPE', $k);
            $types{$type}++;
            my $v = $type eq 'hash'   ? $t->redis('HGETALL', $k)
                  : $type eq 'set'    ? $t->redis('SMEMBERS', $k)
                  : $type eq 'zset'   ? $t->redis('ZRANGE', $k, 0, -1,
                                                  'WITHSCORES')
                  : $type eq 'list'   ? $t->redis('LRANGE', $k, 0, -1)
                  : $type eq 'string' ? $t->redis('GET', $k)
                  : $type eq 'stream' ? $t->redis('XRANGE', $k, '-', '+')
                  : "unknown type $type";
            push @out, $k, flat($v);
        }
    } while ($cursor ne '0');
    return (\@out, \%types);
}

sub flat { map { ref $_ eq 'ARRAY' ? flat(@$_) : ref $_ eq 'HASH'
                 ? flat(values %$_) : $_ // '' } @_ }

sub redis_search {
    my ($t) = @_;
    my ($all, $types) = redis_dump($t);
    cmp_ok(scalar @$all, '>', 20, 'redis: keys and values read');
    ok($types->{hash} && $types->{set} && $types->{zset},
       'redis: hashes, sets and zsets searched')
        or diag explain $types;
    ok(!(grep { has($_) } @$all), 'no canary in any Redis key or value')
        or diag join "\n", grep { has($_) } @$all;

    # control: the same search finds it once it is there
    $t->redis('HSET', 'tg:{u:control}:x', 'f', "a $canary b");
    ok((grep { has($_) } @{ (redis_dump($t))[0] }),
       'control: the Redis search finds a planted canary');
    $t->redis('DEL', 'tg:{u:control}:x');
}
