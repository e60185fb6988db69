# Nothing the client writes reaches a header or a message unchecked: a
# model name outside printable ASCII (CR LF, space, NUL, DEL, non-ASCII),
# in the body or a Gemini URI, is a 400 invalid_request and splits no
# response; user and team names (from a Basic Authorization header, or a
# client header) are %XX-escaped in refusal messages and log lines.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use MIME::Base64 qw(encode_base64);
use TG;

my $t = TG->new(server => q{
    location / {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_team $http_x_team;
        tokenguard_allow_models "^(gpt-4o-mini|claude-haiku-4-5|gemini-2\.0-flash)$";
        proxy_pass http://stub;
    }
    location /basic/ {
        tokenguard on;
        tokenguard_user $remote_user;
        tokenguard_deny_prompt "AKIA[0-9A-Z]{16}" name=aws-key;
        tokenguard_cap user 1requests day;
        proxy_pass http://stub/;
    }
    location /team/ {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_team $remote_user;
        tokenguard_cap team 1requests day;
        proxy_pass http://stub/;
    }
});
my %u = ('X-User' => 'alice');
my $J = JSON::PP->new->canonical;

sub raw_chat {
    my ($path, $model_json, $h) = @_;
    return $t->post($path, '{"model":' . $model_json . ',"messages":[{"role":'
                    . '"user","content":"hi"}]}',
                    { %u, 'Content-Type' => 'application/json', %{ $h || {} } });
}

sub no_split {
    my ($r, $name) = @_;
    ok(!exists $r->{headers}{'set-cookie'}, "$name: no Set-Cookie header");
    ok(!grep({ /[\r\n\0]/ } map { ref $_ ? @$_ : $_ }
             values %{ $r->{headers} }),
       "$name: no header value holds CR, LF or NUL");
}

my @bad = (
    ['CR LF',        '"x\r\nSet-Cookie: a=b"'],
    ['LF',           '"gpt-4o-mini\nSet-Cookie: a=b"'],
    ['a space',      '"gpt 4o"'],
    ['a tab',        '"gpt\t4o"'],
    ['NUL',          '"gpt-4o-mini\u0000x"'],
    ['DEL',          '"gpt\u007f"'],
    ['non-ASCII',    '"gpt-4o-mini\u00e9"'],
    ['raw UTF-8',    qq{"gpt-4o-mini\xc3\xa9"}],
    ['empty',        '""'],
    ['257 bytes',    '"' . ('m' x 257) . '"'],
);

for my $b (@bad) {
    my ($name, $model) = @$b;
    for my $path ('/v1/chat/completions', '/v1/responses') {
        my $r = $path =~ /responses/
            ? $t->post($path, '{"model":' . $model . ',"input":"hi"}',
                       { %u, 'Content-Type' => 'application/json' })
            : raw_chat($path, $model);
        is($r->{status}, 400, "model with $name ($path): 400");
        is($r->{headers}{'x-tokenguard-code'}, 'invalid_request',
           "model with $name ($path): invalid_request");
        ok(!exists $r->{headers}{'x-tokenguard-model'},
           "model with $name ($path): no X-TokenGuard-Model");
        no_split($r, "model with $name ($path)");
        ok(!$t->upstream, "model with $name ($path): not sent upstream");
    }
}

my $r = $t->post('/v1/messages', '{"model":"claude-haiku-4-5\r\nSet-Cookie:'
                 . ' a=b","max_tokens":5,"messages":[]}',
                 { %u, 'Content-Type' => 'application/json' });
is($r->{status}, 400, 'anthropic CR LF model: 400');
no_split($r, 'anthropic CR LF model');

# Gemini names the model in the URI: nginx decodes %0D%0A.  An escaped
# path is refused by the endpoint policy first (403 endpoint_not_allowed:
# the provider may read it otherwise); nginx itself refuses %00 (400)
for my $m ('x%0D%0ASet-Cookie:%20a=b', 'gemini-2.0-flash%00', 'gem%20ini',
           'gemini-%C3%A9') {
    $r = $t->post("/v1beta/models/$m:generateContent",
                  { contents => [] }, \%u);
    ok($r->{status} == 400
       || ($r->{status} == 403
           && ($r->{headers}{'x-tokenguard-code'} // '')
              eq 'endpoint_not_allowed'),
       "gemini URI model $m: refused ($r->{status})");
    no_split($r, "gemini URI model $m");
    ok(!$t->upstream, "gemini URI model $m: not sent upstream");
}

$r = raw_chat('/v1/chat/completions', '"' . ('m' x 256) . '"');
is($r->{status}, 403, '256 bytes is a name (not allowed here: 403)');
like($r->{headers}{'x-tokenguard-model'} // '', qr/^m{256}$/,
     'and its header is the name');
$r = raw_chat('/v1/chat/completions', '"a\"b\\\\c"');
is($r->{status}, 403, 'quotes and backslashes are printable: a name');

# hostile user names from a Basic Authorization header nginx decodes
my @users = (
    ["ev\r\nX-Evil=1", "ev%0D%0AX-Evil%3D1"],
    ["nul\0byte",             'nul%00byte'],
    ["d\xc3\xa9v \"q\" <x>",  'd%C3%A9v%20%22q%22%20%3Cx%3E'],
);

for my $u (@users) {
    my ($name, $shown) = @$u;
    my %h = (Authorization => 'Basic ' . encode_base64("$name:pw", ''),
             'Content-Type' => 'application/json');
    my $body = '{"model":"gpt-4o-mini","messages":[{"role":"user",'
             . '"content":"hi"}]}';
    my $deny = '{"model":"gpt-4o-mini","messages":[{"role":"user",'
             . '"content":"AKIAIOSFODNN7EXAMPLE"}]}';

    $r = $t->post('/basic/v1/chat/completions', $deny, \%h);
    is($r->{status}, 403, "user $shown: prompt denied");
    no_split($r, "user $shown, prompt denied");

    $r = $t->post('/basic/v1/chat/completions', $body, \%h);
    is($r->{status}, 200, "user $shown: first request");
    no_split($r, "user $shown, 200");

    $r = $t->post('/basic/v1/chat/completions', $body, \%h);
    is($r->{status}, 429, "user $shown: over the cap");
    no_split($r, "user $shown, 429");
    my $msg = $r->{json}{error}{message} // '';
    like($msg, qr/user "\Q$shown\E"/, "user $shown: escaped in the message");
    unlike($msg, qr/[\r\n\0]|\xc3|"q"/, "user $shown: no raw bytes in it");

    my $log = $t->error_log;
    like($log, qr/for user "\Q$shown\E"/, "user $shown: escaped in the log");
    like($log, qr/prompt of user "\Q$shown\E" denied/,
         "user $shown: escaped in the policy log line");
}

unlike($t->error_log, qr/\nX-Evil|nul\0|d\xc3\xa9v/,
       'no raw hostile name in error.log');

# team names: quotes and non-ASCII (HTTP::Tiny sends no such header)
my %h = ('X-User' => 'bob',
         Authorization => 'Basic ' . encode_base64("t\xc3\xa9am \"x\":p", ''));
$r = $t->post('/team/v1/chat/completions', { model => 'gpt-4o-mini',
              messages => [{ role => 'user', content => 'hi' }] }, \%h);
is($r->{status}, 200, 'team: first request');
$r = $t->post('/team/v1/chat/completions', { model => 'gpt-4o-mini',
              messages => [{ role => 'user', content => 'hi' }] }, \%h);
is($r->{status}, 429, 'team: over the cap');
like($r->{json}{error}{message} // '', qr/team "t%C3%A9am%20%22x%22"/,
     'team: escaped in the message');
no_split($r, 'team 429');

# a route target outside the alphabet is a configuration error
my $bad = TG->new(location => q{
    tokenguard on;
    tokenguard_user alice;
    tokenguard_route ^a$ "b c";
}, no_start => 1, no_redis => 1);
my ($rc, $out) = $bad->nginx_test;
isnt($rc, 0, 'a route target with a space: nginx -t fails');
like($out, qr/invalid target "b c"/, 'a route target with a space: message');
$bad->stop_stub;

$t->stop;
done_testing;
