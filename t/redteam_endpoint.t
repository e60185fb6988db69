# Red team on the endpoint policy: calls that reach the provider billed
# (or answered without the usage the gateway reads) while tokenguard
# would let them go free or unmetered.
#  - POST /v1/responses/compact (Codex, long sessions) is billed by
#    OpenAI like a Responses call: metered as one, policy and all.
#  - Google's front end reads system parameters in the query string and
#    X-Goog-FieldMask on every API: "fields=candidates" answers without
#    usageMetadata, "alt=proto" in protobuf, "callback=" as JSONP; each
#    is refused on a metered Gemini or Vertex surface.
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
    tokenguard_allow_models ^(gpt-4o-mini|gemini-2.0-flash|claude-haiku-4-5)$;
    tokenguard_deny_prompt "AKIA[0-9A-Z]{16}" name=aws-key;

    location / {
        tokenguard on;
        proxy_pass http://stub;
    }
    location /uri/ {
        tokenguard on;
        proxy_pass http://stub/;
    }
});

my $n = 0;
sub user { 'rt' . ++$n }

sub settled {
    $t->wait_settled("tg:{u:$_[0]}:$month");
    return $t->hash("tg:{u:$_[0]}:$month");
}

sub refused {
    my ($name, $r) = @_;
    is($r->{status}, 403, "$name: 403");
    is($r->{headers}{'x-tokenguard-code'}, 'endpoint_not_allowed',
       "$name: endpoint_not_allowed");
    ok(!$t->upstream, "$name: nothing reached the provider");
}

# --- /v1/responses/compact: metered as Responses
my $compact = { model => 'gpt-4o-mini', instructions => 'be brief',
                input => [{ role => 'user', content => 'a long session' }] };

for my $path ('/v1/responses/compact', '/uri/v1/responses/compact') {
    my $u = user();
    $t->clear_upstream;
    my $r = $t->post($path, $compact, { 'X-User' => $u,
                                        'X-Stub-Usage' => '1000,500' });
    is($r->{status}, 200, "$path: 200");
    is($r->{json}{object}, 'response.compaction', "$path: the answer");
    is($t->last_log->{decision}, 'allow', "$path: allow");
    my $h = settled($u);
    is($h->{requests}, 1, "$path: charged");
    is($h->{tokens_in}, 1000, "$path: tokens_in as the provider counted");
    is($h->{tokens_out}, 500, "$path: tokens_out as the provider counted");
    is($h->{usd}, 450, "$path: 450 micro-USD at gpt-4o-mini");
}

{
    my $u = user();
    my $r = $t->post('/v1/responses/compact',
                     { %$compact, model => 'gpt-4o' }, { 'X-User' => $u });
    is($r->{headers}{'x-tokenguard-code'}, 'model_not_allowed',
       'compact: a disallowed model is refused');
    $r = $t->post('/v1/responses/compact',
                  { %$compact, instructions => "use $secret" },
                  { 'X-User' => $u });
    is($r->{headers}{'x-tokenguard-code'}, 'prompt_denied',
       'compact: a secret in instructions is refused');
    $r = $t->post('/v1/responses/compact',
                  { %$compact, input => "the key is $secret" },
                  { 'X-User' => $u });
    is($r->{headers}{'x-tokenguard-code'}, 'prompt_denied',
       'compact: a secret in input is refused');
    refused('GET compact', $t->get('/v1/responses/compact',
                                   { 'X-User' => $u }));
    is(settled($u)->{requests}, undef, 'compact refusals: nothing charged');
}

# --- Google's system parameters on metered surfaces
my $gen = { contents => [{ role => 'user', parts => [{ text => 'hi' }] }] };
my $g = '/v1beta/models/gemini-2.0-flash';
my $vx = '/v1/projects/p/locations/us-central1/publishers/google/models/'
       . 'gemini-2.0-flash';
my $va = '/v1/projects/p/locations/us-east5/publishers/anthropic/models/'
       . 'claude-haiku-4-5';
my $msg = { anthropic_version => 'vertex-2023-10-16', max_tokens => 10,
            messages => [{ role => 'user', content => 'hi' }] };

for my $q ('fields=candidates', '$fields=candidates', 'alt=proto',
           'alt=media', '$alt=proto', 'callback=f', '$callback=f',
           '%61lt=proto', '%66ields=candidates', 'alt=sse&fields=candidates',
           'key=k&fields=candidates', 'alt=%70roto', 'alt=json&alt=proto',
           'ALT=proto', 'key=k;fields=candidates', 'alt=sse;alt=proto')
{
    my $u = user();
    $t->clear_upstream;
    refused("gemini generateContent?$q",
            $t->post("$g:generateContent?$q", $gen, { 'X-User' => $u }));
    $t->clear_upstream;
    refused("gemini streamGenerateContent?$q",
            $t->post("$g:streamGenerateContent?$q", $gen, { 'X-User' => $u }));
    is(settled($u)->{requests}, undef, "?$q: nothing charged");
}

$t->clear_upstream;
refused('vertex gemini ?fields',
        $t->post("$vx:generateContent?fields=candidates", $gen,
                 { 'X-User' => user() }));
$t->clear_upstream;
refused('vertex anthropic ?alt=proto',
        $t->post("$va:rawPredict?alt=proto", $msg, { 'X-User' => user() }));
$t->clear_upstream;
refused('gemini openai-compatible ?fields',
        $t->post('/v1beta/openai/chat/completions?fields=choices',
                 { model => 'gemini-2.0-flash',
                   messages => [{ role => 'user', content => 'hi' }] },
                 { 'X-User' => user() }));
for my $h ('X-Goog-FieldMask', 'x-goog-fieldmask') {
    $t->clear_upstream;
    refused("$h: candidates", $t->post("$g:generateContent", $gen,
            { 'X-User' => user(), $h => 'candidates' }));
}

# what the SDKs send still works, and is charged
for my $q ('', '?alt=sse', '?key=k', '?alt=json', '?$alt=json',
           '?alt=sse&key=k', '?prettyPrint=false') {
    my $u = user();
    my $action = $q =~ /sse/ ? 'streamGenerateContent' : 'generateContent';
    my $r = $t->post("$g:$action$q", $gen, { 'X-User' => $u });
    is($r->{status}, 200, "gemini $action$q: 200");
    is($t->upstream->{uri}, "$g:$action$q", "gemini $action$q: sent as is");
    is(settled($u)->{requests}, 1, "gemini $action$q: charged");
}
{
    my $u = user();
    my $r = $t->post("$va:rawPredict", $msg, { 'X-User' => $u });
    is($r->{status}, 200, 'vertex anthropic rawPredict: 200');
    is(settled($u)->{requests}, 1, 'vertex anthropic rawPredict: charged');
}

# the free list and other providers are not touched by Google's rule
$t->clear_upstream;
$t->get('/v1beta/models?pageSize=5&fields=models.name',
        { 'X-User' => user() });
is($t->upstream->{uri}, '/v1beta/models?pageSize=5&fields=models.name',
   'a Gemini model listing with fields: free, goes up');
{
    my $u = user();
    my $r = $t->post('/v1/chat/completions?fields=x',
                     { model => 'gpt-4o-mini',
                       messages => [{ role => 'user', content => 'hi' }] },
                     { 'X-User' => $u });
    is($r->{status}, 200, 'openai chat with a query: 200');
    is(settled($u)->{requests}, 1, 'openai chat with a query: charged');
}

# stopped, so that error.log and the sanitizers are checked (without it
# the file never looked, and its nginx outlived it)
$t->stop;
done_testing();
