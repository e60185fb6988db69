# $remote_user is whatever name a Basic Authorization header carries:
# nginx decodes it whether or not anything checked the password.  It is
# an identity only where auth_basic checked it (docs/identity.md, "Identity
# you can trust").  The hazards, shown so that its rules are tested:
# no auth_basic, "auth_basic off" in a nested location, "satisfy any"
# with an allow that matches; and the safe form: a wrong password is a
# 401 from auth_basic before tokenguard reads, reserves or counts
# anything.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use MIME::Base64 qw(encode_base64);
use POSIX qw(strftime);
use TG;

my $t = TG->new(server => q{
    tokenguard_user $remote_user;
    tokenguard_cap user 10usd month;

    location /checked/ {
        auth_basic "AI gateway";
        auth_basic_user_file %%HTPASSWD%%;
        tokenguard on;
        proxy_pass http://stub/;

        location /checked/open/ {
            # what not to do: the password is no longer checked here
            auth_basic off;
            tokenguard on;
            proxy_pass http://stub/;
        }
    }
    location /unchecked/ {
        # what not to do: no auth_basic at all
        tokenguard on;
        proxy_pass http://stub/;
    }
    location /any/ {
        # what not to do: from 127.0.0.1 "allow" suffices, the password
        # is never checked, and $remote_user is the client's word
        satisfy any;
        allow 127.0.0.1;
        deny all;
        auth_basic "AI gateway";
        auth_basic_user_file %%HTPASSWD%%;
        tokenguard on;
        proxy_pass http://stub/;
    }
    location /all/ {
        satisfy all;
        allow 127.0.0.1;
        deny all;
        auth_basic "AI gateway";
        auth_basic_user_file %%HTPASSWD%%;
        tokenguard on;
        proxy_pass http://stub/;
    }
}, no_start => 1);

$t->{server} =~ s/%%HTPASSWD%%/$t->{dir}\/htpasswd/g;
$t->write_conf;
open my $f, '>', "$t->{dir}/htpasswd" or die $!;
print $f "alice:{PLAIN}alice-pw\n";
close $f;
$t->start_nginx;

my $month = strftime('%Y-%m', gmtime);
my $chat = { model => 'gpt-4o-mini', max_tokens => 5,
             messages => [{ role => 'user', content => 'hello' }] };

sub basic { { Authorization => 'Basic ' . encode_base64("$_[0]:$_[1]", '') } }

sub counted {
    my ($user) = @_;
    $t->wait_settled("tg:{u:$user}:$month");
    my $h = $t->hash("tg:{u:$user}:$month");
    return ($h->{requests} // 0) + ($h->{denied} // 0);
}

sub keys_of {
    my ($user) = @_;
    return grep { /\{u:\Q$user\E\}/ } @{ $t->redis('KEYS', '*') || [] };
}

# the safe form: the password decides
my $r = $t->post('/checked/v1/chat/completions', $chat,
                 basic('alice', 'alice-pw'));
is($r->{status}, 200, 'auth_basic: the right password: 200');
is($t->last_log->{user}, 'alice', 'auth_basic: charged to alice');
is(counted('alice'), 1, 'auth_basic: alice counted once');

$r = $t->post('/checked/v1/chat/completions', $chat,
              basic('alice', 'wrong'));
is($r->{status}, 401, 'auth_basic: a wrong password: 401');
ok(!$r->{headers}{'x-tokenguard-code'},
   'auth_basic: the 401 is auth_basic\'s, not a tokenguard refusal');
ok(!$t->upstream, 'auth_basic: nothing went upstream');
is(counted('alice'), 1, 'auth_basic: nothing counted for alice');
is($t->last_log->{decision}, '', 'auth_basic: tokenguard decided nothing');

$r = $t->post('/checked/v1/chat/completions', $chat,
              basic('mallory', 'anything'));
is($r->{status}, 401, 'auth_basic: an unknown name: 401');
is(scalar keys_of('mallory'), 0, 'auth_basic: no key names mallory');

$r = $t->post('/all/v1/chat/completions', $chat, basic('mallory', 'x'));
is($r->{status}, 401, 'satisfy all + allow: the password is still checked');
$r = $t->post('/all/v1/chat/completions', $chat, basic('alice', 'alice-pw'));
is($r->{status}, 200, 'satisfy all + allow: alice: 200');
is(scalar keys_of('mallory'), 0, 'satisfy all: no key names mallory');

# the hazards: a name nobody checked is taken as it comes
for my $case (['/unchecked/', 'no auth_basic', 'ceo'],
              ['/checked/open/', 'nested auth_basic off', 'cfo'],
              ['/any/', 'satisfy any + allow', 'cto']) {
    my ($path, $name, $who) = @$case;
    $r = $t->post("${path}v1/chat/completions", $chat, basic($who, 'guess'));
    is($r->{status}, 200, "hazard, $name: a made-up password: 200");
    is($t->last_log->{user}, $who, "hazard, $name: charged to \"$who\"");
    is(counted($who), 1, "hazard, $name: the budget of $who is spent");
}

$t->stop;
done_testing;
