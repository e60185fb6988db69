# The rewrite: what the provider receives after routing and include_usage
# injection, byte for byte, with a Content-Length that matches.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

my $closer = TG::free_port();
my $t = TG->new(http => qq{
    # the first server closes every connection: nginx sends the request
    # again to the next, rewinding the spliced body
    server {
        listen 127.0.0.1:$closer;
        return 444;
    }
    upstream retry {
        server 127.0.0.1:$closer;
        server %%UPSTREAM%%;
    }
}, server => q{
    location /retry/ {
        tokenguard on;
        tokenguard_user alice;
        tokenguard_route ^gpt-4o$ gpt-4o-mini;
        proxy_next_upstream error non_idempotent;
        proxy_pass http://retry/;
    }
    location / {
        tokenguard on;
        tokenguard_user alice;
        tokenguard_route ^gpt-4o$ gpt-4o-mini tag=mini;
        tokenguard_route ^claude-opus-4-1$ claude-sonnet-4-5;
        tokenguard_route ^gemini-1\.5-pro$ gemini-2.0-flash;
        proxy_pass http://stub;
    }
    location /no-usage/ {
        tokenguard on;
        tokenguard_user alice;
        tokenguard_include_usage off;
        proxy_pass http://stub/;
    }
});

sub post_raw {
    my ($path, $raw) = @_;
    my $r = $t->post($path, $raw, { 'Content-Type' => 'application/json' });
    return ($r, $t->upstream);
}

# every other byte as the client sent it: odd spacing, key order, floats
my $raw = qq({ "temperature" : 0.70, "model":"gpt-4o" ,\n "messages":[{"role":"user","content":"model: gpt-4o"}],"seed":12345678901234567890, "top_p":1e0});
my ($r, $up) = post_raw('/v1/chat/completions', $raw);
is($r->{status}, 200, 'routed: 200');
(my $want = $raw) =~ s/"model":"gpt-4o"/"model":"gpt-4o-mini"/;
is($up->{body}, $want, 'only the model changed, byte for byte');
is($up->{headers}{'content-length'}, length $want,
   'Content-Length matches the new body');
is($t->last_log->{content_length}, length $want,
   '$content_length matches the new body');

# sent twice (the first upstream closed): the same body the second time
($r, $up) = post_raw('/retry/v1/chat/completions', $raw);
is($r->{status}, 200, 'retried to the next upstream: 200');
is($up->{body}, $want, 'the next upstream got the whole spliced body');
like($t->error_log, qr/prematurely closed|reset by peer|broken pipe/i,
     'the first upstream did close');

($r, $up) = post_raw('/v1/chat/completions',
                     '{"model":"gpt-4o-mini","messages":[]}');
is($up->{body}, '{"model":"gpt-4o-mini","messages":[]}',
   'not routed, not streaming: body untouched');
is($up->{headers}{'content-length'}, 37, 'Content-Length untouched');

# include_usage for OpenAI streams
($r, $up) = post_raw('/v1/chat/completions',
                     '{"model":"gpt-4o","stream":true,"messages":[]}');
is($up->{body}, '{"stream_options":{"include_usage":true},"model":'
   . '"gpt-4o-mini","stream":true,"messages":[]}',
   'stream: include_usage added and model routed');
is($up->{headers}{'content-length'}, length $up->{body}, 'length matches');
like($r->{content}, qr/"usage":\{/, 'the stream now ends with usage');

($r, $up) = post_raw('/v1/completions', '{"model":"x","stream":true,'
                     . '"stream_options":{"include_usage":false},"prompt":"p"}');
is($up->{json}{stream_options}{include_usage}, JSON::PP::true,
   'completions: include_usage false made true');

($r, $up) = post_raw('/v1/responses', '{"model":"x","stream":true,"input":"p"}');
is($up->{body}, '{"model":"x","stream":true,"input":"p"}',
   'responses API: no stream_options (usage comes with response.completed)');

($r, $up) = post_raw('/no-usage/v1/chat/completions',
                     '{"model":"x","stream":true,"messages":[]}');
is($up->{body}, '{"model":"x","stream":true,"messages":[]}',
   'tokenguard_include_usage off: untouched');

# Anthropic body
($r, $up) = post_raw('/v1/messages', '{"max_tokens":10,"model":'
                     . '"claude-opus-4-1","stream":true,"messages":[]}');
is($up->{body}, '{"max_tokens":10,"model":"claude-sonnet-4-5",'
   . '"stream":true,"messages":[]}', 'anthropic: model routed, no stream_options');
is($r->{headers}{'x-tokenguard-route'}, '#2', 'anthropic: route header');

# Gemini: the model is in the URI; the query string is kept
my $gbody = '{"contents":[{"parts":[{"text":"hi"}]}]}';
($r, $up) = post_raw('/v1beta/models/gemini-1.5-pro:streamGenerateContent'
                     . '?alt=sse&key=k', $gbody);
is($r->{status}, 200, 'gemini routed: 200');
is($up->{uri}, '/v1beta/models/gemini-2.0-flash:streamGenerateContent'
   . '?alt=sse&key=k', 'gemini: model rewritten in the URI, args kept');
is($up->{body}, $gbody, 'gemini: body untouched');
is($t->last_log->{uri}, '/v1beta/models/gemini-2.0-flash:streamGenerateContent',
   'gemini: $uri is the rewritten one');

($r, $up) = post_raw('/v1beta/models/gemini-2.0-flash:generateContent', $gbody);
is($up->{uri}, '/v1beta/models/gemini-2.0-flash:generateContent',
   'gemini not routed: URI untouched');

$t->stop;
done_testing;
