# Deny by default what is not metered: in a tokenguard location every
# request is a metered call (charged in Redis), a call on the built-in
# free list, one a tokenguard_passthrough rule allows, or refused with
# endpoint_not_allowed, whatever the method.  Paths are classified as the
# provider routes them: a path that case, escapes, ";" parameters, dot
# segments or repeated slashes could turn into another API is refused,
# with proxy_pass with and without a URI part and with merge_slashes off.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $month = strftime('%Y-%m', gmtime);
my $secret = 'AKIA' . 'ABCDEFGHIJKLMNOP';

my $t = TG->new(server => q{
    tokenguard_user $http_x_user;
    tokenguard_allow_models ^(gpt-4o-mini|claude-haiku-4-5|gemini-2.0-flash)$;
    tokenguard_deny_prompt "AKIA[0-9A-Z]{16}" name=aws-key;

    location / {
        tokenguard on;
        proxy_pass http://stub;
    }
    location /uri/ {
        tokenguard on;
        proxy_pass http://stub/;
    }
    location /pt/ {
        tokenguard on;
        tokenguard_passthrough ^/pt/v1/files(/[^/]+)?$ name=files;
        tokenguard_passthrough ^/pt/v1/batches methods=POST name=batches;
        tokenguard_passthrough ^/pt/v1/chat/ methods=GET,POST,DELETE;
        proxy_pass http://stub/;
    }
    location = /metrics {
        tokenguard_metrics;
    }
});

my $chat = { model => 'gpt-4o-mini',
             messages => [{ role => 'user', content => 'hello there' }] };

sub user_hash { $t->hash("tg:{u:$_[0]}:$month") }

sub refused {
    my ($name, $r, $shape) = @_;
    is($r->{status}, 403, "$name: 403");
    is($r->{headers}{'x-tokenguard-code'}, 'endpoint_not_allowed',
       "$name: endpoint_not_allowed");
    ok(!$t->upstream, "$name: nothing reached the provider");
    is($t->last_log->{decision}, 'deny_endpoint', "$name: decision");
    return unless $shape;
    my $j = $r->{json} // {};
    if ($shape eq 'openai') {
        is($j->{error}{code}, 'endpoint_not_allowed', "$name: openai shape");
    } elsif ($shape eq 'anthropic') {
        is($j->{type} . '/' . $j->{error}{type}, 'error/permission_error',
           "$name: anthropic shape");
    } else {
        is($j->{error}{status}, 'PERMISSION_DENIED', "$name: gemini shape");
    }
}

# raw requests: the path goes on the wire byte for byte
sub raw {
    my ($method, $path, $body, $user) = @_;
    $t->clear_upstream;
    my $r = $t->http10($method, $path, $body,
                       { 'X-User' => $user // 'trick',
                         'Content-Type' => 'application/json' });
    my ($code) = $r->{head} =~ /^X-TokenGuard-Code: (\S+)/mi;
    return { status => $r->{status}, code => $code // '', body => $r->{body} };
}

my $u = { 'X-User' => 'alice' };

# --- the metered baseline: charged in Redis
my $r = $t->post('/v1/chat/completions', $chat, $u);
is($r->{status}, 200, 'metered chat: 200');
is($t->last_log->{decision}, 'allow', 'metered chat: allow');
$t->wait_settled("tg:{u:alice}:$month");
is(user_hash('alice')->{requests}, 1, 'metered chat: charged in Redis');
# a trailing slash is the same API: metered (the stub answers it 404,
# which releases the reservation)
$r = $t->post('/v1/chat/completions/', { %$chat, model => 'gpt-4o' }, $u);
is($r->{headers}{'x-tokenguard-code'}, 'model_not_allowed',
   'a trailing slash: policy applies');
$r = $t->post('/v1/chat/completions/', $chat, $u);
is($t->last_log->{decision}, 'allow', 'a trailing slash: metered');
is($t->upstream->{uri}, '/v1/chat/completions/', 'a trailing slash: sent');

# --- the free list: goes upstream, no charge
$r = $t->get('/v1/models', $u);
is($r->{status}, 200, 'GET /v1/models: free');
is($t->last_log->{decision}, 'allow', 'GET /v1/models: allow');
is($t->upstream->{uri}, '/v1/models', 'GET /v1/models reached the provider');
$t->get('/v1/models/gpt-4o', $u);
is($t->upstream->{uri}, '/v1/models/gpt-4o', 'GET /v1/models/ID: free');
$t->get('/v1beta/models?pageSize=5', $u);
is($t->upstream->{uri}, '/v1beta/models?pageSize=5', 'gemini models: free');
$r = $t->post('/v1/messages/count_tokens',
              { model => 'claude-haiku-4-5', messages => [] }, $u);
is($t->upstream->{uri}, '/v1/messages/count_tokens',
   'anthropic count_tokens: free');
$t->post('/v1beta/models/gemini-2.0-flash:countTokens', { contents => [] },
         $u);
is($t->upstream->{uri}, '/v1beta/models/gemini-2.0-flash:countTokens',
   'gemini countTokens: free');
$t->post('/v1/responses/input_tokens', { model => 'gpt-4o-mini',
         input => 'hello' }, $u);
is($t->upstream->{uri}, '/v1/responses/input_tokens',
   'openai input_tokens: free');
is($t->last_log->{decision}, 'allow', 'token counting: allow');
$t->wait_settled("tg:{u:alice}:$month");
is(user_hash('alice')->{requests}, 1, 'free calls are not charged');

# token counting sends the prompt to the provider: the policy reads it
$r = $t->post('/v1/messages/count_tokens', { model => 'claude-haiku-4-5',
              messages => [{ role => 'user', content => "key $secret" }] },
              $u);
is($r->{headers}{'x-tokenguard-code'}, 'prompt_denied',
   'count_tokens: a secret is refused');
ok(!$t->upstream, 'count_tokens: the secret did not go up');
$r = $t->post('/v1/messages/count_tokens', { model => 'claude-opus-4-1',
              messages => [] }, $u);
is($r->{headers}{'x-tokenguard-code'}, 'model_not_allowed',
   'count_tokens: a disallowed model is refused');
$r = $t->post('/v1beta/models/gemini-2.0-flash:countTokens',
              { contents => [{ parts => [{ text => $secret }] }] }, $u);
is($r->{headers}{'x-tokenguard-code'}, 'prompt_denied',
   'gemini countTokens: a secret is refused');
$r = $t->post('/v1beta/models/gemini-2.5-pro:countTokens',
              { contents => [] }, $u);
is($r->{headers}{'x-tokenguard-code'}, 'model_not_allowed',
   'gemini countTokens: the URI model is checked');
$r = $t->post('/v1/responses/input_tokens', { model => 'gpt-4o-mini',
              input => $secret }, $u);
is($r->{headers}{'x-tokenguard-code'}, 'prompt_denied',
   'input_tokens: a secret is refused');
$r = $t->post('/v1/messages/count_tokens', 'not json', $u);
is($r->{headers}{'x-tokenguard-code'}, 'invalid_request',
   'count_tokens: a body the gateway cannot read is refused');
is(user_hash('alice')->{requests}, 1, 'refused counts are not charged');

# --- the red-team list: refused, nothing upstream
$r = $t->post('/v1/messages/batches', { requests => [{ custom_id => 'a',
              params => { model => 'claude-opus-4-1', max_tokens => 10,
              messages => [{ role => 'user', content => $secret }] } }] }, $u);
refused('anthropic batches with a secret and a disallowed model', $r,
        'anthropic');
like($r->{json}{error}{message}, qr/tokenguard_passthrough/,
     'the message names the directive that would allow it');
unlike($r->{content}, qr/$secret/, 'the secret is not echoed');
refused('openai batches', $t->post('/v1/batches',
        { input_file_id => 'file-1', endpoint => '/v1/chat/completions',
          completion_window => '24h' }, $u), 'openai');
refused('images', $t->post('/v1/images/generations',
        { model => 'gpt-image-1', prompt => 'a cat' }, $u), 'openai');
refused('audio speech', $t->post('/v1/audio/speech',
        { model => 'tts-1', input => 'hi', voice => 'alloy' }, $u));
refused('audio transcriptions', $t->post('/v1/audio/transcriptions',
        'not json', $u));
refused('gemini batchGenerateContent',
        $t->post('/v1beta/models/gemini-2.0-flash:batchGenerateContent',
                 { requests => [] }, $u), 'gemini');
refused('gemini embedContent',
        $t->post('/v1beta/models/text-embedding-004:embedContent',
                 { content => { parts => [{ text => 'x' }] } }, $u), 'gemini');
refused('fine-tuning', $t->post('/v1/fine_tuning/jobs', {}, $u));
refused('assistants', $t->post('/v1/assistants', {}, $u));
refused('vector stores', $t->post('/v1/vector_stores', {}, $u));
refused('realtime', $t->post('/v1/realtime/sessions', {}, $u));
refused('anthropic legacy complete', $t->post('/v1/complete',
        { model => 'claude-2', prompt => 'x' }, $u));
refused('stored completions', $t->get('/v1/chat/completions?limit=100', $u),
        'openai');
refused('a stored completion',
        $t->get('/v1/chat/completions/chatcmpl-1/messages', $u));
refused('a stored response', $t->get('/v1/responses/resp_1', $u));
refused('file content', $t->get('/v1/files/file-abc/content', $u));
refused('DELETE a file', $t->request('DELETE', '/v1/files/file-abc', undef,
                                     $u));
refused('DELETE a fine-tuned model',
        $t->request('DELETE', '/v1/models/ft:gpt-4o-mini:acme::x', undef, $u));
refused('POST /v1/models', $t->post('/v1/models', {}, $u));
for my $m (qw(HEAD OPTIONS PUT PATCH DELETE)) {
    refused("$m on a metered path",
            $t->request($m, '/v1/chat/completions',
                        $m =~ /^P/ ? $chat : undef, $u));
}
refused('GET on messages', $t->get('/v1/messages', $u), 'anthropic');
refused('GET on generateContent',
        $t->get('/v1beta/models/gemini-2.0-flash:generateContent', $u));
refused('HEAD on the free list', $t->request('HEAD', '/v1/models', undef, $u));
refused('unknown path', $t->get('/', $u));

# a passthrough elsewhere does not reach here
refused('no passthrough in this location', $t->get('/v1/files', $u));

# --- paths the provider could route otherwise: refused, with and without
# a URI part in proxy_pass
my $body = '{"model":"gpt-4o-mini","messages":[{"role":"user",'
           . '"content":"' . $secret . '"}]}';
my @tricks = (
    '/v1/Chat/Completions', '/V1/chat/completions', '/v1/CHAT/COMPLETIONS',
    '/v1/chat%2Fcompletions', '/v1/chat%2fcompletions',
    '/v1/chat%252Fcompletions', '/v1/%63hat/completions',
    '/v1//chat/completions', '//v1/chat/completions',
    '/v1/chat/completions//', '/v1/chat/completions;x',
    '/v1/chat/completions;/', '/v1;x/chat/completions',
    '/v1/./chat/completions', '/v1/foo/../chat/completions',
    '/v1/chat/completions/.', '/v1/chat/completions%2F',
    '/v1/chat/completions%3Fx', '/v1/chat/completions%23x',
    '/v1/chat%5Ccompletions', '/v1/chat\\completions',
    '/v1/chat/completions%20', '/v1/%2e/chat/completions',
    '/v1/foo/%2e%2e/chat/completions', '/v1/messages%2Fbatches',
    '/v1/Messages/batches', '/v1beta/models/x:BatchGenerateContent',
    '/v1beta/models/gemini-2.0-flash%3AgenerateContent',
    '/v1/MODELS',
);
for my $prefix ('', '/uri') {
    for my $p (@tricks) {
        my $path = "$prefix$p";
        my $x = raw('POST', $path, $body);
        my $up = $t->upstream;
        # nginx itself refuses some (400) before any module runs
        ok(!$up && $x->{status} >= 400 && $x->{status} < 500,
           "trick $path: refused ($x->{status} $x->{code})")
            or diag explain [$x, $up];
        ok($x->{code} eq 'endpoint_not_allowed' || $x->{status} == 400,
           "trick $path: endpoint_not_allowed or nginx's 400");
        unlike($x->{body}, qr/$secret|completions|%/,
               "trick $path: the message echoes nothing of the path");
    }
}
is(user_hash('trick')->{requests}, undef, 'no trick was charged');

# plain paths in the URI-part location are metered as usual
$r = raw('POST', '/uri/v1/chat/completions',
         '{"model":"gpt-4o-mini","messages":[]}', 'bob');
is($r->{status}, 200, 'URI part: metered');
is($t->upstream->{uri}, '/v1/chat/completions', 'URI part: sent as routed');
$t->wait_settled("tg:{u:bob}:$month");
is(user_hash('bob')->{requests}, 1, 'URI part: charged');
$r = raw('POST', '/uri/v1/chat/completions', $body, 'bob');
is($r->{code}, 'prompt_denied', 'URI part: policy applies');

# --- tokenguard_passthrough
$r = $t->get('/pt/v1/files', $u);
is($t->upstream->{uri}, '/v1/files', 'passthrough: GET files goes up');
is($t->last_log->{decision}, 'passthrough', 'passthrough: the decision');
like($t->error_log, qr/passed through by "files" for user "alice"/,
     'passthrough: the rule named in the log');
# the name is the caller's, escaped as in every other log line: one with
# a quote cannot end the quoted name and write its own text after it
$t->get('/pt/v1/files', { 'X-User' => 'eve" forged="1' });
like($t->error_log, qr/passed through by "files" for user "eve%22%20forged%3D%221"/,
     'passthrough: the logged user name is escaped');
unlike($t->error_log, qr/eve" forged/, 'passthrough: no raw quote logged');
$t->get('/pt/v1/files/file-1', $u);
is($t->upstream->{uri}, '/v1/files/file-1', 'passthrough: GET a file');
refused('passthrough: methods default to GET',
        $t->request('DELETE', '/pt/v1/files/file-1', undef, $u));
refused('passthrough: HEAD is not GET',
        $t->request('HEAD', '/pt/v1/files', undef, $u));
refused('passthrough: the regex decides',
        $t->get('/pt/v1/files/file-1/content', $u));
$t->post('/pt/v1/batches', { input_file_id => 'f' }, $u);
is($t->upstream->{method}, 'POST', 'passthrough: methods=POST');
refused('passthrough: methods=POST refuses GET',
        $t->get('/pt/v1/batches', $u));
$t->get('/pt/v1/chat/completions?limit=1', $u);
is($t->upstream->{uri}, '/v1/chat/completions?limit=1',
   'passthrough: stored completions when the operator allows them');
$t->request('DELETE', '/pt/v1/chat/completions/chatcmpl-1', undef, $u);
is($t->upstream->{method}, 'DELETE', 'passthrough: methods=...,DELETE');

# a passthrough never unmeters a metered call
$r = $t->post('/pt/v1/chat/completions', { %$chat, model => 'gpt-4o' }, $u);
is($r->{headers}{'x-tokenguard-code'}, 'model_not_allowed',
   'passthrough: a metered call keeps its policy');
$r = $t->post('/pt/v1/chat/completions', $chat, $u);
is($t->last_log->{decision}, 'allow', 'passthrough: POST chat is metered');
$t->wait_settled("tg:{u:alice}:$month");
is(user_hash('alice')->{requests}, 2, 'passthrough: the metered call charged');
$r = raw('GET', '/pt/v1/files%2F..%2Fchat%2Fcompletions', '', 'alice');
is($r->{code}, 'endpoint_not_allowed', 'passthrough: escapes still refused');
$r = raw('GET', '/pt/v1/chat/../files', '', 'alice');
is($r->{code}, 'endpoint_not_allowed', 'passthrough: dots still refused');

# a header that overrides the method: the provider may serve another API
for my $h ('X-HTTP-Method-Override', 'X-HTTP-Method', 'x-method-override') {
    refused("$h: DELETE on the free list",
            $t->get('/v1/models/ft:x', { %$u, $h => 'DELETE' }));
    refused("$h: GET on a metered path",
            $t->post('/v1/chat/completions', $chat, { %$u, $h => 'GET' }));
    refused("$h: POST on a GET passthrough",
            $t->get('/pt/v1/files', { %$u, $h => 'POST' }));
}

$r = $t->post('/v1/chat/completions', $chat,
              { %$u, 'X-Stainless-Helper-Method' => 'stream' });
is($r->{status}, 200, 'an SDK header that names a method is fine');

# identity comes first
$r = $t->get('/v1/files/x');
is($r->{status}, 401, 'no identity: 401 before the endpoint');

# --- metrics
my $m = HTTP::Tiny->new->get($t->url('/metrics'))->{content};
my ($pt) = $m =~ /^tokenguard_requests_total\{decision="passthrough"\} (\d+)/m;
my ($de) = $m =~ /^tokenguard_requests_total\{decision="deny_endpoint"\} (\d+)/m;
is($pt, 6, 'metrics: passthrough counted');
ok(defined $de && $de >= 49, "metrics: deny_endpoint counted ($de)");

$t->stop;

# --- merge_slashes off: r->uri keeps the slashes, still refused
my $s = TG->new(server => q{
    merge_slashes off;
    location / {
        tokenguard on;
        tokenguard_user $http_x_user;
        proxy_pass http://stub/;
    }
});
$r = $s->http10('POST', '/v1//chat/completions', $chat, { 'X-User' => 'a' });
like($r->{head}, qr/^X-TokenGuard-Code: endpoint_not_allowed/mi,
     'merge_slashes off: repeated slashes refused');
ok(!$s->upstream, 'merge_slashes off: nothing upstream');
$r = $s->http10('POST', '/v1/chat/completions', $chat, { 'X-User' => 'a' });
is($r->{status}, 200, 'merge_slashes off: a plain path is metered');
$s->stop;

# --- configuration errors
for my $bad (['tokenguard_passthrough ^/x methods=GET,FETCH;',
              qr/unknown method "FETCH"/],
             ['tokenguard_passthrough ^/x methods=;', qr/invalid parameter/],
             ['tokenguard_passthrough ^/x what=1;', qr/invalid parameter/],
             ['tokenguard_passthrough (;', qr/pcre|regex/i]) {
    my $c = TG->new(location => "tokenguard on; $bad->[0]", no_start => 1);
    my ($rc, $out) = $c->nginx_test;
    isnt($rc, 0, "config: $bad->[0] fails");
    like($out, $bad->[1], "config: $bad->[0]: message");
    $c->stop_stub;
}

done_testing;
