# Policy: tokenguard_allow_models and tokenguard_deny_prompt.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

my $t = TG->new(location => q{
    tokenguard on;
    tokenguard_user $http_x_user;
    tokenguard_allow_models "^(gpt-4o-mini|claude-3-5-haiku.*|gemini-2\.0-flash)$";
    tokenguard_deny_prompt "(?i)BEGIN (RSA|OPENSSH) PRIVATE KEY" name=private-key;
    tokenguard_deny_prompt "\bAKIA[0-9A-Z]{16}\b";
    tokenguard_route ^gpt-4o$ gpt-4o-mini tag=downgrade;
});
my %u = ('X-User' => 'alice');

sub chat {
    my ($model, $text) = @_;
    return { model => $model,
             messages => [{ role => 'user', content => $text // 'hi' }] };
}

my $r = $t->post('/v1/chat/completions', chat('gpt-4o-mini'), \%u);
is($r->{status}, 200, 'allowed model passes');

$r = $t->post('/v1/chat/completions', chat('o1-pro'), \%u);
is($r->{status}, 403, 'other model: 403');
is($r->{headers}{'x-tokenguard-code'}, 'model_not_allowed', 'code header');
is($r->{json}{error}{code}, 'model_not_allowed', 'code in body');
like($r->{json}{error}{message}, qr/"o1-pro" is not allowed/,
     'message names the model');
ok(!$t->upstream, 'refused request never reaches the provider');
is($t->last_log->{decision}, 'deny_policy', 'decision deny_policy');

$r = $t->post('/v1/chat/completions', chat('gpt-4o'), \%u);
is($r->{status}, 200, 'a model routed onto an allowed one passes');
is($t->upstream->{json}{model}, 'gpt-4o-mini', 'and goes upstream routed');

$r = $t->post('/v1/messages', { model => 'claude-opus-4-1', max_tokens => 5,
              messages => [] }, \%u);
is($r->{status}, 403, 'anthropic: 403');
is($r->{json}{error}{type}, 'permission_error', 'anthropic permission_error');

$r = $t->post('/v1beta/models/gemini-1.5-pro:generateContent',
              { contents => [] }, \%u);
is($r->{status}, 403, 'gemini: 403');
is($r->{json}{error}{status}, 'PERMISSION_DENIED', 'gemini PERMISSION_DENIED');

my $secret = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretsecret";
$r = $t->post('/v1/chat/completions', chat('gpt-4o-mini',
              "please fix my config:\n$secret"), \%u);
is($r->{status}, 403, 'denied prompt: 403');
is($r->{json}{error}{code}, 'prompt_denied', 'code prompt_denied');
like($r->{json}{error}{message}, qr/"private-key"/, 'message names the rule');
unlike($r->{content}, qr/MIIE|secret|PRIVATE/, 'message never echoes the text');
ok(!$t->upstream, 'denied prompt never reaches the provider');

$r = $t->post('/v1/messages', { model => 'claude-3-5-haiku-latest',
              max_tokens => 5, system => 'key AKIAABCDEFGHIJKLMNOP here',
              messages => [] }, \%u);
is($r->{status}, 403, 'system prompt is checked too');
like($r->{json}{error}{message}, qr/"rule #2"/, 'unnamed rule is numbered');
unlike($r->{content}, qr/AKIA/, 'no echo of the key');

$r = $t->post('/v1/chat/completions', { model => 'gpt-4o-mini', messages => [
              { role => 'user', content => [{ type => 'text',
                text => 'AKIAABCDEFGHIJKLMNOP' }] }] }, \%u);
is($r->{status}, 403, 'text parts are checked');

$r = $t->post('/v1/chat/completions', chat('gpt-4o-mini', 'AKIA is a prefix'),
              \%u);
is($r->{status}, 200, 'a near miss passes');

unlike($t->error_log, qr/MIIE|AKIAABCD/, 'no prompt text in error.log');

$t->stop;
done_testing;
