# Response accounting: for each dialect, JSON and stream, the counters in
# Redis equal the provider's usage and the cost is the price table's
# arithmetic to the micro-dollar; estimates where usage never comes;
# upstream errors charge nothing; gzip, chunked, big responses; one
# settle across retries and error_page.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $month = strftime('%Y-%m', gmtime);
my $true = JSON::PP::true;
my $dead = TG::free_port();

my $t = TG->new(server => qq{
    tokenguard on;
    tokenguard_user \$http_x_user;
    location / {
        proxy_pass http://stub;
        proxy_buffering off;
    }
    location /buffered/ {
        proxy_pass http://stub/;
        proxy_buffering on;
        proxy_buffer_size 4k;
        proxy_buffers 4 4k;
        proxy_max_temp_file_size 64m;
    }
    location /routed/ {
        tokenguard_route ^gpt-4o\$ gpt-4o-mini tag=mini;
        proxy_pass http://stub/;
    }
    location /retry/ {
        proxy_pass http://flaky/;
        proxy_next_upstream error;
    }
    location /intercept/ {
        proxy_pass http://stub/;
        proxy_intercept_errors on;
        error_page 500 = \@fallback;
    }
    location \@fallback {
        proxy_pass http://stub;
    }
}, http => "upstream flaky { server 127.0.0.1:$dead; server %%UPSTREAM%%; }");

my $n = 0;
sub user { 'u' . ++$n }

sub hash_of { $t->wait_settled("tg:{u:$_[0]}:$month");
              $t->hash("tg:{u:$_[0]}:$month") }

sub check {
    my ($name, $path, $body, $usage, $cost, %o) = @_;
    my $u = user();
    my $r = $t->post($path, $body, { 'X-User' => $u,
                     'X-Stub-Usage' => $usage, %{ $o{headers} || {} } });
    is($r->{status}, 200, "$name: 200");
    my ($in, $out) = split /,/, $usage;
    my $h = hash_of($u);
    is($h->{tokens_in}, $in, "$name: tokens_in as the provider counted");
    is($h->{tokens_out}, $out, "$name: tokens_out as the provider counted");
    is($h->{usd}, $cost, "$name: cost $cost micro-USD");
    my $log = $t->last_log;
    is($log->{usage_source}, 'provider', "$name: \$tokenguard_usage_source");
    ok(!$h->{estimated}, "$name: not counted as estimated");
    is($log->{prompt_tokens}, $in, "$name: \$tokenguard_prompt_tokens");
    is($log->{completion_tokens}, $out, "$name: \$tokenguard_completion_tokens");
    is($log->{cost_usd}, sprintf('%.6f', $cost / 1e6), "$name: \$tokenguard_cost_usd");
    return ($r, $h);
}

my $msgs = [{ role => 'user', content => 'hello there' }];

# gpt-4o 2.5/1.25/10: 700 * 2.5 + 300 * 1.25 + 200 * 10 = 4125
check('openai chat JSON', '/v1/chat/completions',
      { model => 'gpt-4o', messages => $msgs }, '1000,200,300', 4125);
check('openai chat SSE', '/v1/chat/completions',
      { model => 'gpt-4o', stream => $true, messages => $msgs },
      '1000,200,300', 4125);
check('openai chat SSE, buffered to a temp file', '/buffered/v1/chat/completions',
      { model => 'gpt-4o', stream => $true, messages => $msgs },
      '1000,200,300', 4125, headers => { 'X-Stub-Words' => 3000 });
# gpt-3.5-turbo-instruct 1.5/2: 1000 * 1.5 + 200 * 2 = 1900
check('openai completions JSON', '/v1/completions',
      { model => 'gpt-3.5-turbo-instruct', prompt => 'p' }, '1000,200', 1900);
check('openai completions SSE, usage on a chunk with choices',
      '/v1/completions', { model => 'gpt-3.5-turbo-instruct', prompt => 'p',
      stream => $true }, '1000,200', 1900);
# o4-mini 1.1/0.275/4.4: 700 * 1.1 + 300 * 0.275 + 200 * 4.4 = 1732.5
check('openai responses JSON', '/v1/responses',
      { model => 'o4-mini', input => 'hi' }, '1000,200,300', 1733);
check('openai responses SSE', '/v1/responses',
      { model => 'o4-mini', input => 'hi', stream => $true },
      '1000,200,300', 1733);
# text-embedding-3-small 0.02: 1000 * 0.02
check('openai embeddings', '/v1/embeddings',
      { model => 'text-embedding-3-small', input => 'x' }, '1000,0', 20);
# claude-sonnet-4-5 3/0.3/3.75/15:
# 650 * 3 + 300 * 0.3 + 50 * 3.75 + 200 * 15 = 5227.5
check('anthropic JSON', '/v1/messages',
      { model => 'claude-sonnet-4-5', max_tokens => 300, messages => $msgs },
      '1000,200,300,50', 5228);
check('anthropic SSE', '/v1/messages',
      { model => 'claude-sonnet-4-5', max_tokens => 300, stream => $true,
        messages => $msgs }, '1000,200,300,50', 5228);
# gemini-2.5-flash 0.3/0.03/2.5 (genai-prices; the old table had 0.075):
# 700 * 0.3 + 300 * 0.03 + 200 * 2.5
my $g = { contents => [{ parts => [{ text => 'hi' }] }] };
check('gemini JSON', '/v1beta/models/gemini-2.5-flash:generateContent',
      $g, '1000,200,300', 719);
check('gemini SSE', '/v1beta/models/gemini-2.5-flash:streamGenerateContent'
      . '?alt=sse', $g, '1000,200,300', 719);
check('gemini JSON array stream',
      '/v1beta/models/gemini-2.5-flash:streamGenerateContent', $g,
      '1000,200,300', 719);

# gzip: the provider is asked for identity, and counts stay exact
my ($r) = check('client accepts gzip', '/v1/chat/completions',
      { model => 'gpt-4o', messages => $msgs }, '1000,200', 4500,
      headers => { 'Accept-Encoding' => 'gzip', 'X-Stub-Gzip' => 1 });
is($t->upstream->{headers}{'accept-encoding'}, 'identity',
   'upstream asked for identity');
check('chunked upstream response', '/v1/chat/completions',
      { model => 'gpt-4o', messages => $msgs }, '1000,200', 4500,
      headers => { 'X-Stub-Chunked' => 1 });
check('usage after 3 MB of JSON', '/v1/chat/completions',
      { model => 'gpt-4o', messages => $msgs }, '1000,200', 4500,
      headers => { 'X-Stub-Words' => 400000 });
check('usage after 5 MB of stream', '/v1/chat/completions',
      { model => 'gpt-4o', stream => $true, messages => $msgs },
      '1000,200', 4500, headers => { 'X-Stub-Words' => 40000 });

# a provider that ignores identity and gzips anyway: estimated, not zero
my $u = user();
$r = $t->post('/v1/chat/completions', { model => 'gpt-4o', messages => $msgs },
              { 'X-User' => $u, 'X-Stub-Gzip' => 'force',
                'X-Stub-Usage' => '1000,200' });
my $h = hash_of($u);
ok($h->{tokens_in} > 0 && $h->{tokens_out} > 0, 'forced gzip: estimated,'
   . ' never zero');
is($t->last_log->{usage_source}, 'estimate', 'forced gzip: source estimate');

# no usage at all: prompt estimate + relayed bytes / 4
$u = user();
$r = $t->post('/v1/chat/completions', { model => 'gpt-4o', messages => $msgs },
              { 'X-User' => $u, 'X-Stub-Usage' => 'none' });
$h = hash_of($u);
is($h->{tokens_in}, 7, 'no usage: the prompt estimate');
is($h->{tokens_out}, int(length($r->{content}) / 4),
   'no usage: output from the relayed bytes');
is($t->last_log->{usage_source}, 'estimate', 'no usage: source estimate');
is($h->{estimated}, 1, 'no usage: counted as estimated');

# upstream errors charge nothing and release the reservation
for my $st (429, 500) {
    $u = user();
    $r = $t->post('/v1/chat/completions', { model => 'gpt-4o',
                  messages => $msgs }, { 'X-User' => $u,
                  'X-Stub-Status' => $st });
    is($r->{status}, $st, "upstream $st passed through");
    $h = hash_of($u);
    is($h->{usd} // 0, 0, "upstream $st: nothing charged");
    is($h->{requests} // 0, 0, "upstream $st: no request counted");
    is($h->{reserved_usd} // 0, 0, "upstream $st: reservation released");
}

# the client leaves mid-stream: what was streamed is charged
$u = user();
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->{port}) or die;
    my $b = '{"model":"gpt-4o","stream":true,"messages":[]}';
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        . "X-User: $u\r\nX-Stub-Words: 400\r\nX-Stub-Event-Delay-Ms: 10\r\n"
        . "Content-Length: " . length($b) . "\r\n\r\n$b";
    my $got = '';
    while ($got !~ /w20 /) { sysread($s, $got, 4096, length $got) or last; }
    close $s;
}
sleep 1;
$h = hash_of($u);
is($h->{requests}, 1, 'client abort: counted');
ok($h->{tokens_out} > 0 && $h->{tokens_out} < 400 * 150 / 4,
   "client abort: what was streamed is charged ($h->{tokens_out})");

# the upstream dies mid-stream
$u = user();
$r = $t->post('/v1/chat/completions', { model => 'gpt-4o', stream => $true,
              messages => $msgs }, { 'X-User' => $u, 'X-Stub-Cut-After' => 5,
              'X-Stub-Usage' => '1000,200' });
$h = hash_of($u);
is($h->{requests}, 1, 'upstream cut: counted');
is($h->{tokens_in}, 7, 'upstream cut: the prompt estimate');
ok($h->{tokens_out} > 0, 'upstream cut: the relayed output estimated');

# a reroute records what it saved: gpt-4o would have cost 4500 for this
# usage, gpt-4o-mini costs 1000 * 0.15 + 200 * 0.6 = 270
$u = user();
$r = $t->post('/routed/v1/chat/completions', { model => 'gpt-4o',
              messages => $msgs }, { 'X-User' => $u,
              'X-Stub-Usage' => '1000,200' });
$h = hash_of($u);
is($h->{usd}, 270, 'reroute: charged at the routed model');
is($h->{rerouted}, 1, 'reroute: counted');
is($h->{saved_usd}, 4230, 'reroute: saved_usd');
is($h->{'reroute:gpt-4o->gpt-4o-mini:saved_usd'}, 4230,
   'reroute: saved per requested->routed pair');
is($h->{'reroute:gpt-4o->gpt-4o-mini:requests'}, 1,
   'reroute: requests per pair');

# one settle across proxy_next_upstream and error_page
$u = user();
$r = $t->post('/retry/v1/chat/completions', { model => 'gpt-4o',
              messages => $msgs }, { 'X-User' => $u,
              'X-Stub-Usage' => '1000,200' });
is($r->{status}, 200, 'next upstream: 200 after a dead server');
$h = hash_of($u);
is($h->{requests}, 1, 'next upstream: one request');
is($h->{usd}, 4500, 'next upstream: charged once');

$u = user();
$r = $t->post('/intercept/v1/chat/completions', { model => 'gpt-4o',
              messages => $msgs }, { 'X-User' => $u,
              'X-Stub-Usage' => '1000,200', 'X-Stub-Status' => 500 });
$h = hash_of($u);
is($h->{requests} // 0, 0, 'error_page: the fallback answer is the stub'
   . "'s error again: nothing charged, once");

$t->stop;
done_testing;
