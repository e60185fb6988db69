# What the provider reads is what the policy reads: a secret anywhere the
# provider will read text (tool arguments, tool results, tool and schema
# descriptions, property names, documents with a text source, base64 text
# media, Gemini function calls, parts of unknown types), plain or
# escaped, is refused by tokenguard_deny_prompt; prompt~ and
# tokenguard_classify see the same text; the same bodies without the
# secret pass.
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
        tokenguard_deny_prompt "AKIA[0-9A-Z]{16}" name=aws-key;
        tokenguard_route ^gpt-4o$ gpt-4o-mini "prompt~ZEBRA[0-9]{4}" tag=zebra;
        tokenguard_route ^claude-sonnet-4-5$ claude-haiku-4-5 "prompt~ZEBRA[0-9]{4}" tag=zebra;
        tokenguard_route ^gemini-2.0-flash$ gemini-2.0-flash-lite "prompt~ZEBRA[0-9]{4}" tag=zebra;
        tokenguard_classify "ZEBRA[0-9]{4}" zebra;
        proxy_pass http://stub;
    }
    # the estimate, seen through a token cap: a request is refused when
    # its prompt estimate plus max_tokens would pass 1200 tokens
    location /est/ {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_cap user 1200tokens day;
        proxy_pass http://stub/;
    }
});
my %u = ('X-User' => 'alice');
my $J = JSON::PP->new->canonical;
my $SECRET = 'AKIAIOSFODNN7EXAMPLE';
my $gemini = '/v1beta/models/gemini-2.0-flash:generateContent';

sub b64 { encode_base64($_[0], '') }
sub args { $J->encode({ path => '/tmp/x', key => $_[0] }) }

sub chat {
    my (@messages) = @_;
    return { model => 'gpt-4o', messages => [@messages] };
}

sub claude {
    my (@content) = @_;
    return { model => 'claude-sonnet-4-5', max_tokens => 10,
             messages => [{ role => 'user', content => [@content] }] };
}

sub gem {
    my (@parts) = @_;
    return { contents => [{ role => 'user', parts => [@parts] }] };
}

# name, path, sub(TEXT) -> body, has tools (classify says agentic)
my @cases = (
    ['chat: user text', '/v1/chat/completions', sub {
        chat({ role => 'user', content => $_[0] }) }, 0],
    ['chat: tool call arguments', '/v1/chat/completions', sub {
        chat({ role => 'assistant', content => undef, tool_calls => [{
            id => 'call_1', type => 'function',
            function => { name => 'read', arguments => args($_[0]) } }] },
             { role => 'tool', tool_call_id => 'call_1', content => 'ok' }) },
     1],
    ['chat: legacy function_call arguments', '/v1/chat/completions', sub {
        chat({ role => 'assistant', content => undef,
               function_call => { name => 'read',
                                  arguments => args($_[0]) } }) }, 1],
    ['chat: tool result', '/v1/chat/completions', sub {
        chat({ role => 'tool', tool_call_id => 'call_1',
               content => "result: $_[0]" }) }, 1],
    ['chat: tool result parts', '/v1/chat/completions', sub {
        chat({ role => 'tool', tool_call_id => 'call_1',
               content => [{ type => 'text', text => $_[0] }] }) }, 1],
    ['chat: tool description', '/v1/chat/completions', sub {
        +{ %{ chat({ role => 'user', content => 'hi' }) },
          tools => [{ type => 'function', function => {
              name => 'f', description => "use $_[0]",
              parameters => { type => 'object' } } }] } }, 1],
    ['chat: schema property name', '/v1/chat/completions', sub {
        +{ %{ chat({ role => 'user', content => 'hi' }) },
          tools => [{ type => 'function', function => {
              name => 'f', parameters => { type => 'object',
                  properties => { $_[0] => { type => 'string' } } } } }] } },
     1],
    ['chat: schema enum', '/v1/chat/completions', sub {
        +{ %{ chat({ role => 'user', content => 'hi' }) },
          tools => [{ type => 'function', function => {
              name => 'f', parameters => { type => 'object',
                  properties => { k => { type => 'string',
                                         enum => [$_[0]] } } } } }] } }, 1],
    ['chat: response_format schema', '/v1/chat/completions', sub {
        +{ %{ chat({ role => 'user', content => 'hi' }) },
          response_format => { type => 'json_schema', json_schema => {
              name => 'x', schema => { type => 'object',
                                       description => $_[0] } } } } }, 0],
    ['chat: a part of an unknown type', '/v1/chat/completions', sub {
        chat({ role => 'user', content => [{ type => 'future_part',
              future_part => { body => $_[0] } }] }) }, 0],
    ['chat: text file as a data URL', '/v1/chat/completions', sub {
        chat({ role => 'user', content => [{ type => 'file', file => {
              filename => 'a.txt',
              file_data => 'data:text/plain;base64,' . b64($_[0]) } }] }) },
     0],
    ['chat: message name', '/v1/chat/completions', sub {
        chat({ role => 'user', name => $_[0], content => 'hi' }) }, 0],
    ['responses: instructions', '/v1/responses', sub {
        +{ model => 'gpt-4o', instructions => $_[0], input => 'hi' } }, 0],
    ['responses: function_call arguments', '/v1/responses', sub {
        +{ model => 'gpt-4o', input => [{ type => 'function_call',
          call_id => 'c', name => 'f', arguments => args($_[0]) }] } }, 1],
    ['responses: custom tool input', '/v1/responses', sub {
        +{ model => 'gpt-4o', input => [{ type => 'custom_tool_call',
          call_id => 'c', name => 'f', input => $_[0] }] } }, 1],
    ['responses: tool output', '/v1/responses', sub {
        +{ model => 'gpt-4o', input => [{ type => 'function_call_output',
          call_id => 'c', output => $_[0] }] } }, 1],
    ['responses: text.format schema', '/v1/responses', sub {
        +{ model => 'gpt-4o', input => 'hi', text => { format => {
          type => 'json_schema', name => 'x',
          schema => { type => 'object', description => $_[0] } } } } }, 0],
    ['responses: custom tool definition', '/v1/responses', sub {
        +{ model => 'gpt-4o', input => 'hi', tools => [{ type => 'custom',
          name => 'f', description => $_[0] }] } }, 1],
    ['anthropic: system', '/v1/messages', sub {
        +{ %{ claude({ type => 'text', text => 'hi' }) }, system => $_[0] } },
     0],
    ['anthropic: tool_use input', '/v1/messages', sub {
        claude({ type => 'tool_use', id => 'toolu_1', name => 'f',
                 input => { cmd => $_[0] } }) }, 1],
    ['anthropic: tool_use input key', '/v1/messages', sub {
        claude({ type => 'tool_use', id => 'toolu_1', name => 'f',
                 input => { $_[0] => 1 } }) }, 1],
    ['anthropic: an image shape inside tool input', '/v1/messages', sub {
        claude({ type => 'tool_use', id => 'toolu_1', name => 'f',
                 input => { type => 'image', source => { type => 'base64',
                     media_type => 'image/png', data => $_[0] } } }) }, 1],
    ['anthropic: tool_result', '/v1/messages', sub {
        claude({ type => 'tool_result', tool_use_id => 'toolu_1',
                 content => $_[0] }) }, 1],
    ['anthropic: tool description and schema', '/v1/messages', sub {
        +{ %{ claude({ type => 'text', text => 'hi' }) },
          tools => [{ name => 'f', description => 'd', input_schema => {
              type => 'object', properties => { k => {
                  type => 'string', description => $_[0] } } } }] } }, 1],
    ['anthropic: plain text document', '/v1/messages', sub {
        claude({ type => 'document', source => { type => 'text',
                 media_type => 'text/plain', data => $_[0] } }) }, 0],
    ['anthropic: base64 text document', '/v1/messages', sub {
        claude({ type => 'document', source => { type => 'base64',
                 media_type => 'text/plain', data => b64($_[0]) } }) }, 0],
    ['anthropic: base64 JSON document', '/v1/messages', sub {
        claude({ type => 'document', source => { type => 'base64',
                 media_type => 'application/json; charset=utf-8',
                 data => b64($J->encode({ k => $_[0] })) } }) }, 0],
    ['anthropic: content document', '/v1/messages', sub {
        claude({ type => 'document', source => { type => 'content',
                 content => [{ type => 'text', text => $_[0] }] } }) }, 0],
    ['anthropic: document title', '/v1/messages', sub {
        claude({ type => 'document', title => $_[0], source => {
                 type => 'text', media_type => 'text/plain',
                 data => 'x' } }) }, 0],
    ['anthropic: a block of an unknown type', '/v1/messages', sub {
        claude({ type => 'search_result', source => 'https://x',
                 title => 't', content => [{ type => 'text',
                 text => $_[0] }] }) }, 0],
    ['gemini: text', $gemini, sub { gem({ text => $_[0] }) }, 0],
    ['gemini: functionCall args', $gemini, sub {
        gem({ functionCall => { name => 'f', args => { k => $_[0] } } }) },
     1],
    ['gemini: functionResponse', $gemini, sub {
        gem({ functionResponse => { name => 'f',
              response => { out => [$_[0]] } } }) }, 1],
    ['gemini: inlineData text/plain', $gemini, sub {
        gem({ inlineData => { mimeType => 'text/plain',
                              data => b64($_[0]) } }) }, 0],
    ['gemini: inlineData labelled binary that is text', $gemini, sub {
        gem({ inlineData => { mimeType => 'application/x-unknown',
                              data => b64("notes: $_[0]") } }) }, 0],
    ['chat: an "image" data URL that is text', '/v1/chat/completions', sub {
        chat({ role => 'user', content => [{ type => 'image_url',
              image_url => { url => 'data:image/png;base64,'
                                    . b64($_[0]) } }] }) }, 0],
    ['gemini: inline_data text/csv', $gemini, sub {
        gem({ inline_data => { mime_type => 'text/csv',
                               data => b64("a,$_[0]\n") } }) }, 0],
    ['gemini: systemInstruction', $gemini, sub {
        +{ %{ gem({ text => 'hi' }) },
          systemInstruction => { parts => [{ text => $_[0] }] } } }, 0],
    ['gemini: function declaration', $gemini, sub {
        +{ %{ gem({ text => 'hi' }) }, tools => [{ functionDeclarations => [{
          name => 'f', description => $_[0] }] }] } }, 1],
    ['gemini: responseSchema', $gemini, sub {
        +{ %{ gem({ text => 'hi' }) }, generationConfig => {
          responseMimeType => 'application/json',
          responseSchema => { type => 'OBJECT', description => $_[0] } } } },
     0],
);

sub send_body {
    my ($path, $text) = @_;
    return $t->post($path, $text, { %u, 'Content-Type' => 'application/json' });
}

sub denied {
    my ($name, $path, $raw) = @_;
    my $r = send_body($path, $raw);
    is($r->{status}, 403, "$name: 403");
    is($r->{headers}{'x-tokenguard-code'}, 'prompt_denied',
       "$name: prompt_denied");
    ok(!$t->upstream, "$name: never reaches the provider");
}

for my $c (@cases) {
    my ($name, $path, $make, $tools) = @$c;

    my $raw = $J->encode($make->($SECRET));
    denied($name, $path, $raw);

    # the same text with JSON escapes: the parser decodes them
    (my $esc = $raw) =~ s/AKIA/\\u0041K\\u0049A/g;
    denied("$name, \\u escaped", $path, $esc) if $esc ne $raw;

    # an escaped JSON document (tool arguments) with escapes of its own
    if ($raw =~ /\\"key\\":\\"AKIA/) {
        my $inner = $J->encode($make->('\\u0041KIA' . substr($SECRET, 4)));
        denied("$name, escaped inside the arguments", $path, $inner);
    }

    my $r = send_body($path, $J->encode($make->('hello world')));
    is($r->{status}, 200, "$name: benign passes");
    ok($t->upstream, "$name: benign reaches the provider");

    $r = send_body($path, $J->encode($make->('ZEBRA1234')));
    is($r->{status}, 200, "$name: marked passes");
    my $log = $t->last_log;
    is($log->{route}, 'zebra', "$name: prompt~ sees it");
    is($log->{category}, $tools ? 'agentic' : 'zebra',
       "$name: classify sees it") ;
}

# doubly escaped inside arguments: "{\"k\":\"\\u0041KIA...\"}" in the body
my $raw = '{"model":"gpt-4o","messages":[{"role":"assistant","content":null,'
    . '"tool_calls":[{"id":"c","type":"function","function":{"name":"f",'
    . '"arguments":"{\"k\":\"\\\\u0041KIAIOSFODNN7EXAMPLE\"}"}}]}]}';
denied('arguments with \\\\u0041', '/v1/chat/completions', $raw);

# arguments holding an escaped document in an escaped document
my $deep = $J->encode({ outer => $J->encode({ k => '\\u0041'
                                              . substr($SECRET, 1) }) });
denied('a document in a document in the arguments', '/v1/chat/completions',
       $J->encode(chat({ role => 'assistant', content => undef,
                         tool_calls => [{ id => 'c', type => 'function',
                         function => { name => 'f',
                                       arguments => $deep } }] })));

# base64 without padding and URL-safe alphabet
(my $url64 = b64("x $SECRET ?>")) =~ tr{+/=}{-_}d;
denied('base64url text document', '/v1/messages',
       $J->encode(claude({ type => 'document', source => { type => 'base64',
                  media_type => 'text/markdown', data => $url64 } })));

# binary media is not text: an image passes, reserved at a flat rate
my $png = b64("\x89PNG\r\n\x1a\n" . ("\0\xff" x 5000));
my $r = $t->post('/est/v1/messages', $J->encode(claude({ type => 'image',
                 source => { type => 'base64', media_type => 'image/png',
                 data => $png } })), { 'X-User' => 'img',
                 'Content-Type' => 'application/json' });
is($r->{status}, 200, 'an image counts at the flat rate, not as its base64'
   . ' text (13 KB would be 3300 tokens)');

# invalid UTF-8 in a text document is read, not refused as unreadable
$r = send_body('/v1/messages', $J->encode(claude({ type => 'document',
               source => { type => 'base64', media_type => 'text/plain',
               data => b64("\xff\xfe $SECRET") } })));
is($r->{status}, 403, 'a text document with invalid UTF-8: still read');

# the estimate counts tools and schemas as the provider does
my $desc = 'word ' x 1200;
$r = $t->post('/est/v1/chat/completions', $J->encode({
    %{ chat({ role => 'user', content => 'hi' }) }, max_tokens => 10,
    tools => [{ type => 'function', function => { name => 'f',
                description => $desc } }] }),
    { 'X-User' => 'tool', 'Content-Type' => 'application/json' });
is($r->{status}, 429, 'a 6000-byte tool description is in the estimate');
is($r->{headers}{'x-tokenguard-code'}, 'budget_exceeded',
   'refused by the token cap');
$r = $t->post('/est/v1/chat/completions', $J->encode({
    %{ chat({ role => 'user', content => 'hi' }) }, max_tokens => 10,
    tools => [{ type => 'function', function => { name => 'f',
                description => 'short' } }] }),
    { 'X-User' => 'tool', 'Content-Type' => 'application/json' });
is($r->{status}, 200, 'a short one is not');

unlike($t->error_log, qr/AKIAIOSF|ZEBRA/, 'no prompt text in error.log');

$t->stop;
done_testing;
