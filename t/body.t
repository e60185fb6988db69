# Bodies the hard way: spilled to a temp file, in-file only, chunked, over
# tokenguard_max_body (by Content-Length and by counting).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

my $t = TG->new(server => q{
    client_body_buffer_size 1k;
    tokenguard_user alice;
    tokenguard on;
    tokenguard_route ^gpt-4o$ gpt-4o-mini;
    tokenguard_deny_prompt NEEDLE-AT-THE-END name=needle;
    location / {
        proxy_pass http://stub;
    }
    location /file-only/ {
        client_body_in_file_only clean;
        proxy_pass http://stub/;
    }
    location /memory/ {
        client_body_buffer_size 64k;
        proxy_pass http://stub/;
    }
    location /small/ {
        tokenguard_max_body 2k;
        proxy_pass http://stub/;
    }
});

my $filler = 'lorem ipsum ' x 20000;          # 240 KB, far over 1k buffers
my $big = JSON::PP->new->canonical->encode({ model => 'gpt-4o',
    messages => [{ role => 'user', content => $filler }] });
my $big_needle = JSON::PP->new->canonical->encode({ model => 'gpt-4o',
    messages => [{ role => 'user', content => "$filler NEEDLE-AT-THE-END" }] });
(my $big_routed = $big) =~ s/"gpt-4o"/"gpt-4o-mini"/;

for my $loc ('', '/file-only') {
    my $r = $t->post("$loc/v1/chat/completions", $big);
    is($r->{status}, 200, "temp file body$loc: 200");
    my $up = $t->upstream;
    is($up->{body}, $big_routed, "temp file body$loc: whole body, rewritten");
    is($up->{headers}{'content-length'}, length $big_routed,
       "temp file body$loc: Content-Length");
    ok($t->last_log->{prompt_tokens} > 60000, "temp file body$loc: all text"
       . " was read");

    $r = $t->post("$loc/v1/chat/completions", $big_needle);
    is($r->{status}, 403, "temp file body$loc: text at its very end checked");
}

# chunked: HTTP::Tiny sends a code ref body chunked
sub chunked {
    my ($body, $size) = @_;
    my @parts = unpack "(a$size)*", $body;
    return sub { shift @parts };
}

my $r = $t->post('/v1/chat/completions', chunked($big, 7000),
                 { 'Content-Type' => 'application/json' });
is($r->{status}, 200, 'chunked: 200');
my $up = $t->upstream;
is($up->{body}, $big_routed, 'chunked: whole body, rewritten');
is($up->{headers}{'content-length'}, length $big_routed,
   'chunked: sent upstream with a Content-Length');
ok(!$up->{headers}{'transfer-encoding'}, 'chunked: not chunked upstream');

my $small = '{"model":"x","messages":[{"role":"user","content":"hi"}]}';
$r = $t->post('/v1/chat/completions', chunked($small, 5));
is($r->{status}, 200, 'chunked small body: 200');
is($t->upstream->{body}, $small, 'chunked small body: untouched');
is($t->upstream->{headers}{'content-length'}, length $small,
   'chunked small body: Content-Length');

# bodies in several memory buffers (part read with the headers, then the
# rest; or one buffer per chunk): what goes upstream is spliced from
# them, the edits falling across their boundaries
my $mid = JSON::PP->new->canonical->encode({ model => 'gpt-4o',
    messages => [{ role => 'user', content => 'lorem ipsum ' x 500 }],
    stream => JSON::PP::true });
(my $mid_routed = $mid) =~ s/"gpt-4o"/"gpt-4o-mini"/;
$mid_routed =~ s/^\{/{"stream_options":{"include_usage":true},/;
for my $body ([$mid, 'read with the headers, then the rest'],
              [chunked($mid, 7), 'seven-byte chunks'],
              [chunked($mid, 3000), 'two chunks'])
{
    # the headers and the body in one write: nginx reads the first part
    # of the body into its header buffer
    my $status = ref $body->[0]
        ? $t->post('/memory/v1/chat/completions', $body->[0],
                   { 'Content-Type' => 'application/json' })->{status}
        : $t->http10('POST', '/memory/v1/chat/completions', $body->[0],
                     { 'Content-Type' => 'application/json' })->{status};
    is($status, 200, "memory buffers, $body->[1]: 200");
    is($t->upstream->{body}, $mid_routed,
       "memory buffers, $body->[1]: spliced byte for byte");
    is($t->upstream->{headers}{'content-length'}, length $mid_routed,
       "memory buffers, $body->[1]: Content-Length");
}

# tokenguard_max_body
$r = $t->post('/small/v1/chat/completions', $big);
is($r->{status}, 413, 'over max_body by Content-Length: 413');
is($r->{headers}{'x-tokenguard-code'}, 'body_too_large', 'code body_too_large');
like($r->{json}{error}{message}, qr/2048 bytes/, 'message names the limit');
ok(!$t->upstream, 'nothing went upstream');

$r = $t->post('/small/v1/chat/completions', chunked($big, 1000));
is($r->{status}, 413, 'over max_body chunked: 413');
is($r->{json}{error}{code}, 'body_too_large', 'chunked: code');

my $fits = '{"model":"x","messages":[{"role":"user","content":"'
           . ('a' x (2048 - 55)) . '"}]}';
is(length $fits, 2048, 'a body of exactly the limit');
$r = $t->post('/small/v1/chat/completions', $fits);
is($r->{status}, 200, 'exactly max_body: 200');

# keepalive: a refused request does not break the next one on the socket
my $http = HTTP::Tiny->new(keep_alive => 1);
my $url = $t->url('/small/v1/chat/completions');
$r = $http->post($url, { content => $big });
is($r->{status}, 413, 'keepalive: 413 first');
$r = $http->post($url, { content => $small });
is($r->{status}, 200, 'keepalive: then 200');

$t->stop;
done_testing;
