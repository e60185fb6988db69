# Identity: tokenguard_user / tokenguard_team / tokenguard_sandbox, the
# 401 in each provider's shape, and non-generation calls.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

my $t = TG->new(server => q{
    location / {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_team $http_x_team;
        tokenguard_sandbox $http_x_sandbox;
        tokenguard_sandbox_allowance 10usd month;
        proxy_pass http://stub;
    }
    location /off/ {
        proxy_pass http://stub/;
    }
});

my $chat = { model => 'gpt-4o-mini',
             messages => [{ role => 'user', content => 'hello' }] };

my $r = $t->post('/v1/chat/completions', $chat);
is($r->{status}, 401, 'no user: 401');
is($r->{headers}{'x-tokenguard-code'}, 'identity_required', 'code header');
is($r->{json}{error}{code}, 'identity_required', 'openai error shape: code');
is($r->{json}{error}{type}, 'tokenguard_error', 'openai error shape: type');
ok(exists $r->{json}{error}{param}, 'openai error shape: param');
like($r->{json}{error}{message}, qr/who is calling/, 'message says what is missing');
is($r->{headers}{'content-type'}, 'application/json', 'JSON content type');
ok(!$t->upstream, 'nothing reached the provider');
is($t->last_log->{decision}, 'deny_identity', '$tokenguard_decision');

$r = $t->post('/v1/messages', { model => 'claude-3-5-haiku-latest',
    max_tokens => 10, messages => [{ role => 'user', content => 'x' }] });
is($r->{status}, 401, 'anthropic: 401');
is($r->{json}{type}, 'error', 'anthropic shape: type');
is($r->{json}{error}{type}, 'authentication_error', 'anthropic error type');

$r = $t->post('/v1beta/models/gemini-2.0-flash:generateContent',
              { contents => [{ parts => [{ text => 'x' }] }] });
is($r->{status}, 401, 'gemini: 401');
is($r->{json}{error}{code}, 401, 'gemini shape: code');
is($r->{json}{error}{status}, 'UNAUTHENTICATED', 'gemini shape: status');

$r = $t->post('/v1/chat/completions', $chat, { 'X-User' => 'alice',
              'X-Team' => 'research', 'X-Sandbox' => 'yes' });
is($r->{status}, 200, 'user given: 200');
ok($t->upstream, 'the provider got it');
my $log = $t->last_log;
is($log->{user}, 'alice', '$tokenguard_user');
is($log->{team}, 'research', '$tokenguard_team');
is($log->{sandbox}, '1', '$tokenguard_sandbox on');
is($log->{decision}, 'allow', 'decision allow');

for my $off ('0', 'off', 'OFF', '') {
    $t->post('/v1/chat/completions', $chat,
             { 'X-User' => 'bob', 'X-Sandbox' => $off });
    is($t->last_log->{sandbox}, '0', "sandbox \"$off\" is off");
}

$r = $t->get('/v1/models', { 'X-User' => 'alice' });
is($r->{status}, 200, 'GET /v1/models passes with identity');
is($t->upstream->{uri}, '/v1/models', 'and reaches the provider');

$r = $t->get('/v1/models');
is($r->{status}, 401, 'GET /v1/models without identity: 401');

$r = $t->post('/off/v1/chat/completions', $chat);
is($r->{status}, 200, 'tokenguard off: no identity needed');
is($t->last_log->{decision}, '', 'tokenguard off: no decision');

$t->stop;
done_testing;
