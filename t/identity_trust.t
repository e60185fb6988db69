# Identity from a trusted source cannot be forged with a header: with
# auth_basic ($remote_user), a map from a gateway-issued key, and
# auth_request + auth_request_set, a client that also sends
# "X-TokenGuard-User: ceo" or "X-User: ceo" is charged as itself, and no
# key of the ledger ever names "ceo".
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(sha1_base64);
use POSIX qw(strftime);
use TG;

my $auth_port = TG::free_port();

my $t = TG->new(http => qq{
    map \$http_authorization \$key_user {
        "Bearer sk-gw-alice-0001"  alice;
        "Bearer sk-gw-bob-0002"    bob;
        default                    "";
    }

    # the company's SSO stand-in: answers who owns the key, ignores the
    # rest of the request
    server {
        listen 127.0.0.1:$auth_port;
        # its line would carry the same X-TG-Test-Id as the request's
        access_log off;
        location = /check {
            if (\$key_user = "") {
                return 401;
            }
            add_header X-User \$key_user;
            return 204;
        }
    }
}, server => q{
    location /basic/ {
        auth_basic "AI gateway";
        auth_basic_user_file htpasswd;
        tokenguard on;
        tokenguard_user $remote_user;
        tokenguard_cap user 10usd month;
        proxy_pass http://stub/;
    }
    location /key/ {
        tokenguard on;
        tokenguard_user $key_user;
        tokenguard_cap user 10usd month;
        proxy_pass http://stub/;
    }
    location /sso/ {
        auth_request /_auth;
        auth_request_set $sso_user $upstream_http_x_user;
        tokenguard on;
        tokenguard_user $sso_user;
        tokenguard_cap user 10usd month;
        proxy_pass http://stub/;
    }
    location /raw/ {
        # what not to do: the control that shows the checks above work
        tokenguard on;
        tokenguard_user $http_x_user;
        proxy_pass http://stub/;
    }
    location = /_auth {
        internal;
        proxy_pass http://127.0.0.1:%%AUTH%%/check;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }
}, no_start => 1);

# the password file the test writes, relative to the nginx prefix's conf
$t->{server} =~ s/%%AUTH%%/$auth_port/;
$t->{server} =~ s{auth_basic_user_file htpasswd}
                 {auth_basic_user_file $t->{dir}/htpasswd};
$t->write_conf;
open my $f, '>', "$t->{dir}/htpasswd" or die $!;
print $f "alice:{SHA}" . sha1_base64('alice-pw') . "=\n";
print $f "bob:{PLAIN}bob-pw\n";
close $f;
$t->start_nginx;

my $month = strftime('%Y-%m', gmtime);
my $chat = { model => 'gpt-4o-mini', max_tokens => 5,
             messages => [{ role => 'user', content => 'hello' }] };
my %forged = ('X-TokenGuard-User' => 'ceo', 'X-User' => 'ceo',
              'X-Remote-User' => 'ceo', 'X-TokenGuard-Team' => 'board');

sub basic { 'Basic ' . encode_base64("$_[0]:$_[1]", '') }

sub spent {
    my ($user) = @_;
    $t->wait_settled("tg:{u:$user}:$month");
    return $t->hash("tg:{u:$user}:$month")->{requests} // 0;
}

sub no_ceo {
    my ($name) = @_;
    my $keys = $t->redis('KEYS', '*') || [];
    my @bad = grep { /ceo|board/ } @$keys;
    my $members = join ' ', map { @{ $t->redis('SMEMBERS', $_) || [] } }
                            grep { /^tg:idx:/ } @$keys;
    ok(!@bad && $members !~ /ceo|board/, "$name: no key or index names ceo")
        or diag explain \@bad, $members;
}

# auth_basic: the password decides, headers do not
my $r = $t->post('/basic/v1/chat/completions', $chat,
                 { %forged, Authorization => basic('alice', 'alice-pw') });
is($r->{status}, 200, 'auth_basic: alice with forged headers: 200');
is($t->last_log->{user}, 'alice', 'auth_basic: $tokenguard_user is alice');
is(spent('alice'), 1, 'auth_basic: alice is charged');
is(spent('ceo'), 0, 'auth_basic: ceo is not');
ok(!grep({ /^x-tokenguard-/ } keys %{ $t->upstream->{headers} }),
   'auth_basic: the forged X-TokenGuard-* headers never reach the provider');

$r = $t->post('/basic/v1/chat/completions', $chat, \%forged);
is($r->{status}, 401, 'auth_basic: forged headers alone: 401');
ok(!$t->upstream, 'auth_basic: and nothing goes upstream');

$r = $t->post('/basic/v1/chat/completions', $chat,
              { %forged, Authorization => basic('ceo', 'guess') });
is($r->{status}, 401, 'auth_basic: an unknown user: 401');

$r = $t->post('/basic/v1/chat/completions', $chat,
              { %forged, Authorization => basic('bob', 'bob-pw') });
is($r->{status}, 200, 'auth_basic: bob: 200');
is(spent('bob'), 1, 'auth_basic: bob is charged');
no_ceo('auth_basic');

# a map from the key the gateway issued
$r = $t->post('/key/v1/chat/completions', $chat,
              { %forged, Authorization => 'Bearer sk-gw-alice-0001' });
is($r->{status}, 200, 'key map: 200');
is($t->last_log->{user}, 'alice', 'key map: $tokenguard_user is alice');
is(spent('alice'), 2, 'key map: alice is charged');

$r = $t->post('/key/v1/chat/completions', $chat,
              { %forged, Authorization => 'Bearer sk-made-up' });
is($r->{status}, 401, 'key map: an unknown key: 401');
is($r->{json}{error}{code}, 'identity_required', 'key map: identity_required');

$r = $t->post('/key/v1/chat/completions', $chat, \%forged);
is($r->{status}, 401, 'key map: forged headers alone: 401');
no_ceo('key map');

# auth_request: the SSO's answer, not the client's X-User
$r = $t->post('/sso/v1/chat/completions', $chat,
              { %forged, Authorization => 'Bearer sk-gw-bob-0002' });
is($r->{status}, 200, 'auth_request: 200');
is($t->last_log->{user}, 'bob', 'auth_request: $tokenguard_user is bob');
is(spent('bob'), 2, 'auth_request: bob is charged');

$r = $t->post('/sso/v1/chat/completions', $chat, \%forged);
is($r->{status}, 401, 'auth_request: forged headers alone: 401');
ok(!$t->upstream, 'auth_request: and nothing goes upstream');
no_ceo('auth_request');

is(spent('alice'), 2, 'alice was charged twice in all');
is(spent('bob'), 2, 'bob was charged twice in all');

# control: a location that trusts a raw client header is fooled, and
# the checks above would have seen it
$r = $t->post('/raw/v1/chat/completions', $chat, \%forged);
is($r->{status}, 200, 'control: raw X-User: 200');
is(spent('ceo'), 1, 'control: raw X-User: ceo is charged');
ok(grep({ /\{u:ceo\}/ } @{ $t->redis('KEYS', '*') }),
   'control: and the ledger names ceo');

$t->stop;
done_testing;
