# More provider surfaces, metered with the same policy: Azure OpenAI
# deployments (the deployment is the model), Vertex AI Gemini and
# Anthropic (the model in the URI), and the OpenAI-compatible endpoints of
# Gemini, Anthropic and Vertex AI.  For each: the policy applies, routing
# rewrites the right place, Redis is charged from the response's usage,
# streaming too.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $month = strftime('%Y-%m', gmtime);
my $secret = 'AKIA' . 'ABCDEFGHIJKLMNOP';
my $true = JSON::PP::true;

my $t = TG->new(server => q{
    tokenguard_user $http_x_user;
    tokenguard_allow_models ^(small|mini-[a-z0-9@.-]+|gemini-2.0-flash|claude-haiku-4-5(@[0-9]+)?)$;
    tokenguard_deny_prompt "AKIA[0-9A-Z]{16}" name=aws-key;
    tokenguard_route ^big$ small tag=down;
    tokenguard_route ^gemini-2.5-pro$ gemini-2.0-flash tag=flash;
    tokenguard_route ^claude-opus-4-1@(.*)$ claude-haiku-4-5@$1 tag=haiku;

    location / {
        tokenguard on;
        proxy_pass http://stub;
    }
    location /anthropic/ {
        tokenguard on;
        tokenguard_provider anthropic;
        proxy_pass http://stub/;
    }
});

my $vertex = '/v1/projects/acme/locations/us-east5/publishers';

# a request as $user with the usage the stub reports; returns the
# response and the user's month hash once settled
my $n = 0;
sub call {
    my ($path, $body, %o) = @_;
    my $user = 'u' . ++$n;
    my $r = $t->post($path, $body, { 'X-User' => $user,
                                     'X-Stub-Usage' => $o{usage} // '100,50',
                                     %{ $o{headers} || {} } });
    $t->wait_settled("tg:{u:$user}:$month");
    return ($r, $t->hash("tg:{u:$user}:$month"), $t->upstream, $t->last_log);
}

sub metered {
    my ($name, $path, $body, $model, %o) = @_;
    my ($r, $h, $up, $log) = call($path, $body, %o);
    is($r->{status}, 200, "$name: 200");
    is($log->{decision}, 'allow', "$name: metered");
    is($log->{model}, $model, "$name: the model");
    is($h->{requests}, 1, "$name: one request charged");
    is($h->{tokens_in}, 100, "$name: input tokens from the response");
    is($h->{tokens_out}, $o{out} // 50, "$name: output tokens");
    ok(($h->{usd} // 0) > 0, "$name: cost charged");
    is($h->{"model:$model:tokens_in"}, 100, "$name: charged to $model");
    is($log->{usage_source}, 'provider', "$name: usage from the provider");
    return ($r, $up);
}

sub refused {
    my ($name, $path, $body, $code) = @_;
    my ($r, $h, $up) = call($path, $body);
    is($r->{headers}{'x-tokenguard-code'}, $code, "$name: $code");
    ok(!$up, "$name: nothing upstream");
    return $r;
}

my $msgs = [{ role => 'user', content => 'hello there' }];
my $secret_msgs = [{ role => 'user', content => "key $secret" }];

# --- Azure OpenAI: the deployment is the model, the body's is ignored
my $az = '/openai/deployments';
my ($r, $up) = metered('azure chat',
    "$az/mini-4o/chat/completions?api-version=2024-10-21",
    { model => 'whatever', messages => $msgs }, 'mini-4o');
is($up->{uri}, "$az/mini-4o/chat/completions?api-version=2024-10-21",
   'azure chat: the URI as sent');
is($up->{json}{model}, 'whatever', 'azure chat: the body left alone');
refused('azure: a deployment outside the allowed models',
        "$az/gpt-4o/chat/completions?api-version=1",
        { model => 'mini-4o', messages => $msgs }, 'model_not_allowed');
refused('azure: a secret', "$az/mini-4o/chat/completions?api-version=1",
        { messages => $secret_msgs }, 'prompt_denied');
($r, $up) = metered('azure: routing rewrites the deployment',
    "$az/big/chat/completions?api-version=2024-10-21",
    { messages => $msgs }, 'small');
is($up->{uri}, "$az/small/chat/completions?api-version=2024-10-21",
   'azure: the routed deployment in the URI, the query kept');
($r, $up) = metered('azure chat stream',
    "$az/mini-4o/chat/completions?api-version=1",
    { messages => $msgs, stream => $true }, 'mini-4o');
ok($up->{json}{stream_options}{include_usage},
   'azure stream: include_usage added');
like($r->{content}, qr/data: \[DONE\]/, 'azure stream: relayed');
metered('azure completions', "$az/mini-inst/completions?api-version=1",
        { prompt => 'Say hi' }, 'mini-inst');
metered('azure embeddings', "$az/mini-emb/embeddings?api-version=1",
        { input => 'abc' }, 'mini-emb', out => 0);
metered('azure responses', "$az/mini-o4/responses?api-version=1",
        { input => 'What is 2+2?' }, 'mini-o4');

# --- Vertex AI Gemini
my $vg = "$vertex/google/models";
($r, $up) = metered('vertex gemini', "$vg/gemini-2.0-flash:generateContent",
    { contents => [{ role => 'user', parts => [{ text => 'hi' }] }] },
    'gemini-2.0-flash', usage => '100,60', out => 60);
($r, $up) = metered('vertex gemini routed',
    "$vg/gemini-2.5-pro:streamGenerateContent?alt=sse",
    { contents => [{ role => 'user', parts => [{ text => 'hi' }] }] },
    'gemini-2.0-flash', usage => '100,60', out => 60);
is($up->{uri}, "$vg/gemini-2.0-flash:streamGenerateContent?alt=sse",
   'vertex gemini: the routed model in the URI');
like($r->{content}, qr/^data: /m, 'vertex gemini: streamed');
refused('vertex gemini: a secret', "$vg/gemini-2.0-flash:generateContent",
        { contents => [{ parts => [{ text => $secret }] }] }, 'prompt_denied');

# --- Vertex AI Anthropic: Messages dialect, the model in the URI
my $va = "$vertex/anthropic/models";
my $raw = { anthropic_version => 'vertex-2023-10-16', max_tokens => 100,
            messages => $msgs };
($r, $up) = metered('vertex anthropic rawPredict',
    "$va/claude-haiku-4-5\@20251001:rawPredict", $raw,
    'claude-haiku-4-5@20251001');
is($r->{json}{type}, 'message', 'vertex anthropic: the answer');
($r, $up) = metered('vertex anthropic streamRawPredict routed',
    "$va/claude-opus-4-1\@20250805:streamRawPredict",
    { %$raw, stream => $true }, 'claude-haiku-4-5@20250805');
is($up->{uri}, "$va/claude-haiku-4-5\@20250805:streamRawPredict",
   'vertex anthropic: the routed model in the URI');
ok(!exists $up->{json}{model}, 'vertex anthropic: no model added to the body');
like($r->{content}, qr/event: message_stop/, 'vertex anthropic: streamed');
refused('vertex anthropic: a disallowed model',
        "$va/claude-opus-4-1:rawPredict", $raw, 'model_not_allowed');
$r = refused('vertex anthropic: a secret',
             "$va/claude-haiku-4-5:rawPredict",
             { %$raw, messages => $secret_msgs }, 'prompt_denied');
is($r->{json}{error}{type}, 'permission_error',
   'vertex anthropic: refused in the Anthropic shape');
refused('vertex anthropic: the body cannot pick another model',
        "$va/claude-opus-4-1:rawPredict",
        { %$raw, model => 'claude-haiku-4-5' }, 'model_not_allowed');

# --- the OpenAI-compatible endpoints
metered('gemini openai-compatible', '/v1beta/openai/chat/completions',
        { model => 'gemini-2.0-flash', messages => $msgs },
        'gemini-2.0-flash');
($r, $up) = metered('gemini openai-compatible stream',
        '/v1beta/openai/chat/completions',
        { model => 'gemini-2.5-pro', messages => $msgs, stream => $true },
        'gemini-2.0-flash');
is($up->{json}{model}, 'gemini-2.0-flash', 'gemini compatible: body routed');
refused('gemini openai-compatible: a disallowed model',
        '/v1beta/openai/chat/completions',
        { model => 'gemini-2.5-flash', messages => $msgs },
        'model_not_allowed');
metered('vertex openai-compatible',
        '/v1/projects/acme/locations/us-central1/endpoints/openapi/chat/'
        . 'completions', { model => 'mini-llama', messages => $msgs },
        'mini-llama');
($r, $up) = metered('anthropic openai-compatible',
        '/anthropic/v1/chat/completions',
        { model => 'claude-haiku-4-5', messages => $msgs },
        'claude-haiku-4-5');
is($up->{uri}, '/v1/chat/completions', 'anthropic compatible: sent');
metered('anthropic openai-compatible stream',
        '/anthropic/v1/chat/completions',
        { model => 'claude-haiku-4-5', messages => $msgs, stream => $true },
        'claude-haiku-4-5');
$r = refused('anthropic openai-compatible: a secret',
             '/anthropic/v1/chat/completions',
             { model => 'claude-haiku-4-5', messages => $secret_msgs },
             'prompt_denied');
is($r->{json}{error}{code}, 'prompt_denied',
   'anthropic compatible: refused in the OpenAI shape');

# the other APIs of these surfaces are refused by default
refused('azure images', "$az/dalle/images/generations?api-version=1",
        { prompt => 'x' }, 'endpoint_not_allowed');
refused('azure audio', "$az/whisper/audio/transcriptions?api-version=1",
        {}, 'endpoint_not_allowed');
refused('vertex predict', "$vg/imagen-3:predict", {},
        'endpoint_not_allowed');
refused('vertex batch', '/v1/projects/acme/locations/l/batchPredictionJobs',
        {}, 'endpoint_not_allowed');
refused('vertex other publisher rawPredict',
        "$vertex/meta/models/llama:rawPredict", {}, 'endpoint_not_allowed');
refused('gemini compatible images', '/v1beta/openai/images/generations',
        {}, 'endpoint_not_allowed');
refused('an Anthropic location has no embeddings',
        '/anthropic/v1/embeddings', { model => 'x', input => 'y' },
        'endpoint_not_allowed');
refused('a deployment name written in escapes',
        "$az/mini%2D4o/chat/completions", { messages => $msgs },
        'endpoint_not_allowed');

$t->stop;
done_testing;
