# The client's own X-TokenGuard-* request headers never reach the
# provider (any case, "_" for "-"), on admitted, passed-through and
# mirrored requests, however many headers the request has; every other
# header goes through unchanged and in order, and the identity may still
# be read from such a header before it is dropped.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use TG;

my $t = TG->new(server => q{
    underscores_in_headers on;

    location / {
        tokenguard on;
        tokenguard_user $http_x_tokenguard_user;
        tokenguard_team $http_x_tokenguard_team;
        proxy_set_header X-Seen-Host $host;
        proxy_set_header X-Seen-UA $http_user_agent;
        proxy_set_header X-Seen-Var "[$http_x_tokenguard_budget_remaining]";
        proxy_pass http://stub;
    }
    location /mirrored/ {
        tokenguard on;
        tokenguard_user $http_x_tokenguard_user;
        mirror /mirror;
        proxy_pass http://stub/;
    }
    location = /mirror {
        internal;
        proxy_pass http://stub/mirror$request_uri;
    }
    location /off/ {
        proxy_pass http://stub/;
    }
});

my $chat = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}';

# a request exactly as written: header names keep their case, and any
# number of them in any order
sub raw {
    my ($method, $path, $headers, $body, $proto) = @_;
    $proto //= 'HTTP/1.1';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->{port}, Timeout => 10)
        or die "connect: $!";
    my $req = "$method $path $proto\r\n";
    $req .= "Host: localhost\r\n" if $proto eq 'HTTP/1.1';
    $req .= "$_->[0]: $_->[1]\r\n" for @$headers;
    # the access log line of this request, for last_log()
    $req .= "X-TG-Test-Id: " . ++$t->{test_id} . "\r\n" unless $proto eq 'HTTP/1.0';
    $req .= "Content-Length: " . length($body) . "\r\n" if defined $body;
    $req .= $proto eq 'HTTP/1.0' ? "\r\n" : "Connection: close\r\n\r\n";
    $req .= $body if defined $body;
    $t->clear_upstream;
    print $s $req;
    local $/;
    my $res = <$s> // '';
    close $s;
    my ($status) = $res =~ m{^HTTP/1\.\d (\d+)};
    return $status // 0;
}

sub names { map { $_->[0] } @{ $_[0]{header_list} } }

sub own { grep { /^x[-_]tokenguard[-_]/i } @_ }

my @own = (['X-TokenGuard-User', 'alice'],
           ['x-tokenguard-budget-remaining', '1000000'],
           ['X-TOKENGUARD-anything', 'x'],
           ['X_TokenGuard_Team', 'research'],
           ['x-TokenGuard-Model', 'o1-pro']);

# positive control: where tokenguard is off they all arrive, so the stub
# does record them
is(raw('POST', '/off/v1/chat/completions',
       [@own, ['X-Normal', 'kept']], $chat), 200, 'tokenguard off: 200');
is(scalar(own(names($t->upstream))), 5,
   'tokenguard off: the stub records every X-TokenGuard-* header');

my $st = raw('POST', '/v1/chat/completions',
             [@own, ['X-Normal', 'kept'], ['User-Agent', 'ua/1']], $chat);
is($st, 200, 'admitted');
my $up = $t->upstream;
is_deeply([own(names($up))], [], 'no X-TokenGuard-* header upstream');
is($up->{headers}{'x-normal'}, 'kept', 'a normal header goes through');
is($up->{headers}{'x-seen-ua'}, 'ua/1', '$http_user_agent still right');
is($up->{headers}{'x-seen-host'}, 'localhost', '$host still right');
is($up->{headers}{'x-seen-var'}, '[]',
   '$http_x_tokenguard_* not set before the strip is empty after it');
my $log = $t->last_log;
is($log->{user}, 'alice', 'identity read from X-TokenGuard-User first');
is($log->{team}, 'research', 'team read from X_TokenGuard_Team first');

# passed through: not a generation call
is(raw('GET', '/v1/models', [@own, ['X-Normal', 'kept']]), 200,
   'GET /v1/models passes');
$up = $t->upstream;
is_deeply([own(names($up))], [], 'passed through: stripped too');
is($up->{headers}{'x-normal'}, 'kept', 'passed through: normal header kept');

# many headers: nginx keeps them in parts of 20; strip the first, ones
# across a part boundary, whole runs and the last
my @many;
for my $i (1 .. 70) {
    if ($i == 1 || $i == 20 || $i == 21 || ($i >= 38 && $i <= 45)
        || $i % 7 == 0 || $i == 70)
    {
        push @many, [$i % 2 ? "X-TokenGuard-N$i" : "x-tokenguard-n$i", $i];
    } else {
        push @many, ["X-N$i", $i];
    }
}
push @many, ['X-TokenGuard-User', 'bob'];
splice @many, 30, 0, ['User-Agent', 'ua/2'];
$st = raw('POST', '/v1/chat/completions', \@many, $chat);
is($st, 200, 'many headers: admitted');
$up = $t->upstream;
is_deeply([own(names($up))], [], 'many headers: none of ours upstream');
is_deeply([grep { /^X-N\d+$/ } names($up)],
          [map { $_->[0] } grep { $_->[0] =~ /^X-N\d+$/ } @many],
          'many headers: the others all there, in order');
is($up->{headers}{'x-seen-ua'}, 'ua/2',
   'many headers: User-Agent (a pointer into the list) still right');
is($t->last_log->{user}, 'bob', 'many headers: identity read');

# a request whose only header is ours: the list ends up empty
is(raw('GET', '/v1/models', [['X-TokenGuard-User', 'carol']], undef,
       'HTTP/1.0'), 200, 'only our header: passes');
is_deeply([own(names($t->upstream))], [], 'only our header: stripped');

# mirror subrequests are made after the strip
is(raw('POST', '/mirrored/v1/chat/completions',
       [@own, ['X-Normal', 'kept']], $chat), 200, 'mirrored: 200');
my @ups;
for (1 .. 100) {
    @ups = $t->upstream_all;
    last if @ups == 2;
    select undef, undef, undef, 0.02;
}
is(scalar @ups, 2, 'mirrored: the provider and the mirror got it');
is_deeply([map { own(names($_)) } @ups], [], 'mirrored: stripped in both');

# refused: nothing goes upstream at all
is(raw('POST', '/v1/chat/completions', [['X-TokenGuard-Team', 'x']], $chat),
   401, 'no identity: 401');
ok(!$t->upstream, 'refused: nothing reached the provider');

$t->stop;
done_testing;
