# Bad requests get a clear 400 invalid_request in the provider's shape,
# never a crash or a 500, and never reach the provider.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

my $t = TG->new(location => q{
    tokenguard on;
    tokenguard_user alice;
});

sub bad {
    my ($name, $path, $body, $headers, $like) = @_;
    my $r = $t->post($path, $body, $headers);
    is($r->{status}, 400, "$name: 400");
    is($r->{headers}{'x-tokenguard-code'}, 'invalid_request', "$name: code");
    my $msg = $r->{json}{error}{message} // '';
    like($msg, $like, "$name: message") if $like;
    ok(!$t->upstream, "$name: nothing went upstream");
    is($t->last_log->{decision}, 'deny_invalid', "$name: decision");
    return $r;
}

my $chat = '/v1/chat/completions';

my $r = bad('not JSON', $chat, 'hello {secret prompt', {}, qr/not valid JSON/);
unlike($r->{content}, qr/secret/, 'the parse error does not quote the body');
bad('JSON array', $chat, '[{"model":"x"}]', {}, qr/must be a JSON object/);
bad('JSON string', $chat, '"x"', {}, qr/JSON object/);
bad('empty body', $chat, '', {}, qr/empty/);
bad('no body at all', $chat, undef, {}, qr/empty/);
bad('model missing', $chat, '{"messages":[]}', {}, qr/names no "model"/);
bad('model a number', $chat, '{"model":4,"messages":[]}', {},
    qr/"model" must be a string/);
bad('model empty', $chat, '{"model":"","messages":[]}', {}, qr/non-empty/);
bad('model huge', $chat, '{"model":"' . ('m' x 300) . '","messages":[]}', {},
    qr/256 bytes/);
bad('messages missing', $chat, '{"model":"x"}', {}, qr/"messages"/);
bad('messages wrong type', $chat, '{"model":"x","messages":"hi"}', {},
    qr/"messages" must be an array/);
bad('stream wrong type', $chat, '{"model":"x","messages":[],"stream":1}', {},
    qr/"stream"/);
bad('max_tokens wrong type', $chat,
    '{"model":"x","messages":[],"max_tokens":"10"}', {}, qr/"max_tokens"/);
bad('duplicate model', $chat, '{"model":"a","messages":[],"model":"b"}', {},
    qr/duplicate/);
bad('invalid UTF-8', $chat, qq({"model":"x","messages":[{"role":"user","content":"\xff\xfe"}]}),
    {}, qr/not valid JSON/);
bad('absurd nesting', $chat, '{"model":"x","messages":' . ('[' x 100000), {},
    qr/not valid JSON/);
bad('gzip body', $chat, "\x1f\x8b\x08\x00garbage",
    { 'Content-Encoding' => 'gzip' }, qr/Content-Encoding/);

$r = $t->post($chat, '{"model":"x","messages":[]}',
              { 'Content-Encoding' => 'identity' });
is($r->{status}, 200, 'Content-Encoding identity is fine');

$r = bad('anthropic', '/v1/messages', '{"model":"x","messages":{}}');
is($r->{json}{type}, 'error', 'anthropic shape');
is($r->{json}{error}{type}, 'invalid_request_error', 'anthropic error type');

$r = bad('gemini', '/v1beta/models/g:generateContent', '{"contents":{}}');
is($r->{json}{error}{status}, 'INVALID_ARGUMENT', 'gemini status');

# an escape in the path: the endpoint policy refuses it before the body
$r = $t->post('/v1beta/models/a%20b:generateContent', '{"contents":[]}');
is($r->{status}, 403, 'gemini model with a space: 403');
is($r->{headers}{'x-tokenguard-code'}, 'endpoint_not_allowed',
   'gemini model with a space: endpoint_not_allowed');
is($r->{json}{error}{status}, 'PERMISSION_DENIED',
   'gemini model with a space: gemini shape');
ok(!$t->upstream, 'gemini model with a space: nothing went upstream');

# still serving after all that
$r = $t->post($chat, '{"model":"x","messages":[]}');
is($r->{status}, 200, 'the worker is fine');
unlike($t->error_log, qr/segfault|exited on signal/, 'no crashed worker');

$t->stop;
done_testing;
