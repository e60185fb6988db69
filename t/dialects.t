# Each dialect's request is understood: model, stream, prompt estimate,
# tool use (category agentic), as seen through the $tokenguard_* variables.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

my $t = TG->new(location => q{
    tokenguard on;
    tokenguard_user $http_x_user;
    tokenguard_route ^(.*)-stream$ $1 stream tag=s;
});
my %u = ('X-User' => 'alice', 'X-Stub-Usage' => 'none');   # the estimate shows
my $true = JSON::PP::true;

sub check {
    my ($name, $path, $body, %want) = @_;
    my $r = $t->post($path, $body, \%u);
    is($r->{status}, 200, "$name: 200");
    my $log = $t->last_log;
    for my $k (sort keys %want) {
        is($log->{$k}, $want{$k}, "$name: $k");
    }
    return $r;
}

# "Summarise this text please" is 26 bytes = 7 tokens, plus 4 a message
check('openai chat', '/v1/chat/completions',
      { model => 'gpt-4o', messages => [{ role => 'user',
        content => 'Summarise this text please' }] },
      model_requested => 'gpt-4o', prompt_tokens => 11, category => 'chat');

check('openai chat tools', '/v1/chat/completions',
      { model => 'gpt-4o', tools => [{ type => 'function',
        function => { name => 'f' } }],
        messages => [{ role => 'user', content => 'hi' }] },
      category => 'agentic');

check('openai completions', '/v1/completions',
      { model => 'gpt-3.5-turbo-instruct', prompt => 'Say this is a test' },
      model_requested => 'gpt-3.5-turbo-instruct', prompt_tokens => 5);

check('openai responses', '/v1/responses',
      { model => 'o4-mini', instructions => 'Be terse',
        input => 'What is 2+2?' },
      model_requested => 'o4-mini', prompt_tokens => 6 + 4); # joined by \n

check('openai embeddings', '/v1/embeddings',
      { model => 'text-embedding-3-small', input => ['abcd', 'efgh'] },
      model_requested => 'text-embedding-3-small', prompt_tokens => 3);

check('anthropic messages', '/v1/messages',
      { model => 'claude-sonnet-4-5', max_tokens => 100,
        system => 'Be terse',
        messages => [{ role => 'user', content => [{ type => 'text',
                       text => 'Hello there' }] }] },
      model_requested => 'claude-sonnet-4-5', prompt_tokens => 2 + 3 + 4,
      category => 'chat');

check('anthropic tool_result', '/v1/messages',
      { model => 'claude-sonnet-4-5', max_tokens => 100,
        messages => [{ role => 'user', content => [{ type => 'tool_result',
                       tool_use_id => 't1', content => 'done' }] }] },
      category => 'agentic');

check('gemini', '/v1beta/models/gemini-2.0-flash:generateContent',
      { contents => [{ role => 'user', parts => [{ text => 'Hello there' }] }] },
      model_requested => 'gemini-2.0-flash', prompt_tokens => 3 + 4);

# the stream flag, proved by a route that needs "stream"
check('openai stream flag', '/v1/chat/completions',
      { model => 'x-stream', stream => $true, messages => [] },
      model => 'x', route => 's');
check('anthropic stream flag', '/v1/messages',
      { model => 'x-stream', stream => $true, max_tokens => 1,
        messages => [] }, model => 'x');
check('gemini stream flag from the URI',
      '/v1beta/models/x-stream:streamGenerateContent?alt=sse',
      { contents => [] }, model => 'x');
check('not streaming', '/v1/chat/completions',
      { model => 'x-stream', messages => [] }, model => 'x-stream',
      route => '');

# tokenguard_provider anthropic: /v1/chat/completions is Anthropic's
# OpenAI-compatible endpoint, inspected in the OpenAI dialect; another
# OpenAI path is no API of Anthropic's and refused
my $t2 = TG->new(location => q{
    tokenguard on;
    tokenguard_user alice;
    tokenguard_provider anthropic;
});
my $r = $t2->post('/v1/chat/completions', { model => 7 });
is($r->{status}, 400, 'forced anthropic: the compatible chat is inspected');
is($r->{json}{error}{code}, 'invalid_request', 'compatible chat: openai shape');
$r = $t2->post('/v1/embeddings', { model => 'x', input => 'y' });
is($r->{status}, 403, 'forced anthropic: openai embeddings refused');
is($r->{json}{error}{type}, 'permission_error', 'refused in anthropic shape');
$r = $t2->post('/v1/messages', { model => 7 });
is($r->{status}, 400, 'forced anthropic: messages inspected');
is($r->{json}{error}{type}, 'invalid_request_error', 'anthropic 400 shape');
$t2->stop;

$t->stop;
done_testing;
