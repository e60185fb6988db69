# Red team, as an employee with a valid identity: a secret past
# tokenguard_deny_prompt in what the provider reads but the policy did not
# (numbers of tool arguments and results, base64 that a lenient decoder
# reads, a media type under another name, a file in a Responses tool
# output or prompt variable), a reservation smaller than what
# the provider may generate (two names of one limit, best_of), a
# background call charged as a cut answer; and the attacks that held
# (escapes, surrogates, duplicate keys, nested documents, many small
# strings, every dialect, usage the provider reports out of range).  Each
# assertion fails on the bug it names; README "What the policy reads" and
# "What is counted".
use strict;
use warnings;
use lib 't/lib';
use MIME::Base64 qw(encode_base64);
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(time);
use TG;

my $month = strftime('%Y-%m', gmtime);
my $true = JSON::PP::true;

my $t = TG->new(server => q{
    tokenguard_user $http_x_user;
    location / {
        tokenguard on;
        tokenguard_deny_prompt "AKIA[0-9A-Z]{16}" name=aws-key;
        tokenguard_deny_prompt "4111[0-9]{12}" name=card;
        proxy_pass http://stub;
    }
    # a token cap: prompt estimate plus the output reserved must fit
    location /cap/ {
        tokenguard on;
        tokenguard_cap user 2000tokens day;
        proxy_pass http://stub/;
    }
    # input the provider keeps, assumed smaller
    location /cap1k/ {
        tokenguard on;
        tokenguard_cap user 2000tokens day;
        tokenguard_stored_input_tokens 1000;
        proxy_pass http://stub/;
    }
    location /plain/ {
        tokenguard on;
        proxy_pass http://stub/;
        proxy_buffering off;
    }
});

my $J = JSON::PP->new->canonical;
my $SECRET = 'AKIAIOSFODNN7EXAMPLE';
my $CARD = 4111111111111111;
my $gemini = '/v1beta/models/gemini-2.0-flash:generateContent';
my $n = 0;

sub b64 { encode_base64($_[0], '') }

sub send_raw {
    my ($path, $raw, $user) = @_;
    return $t->post($path, $raw, { 'X-User' => $user // 'mallory',
                                   'Content-Type' => 'application/json' });
}

sub denied {
    my ($name, $path, $raw, $rule) = @_;
    my $r = send_raw($path, $raw);
    is($r->{status}, 403, "$name: 403");
    is($r->{headers}{'x-tokenguard-code'}, 'prompt_denied',
       "$name: prompt_denied");
    like($r->{content}, qr/\Q$rule\E/, "$name: by rule $rule") if $rule;
    ok(!$t->upstream, "$name: never reaches the provider");
}

sub passes {
    my ($name, $path, $raw) = @_;
    my $r = send_raw($path, $raw);
    is($r->{status}, 200, "$name: the same without the secret passes");
}

sub claude {
    return { model => 'claude-sonnet-4-5', max_tokens => 10,
             messages => [@_] };
}

sub gem { return { contents => [{ role => 'user', parts => [@_] }] } }

# --- found and fixed: what the provider reads that the policy did not ---

# numbers of an array have no node in the parser (token ids): inside tool
# arguments and results the model reads them
for my $v ($CARD, 4222222222222222) {
    my $body = $J->encode(claude(
        { role => 'user', content => 'look up the card' },
        { role => 'assistant', content => [{ type => 'tool_use', id => 't1',
          name => 'lookup', input => { cards => [[$v]] } }] },
        { role => 'user', content => [{ type => 'tool_result',
          tool_use_id => 't1', content => 'found' }] }));
    if ($v == $CARD) {
        denied('anthropic tool_use input, a number in an array',
               '/v1/messages', $body, 'card');
    } else {
        passes('anthropic tool_use input, a number in an array',
               '/v1/messages', $body);
    }
}

for my $v ($CARD, 4222222222222222) {
    my $body = $J->encode(gem({ functionResponse => { name => 'f',
        response => { rows => [1, [2, { n => [3, $v] }], 'x'] } } }));
    if ($v == $CARD) {
        denied('gemini functionResponse, a number deep in arrays', $gemini,
               $body, 'card');
    } else {
        passes('gemini functionResponse, a number deep in arrays', $gemini,
               $body);
    }
}

# Python's b64decode and Node's Buffer skip what is not base64: so must
# the policy, or "QU*tJ..." hides the key the provider decodes
for my $s ($SECRET, 'nothing to see here') {
    (my $junk = b64($s)) =~ s/^(..)/$1*!/;
    my $claude = $J->encode(claude({ role => 'user', content => [
        { type => 'document', source => { type => 'base64',
          media_type => 'text/plain', data => $junk } },
        { type => 'text', text => 'summarise' }] }));
    my $chat = $J->encode({ model => 'gpt-4o', messages => [{
        role => 'user', content => [{ type => 'file', file => {
        filename => 'a.txt',
        file_data => "data:text/plain;base64,$junk" } }] }] });
    if ($s eq $SECRET) {
        denied('anthropic base64 document with junk bytes', '/v1/messages',
               $claude, 'aws-key');
        denied('chat data: URL with junk bytes', '/v1/chat/completions',
               $chat, 'aws-key');
    } else {
        passes('anthropic base64 document with junk bytes', '/v1/messages',
               $claude);
        passes('chat data: URL with junk bytes', '/v1/chat/completions',
               $chat);
    }
}

# Gemini reads "mimeType" and "mime_type" alike: text if either says so,
# also when the text has a byte that is not UTF-8
for my $s ($SECRET, 'nothing to see here') {
    my $body = $J->encode(gem({ inlineData => { mimeType => 'image/png',
        mime_type => 'text/plain', data => b64("\xff$s") } }));
    if ($s eq $SECRET) {
        denied('gemini inlineData, a text type under the other name',
               $gemini, $body, 'aws-key');
    } else {
        passes('gemini inlineData, a text type under the other name',
               $gemini, $body);
    }
}

# Responses: a tool's output may be parts, a prompt's variables files; a
# text file there is decoded by the provider, so by the policy
for my $s ($SECRET, 'nothing to see here') {
    my $file = { type => 'input_file', filename => 'a.txt',
                 file_data => 'data:text/plain;base64,' . b64("key $s") };
    my $out = $J->encode({ model => 'gpt-4o', input => [
        { type => 'function_call', call_id => 'c', name => 'f',
          arguments => '{}' },
        { type => 'function_call_output', call_id => 'c',
          output => [$file] }] });
    my $var = $J->encode({ model => 'gpt-4o', input => 'hi',
        prompt => { id => 'pmpt_1', variables => { doc => $file } } });
    if ($s eq $SECRET) {
        denied('responses function_call_output file part', '/v1/responses',
               $out, 'aws-key');
        denied('responses prompt variable file', '/v1/responses', $var,
               'aws-key');
    } else {
        passes('responses function_call_output file part', '/v1/responses',
               $out);
        passes('responses prompt variable file', '/v1/responses', $var);
    }
}

# --- held: what the parser and the scan already decode ---

my $chat_raw = sub {
    my ($content) = @_;
    return '{"model":"gpt-4o","messages":[{"role":"user","content":'
        . $content . '}]}';
};

denied('unicode escapes of every letter', '/v1/chat/completions',
       $chat_raw->('"' . join('', map { sprintf '\\u%04x', ord }
                                   split //, $SECRET) . '"'), 'aws-key');
denied('a surrogate pair before the key', '/v1/chat/completions',
       $chat_raw->("\"\\ud83d\\ude00$SECRET\""), 'aws-key');

my $r = send_raw('/v1/chat/completions', $chat_raw->('"\\ud800AKIA"'));
is($r->{status}, 400, 'a lone surrogate: 400, not a text read otherwise');

# the provider's JSON parser keeps the last of two keys; ours refuses both
$r = send_raw('/v1/chat/completions',
              '{"model":"gpt-4o","messages":[{"role":"user","content":"'
              . $SECRET . '"}],"messages":[{"role":"user","content":"hi"}]}');
is($r->{status}, 400, 'duplicate "messages": 400');
$r = send_raw('/v1/chat/completions',
              '{"model":"gpt-4o","messages":[{"role":"user","content":"hi",'
              . '"c\\u006fntent":"' . $SECRET . '"}]}');
is($r->{status}, 400, 'duplicate key spelt with an escape: 400');
$r = send_raw('/v1/chat/completions',
              '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],'
              . '"mod\\u0065l":"gpt-4o-mini"}');
is($r->{status}, 400, 'duplicate "model" spelt with an escape: 400');

# an escaped document inside an escaped document inside arguments
{
    my $doc = $J->encode({ k => '\\u0041KIA' . substr($SECRET, 4) });
    $doc = $J->encode({ inner => $doc }) for 1 .. 2;
    denied('a document three times encoded in tool arguments',
           '/v1/chat/completions', $J->encode({ model => 'gpt-4o',
           messages => [{ role => 'assistant', content => undef,
           tool_calls => [{ id => 'c', type => 'function', function => {
           name => 'f', arguments => $doc } }] }] }), 'aws-key');
}

# keys of free-form objects are read; in every dialect's system text
denied('a schema property named by the secret', '/v1/chat/completions',
       $J->encode({ model => 'gpt-4o', messages => [{ role => 'user',
       content => 'hi' }], tools => [{ type => 'function', function => {
       name => 'f', parameters => { type => 'object', properties => {
       $SECRET => { type => 'string' } } } } }] }), 'aws-key');
denied('responses instructions', '/v1/responses', $J->encode({
       model => 'gpt-4o', instructions => "key $SECRET", input => 'hi' }),
       'aws-key');
denied('responses function_call_output', '/v1/responses', $J->encode({
       model => 'gpt-4o', input => [{ type => 'function_call_output',
       call_id => 'c', output => "[$CARD]" }] }), 'card');
denied('anthropic system blocks', '/v1/messages', $J->encode({
       %{ claude({ role => 'user', content => 'hi' }) },
       system => [{ type => 'text', text => $SECRET }] }), 'aws-key');
denied('gemini system_instruction, snake case', $gemini, $J->encode({
       %{ gem({ text => 'hi' }) },
       system_instruction => { parts => [{ text => $SECRET }] } }),
       'aws-key');
denied('gemini inline_data, snake case', $gemini, $J->encode(gem({
       inline_data => { mime_type => 'text/csv', data => b64($SECRET) } })),
       'aws-key');
denied('binary-labelled data that is text', '/v1/chat/completions',
       $J->encode({ model => 'gpt-4o', messages => [{ role => 'user',
       content => [{ type => 'image_url', image_url => {
       url => 'data:image/png;base64,' . b64("key: $SECRET") } }] }] }),
       'aws-key');

# many small strings: read in one linear pass, the secret after them
{
    my $parts = join ',', ('{"type":"text","text":"a"}') x 100_000;
    my $t0 = time;
    denied('the secret after 100,000 one-letter parts',
           '/v1/chat/completions',
           $chat_raw->("[$parts,{\"type\":\"text\",\"text\":\"$SECRET\"}]"),
           'aws-key');
    my $nums = join ',', (7) x 500_000;
    $r = send_raw('/v1/chat/completions', $J->encode({ model => 'gpt-4o',
        messages => [{ role => 'user', content => 'hi' }],
        tools => [{ type => 'function', function => { name => 'f',
        parameters => { type => 'object', default => 'x' } } }] })
        =~ s/"default":"x"/"default":[$nums,$CARD]/r);
    is($r->{status}, 403, '500,000 numbers of a schema, the card last: 403');
    my $took = time - $t0;
    SKIP: {
        skip 'no timing under a sanitizer or valgrind', 1
            if $ENV{ASAN_OPTIONS} || $ENV{TG_VALGRIND};
        cmp_ok($took, '<', 10, 'both inspected in seconds, not minutes');
    }
}

# --- reservations: what the provider may generate, reserved ---

sub cap_status {
    my ($name, $path, $body, $want) = @_;
    my $r = send_raw($path, $J->encode($body), 'capped' . ++$n);
    is($r->{status}, $want, $name);
}

my $hi = [{ role => 'user', content => 'hi' }];
cap_status('control: max_tokens 100 fits the 2000-token cap',
           '/cap/v1/chat/completions',
           { model => 'gpt-4o', messages => $hi, max_tokens => 100 }, 200);
cap_status('max_tokens 5000 beside max_completion_tokens 5: reserved 5000',
           '/cap/v1/chat/completions', { model => 'gpt-4o',
           messages => $hi, max_tokens => 5000,
           max_completion_tokens => 5 }, 429);
cap_status('best_of 40 of 100 tokens, n 1: reserved 40 completions',
           '/cap/v1/completions', { model => 'gpt-4o', prompt => 'hi',
           max_tokens => 100, n => 1, best_of => 40 }, 429);
cap_status('gemini maxOutputTokens 5 beside max_output_tokens 9000',
           '/cap/v1beta/models/gemini-2.0-flash:generateContent',
           { %{ gem({ text => 'hi' }) }, generationConfig => {
             maxOutputTokens => 5, max_output_tokens => 9000 } }, 429);

# input the provider keeps and the body only names (an earlier response,
# a conversation, a cache) is billed as input: a chain of requests of a
# few tokens each must not be reserved as a few tokens
my $resp = '/cap/v1/responses';
cap_status('control: a Responses call of 100 tokens fits',
           $resp, { model => 'gpt-4o', input => 'hi',
                    max_output_tokens => 100 }, 200);
cap_status('previous_response_id: the conversation kept is reserved',
           $resp, { model => 'gpt-4o', input => 'hi',
                    max_output_tokens => 100,
                    previous_response_id => 'resp_1' }, 429);
cap_status('conversation: the conversation kept is reserved',
           $resp, { model => 'gpt-4o', input => 'hi',
                    max_output_tokens => 100,
                    conversation => { id => 'conv_1' } }, 429);
cap_status('an input item by its id alone: the item kept is reserved',
           $resp, { model => 'gpt-4o', max_output_tokens => 100,
                    input => [{ id => 'msg_1' }] }, 429);
cap_status('a file by id: the file the provider reads is reserved',
           $resp, { model => 'gpt-4o', max_output_tokens => 100,
                    input => [{ role => 'user', content => [{
                      type => 'input_file', file_id => 'file-1' }] }] }, 429);
cap_status('gemini cachedContent: the cache is reserved',
           '/cap/v1beta/models/gemini-2.0-flash:generateContent',
           { %{ gem({ text => 'hi' }) }, cachedContent => 'cachedContents/c1',
             generationConfig => { maxOutputTokens => 100 } }, 429);
cap_status('tokenguard_stored_input_tokens 1000: 1000 + 100 fits',
           '/cap1k/v1/responses', { model => 'gpt-4o', input => 'hi',
           max_output_tokens => 100, previous_response_id => 'resp_1' }, 200);
cap_status('tokenguard_stored_input_tokens 1000: 1000 + 1000 does not',
           '/cap1k/v1/responses', { model => 'gpt-4o', input => 'hi',
           max_output_tokens => 1000, previous_response_id => 'resp_1' }, 429);
cap_status('control: 1000 output tokens fit without the stored input',
           '/cap1k/v1/responses', { model => 'gpt-4o', input => 'hi',
           max_output_tokens => 1000 }, 200);

# --- charges ---

sub charged_out {
    my ($user) = @_;
    my $key = "tg:{u:$user}:$month";
    $t->wait_settled($key);
    return $t->hash($key);
}

# a background call whose first answer is cut before it says so
{
    my $u = 'bg' . ++$n;
    my $r = $t->http10('POST', '/plain/v1/responses', { model => 'gpt-4o',
        input => 'hello there', background => $true,
        max_output_tokens => 3000 },
        { 'X-User' => $u, 'X-Stub-Truncate' => 12 });
    is($r->{status}, 200, 'background, cut: 200');
    is(length $r->{body}, 12, 'background, cut: 12 bytes relayed');
    my $h = charged_out($u);
    is($h->{tokens_out}, 3000, 'background, cut: charged the worst case'
       . ' output, not 12 bytes / 4');
    is($h->{reserved_usd} // 0, 0, 'background, cut: nothing left reserved');
}

# usage out of range is not believed: the estimate, never less than the
# prompt, never negative, never 10^300
for my $c (['negative', '{"prompt_tokens":-1000,"completion_tokens":-5}'],
           ['huge', '{"prompt_tokens":1e300,"completion_tokens":1e300}'],
           ['strings', '{"prompt_tokens":"0","completion_tokens":"0"}']) {
    my ($what, $usage) = @$c;
    my $u = 'fake' . ++$n;
    my $r = $t->post('/plain/v1/chat/completions', { model => 'gpt-4o',
        messages => [{ role => 'user', content => 'x' x 400 }],
        max_tokens => 50 },
        { 'X-User' => $u, 'X-Stub-Usage-Json' => $usage });
    is($r->{status}, 200, "$what usage: 200");
    my $h = charged_out($u);
    cmp_ok($h->{tokens_in}, '>=', 100, "$what usage: the prompt estimate"
           . " is charged ($h->{tokens_in})");
    cmp_ok($h->{tokens_out}, '>=', 0, "$what usage: output not negative");
    cmp_ok($h->{tokens_out}, '<', 1e6, "$what usage: output bounded");
    is($h->{estimated}, 1, "$what usage: counted as an estimate");
}

# a float count is the provider's: whole tokens of it
{
    my $u = 'float' . ++$n;
    $t->post('/plain/v1/chat/completions', { model => 'gpt-4o',
        messages => $hi, max_tokens => 50 },
        { 'X-User' => $u, 'X-Stub-Usage-Json' =>
          '{"prompt_tokens":12.9,"completion_tokens":3e1}' });
    my $h = charged_out($u);
    is($h->{tokens_in}, 12, 'float usage: 12.9 input is 12');
    is($h->{tokens_out}, 30, 'float usage: 3e1 output is 30');
}

$t->stop;
done_testing;
