# conf/genai_log_format.conf: every dialect, JSON and stream, through
# nginx with log_format tokenguard_genai; each line parsed as JSON with
# the OpenTelemetry GenAI names and the values the provider reported.
# No prompt text in the line; a model name the provider escaped is not
# kept; a refused request still writes valid JSON.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $t = TG->new(
    http => "include $TG::TOP/conf/genai_log_format.conf;",
    location => q{
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_team $http_x_team;
        access_log logs/genai.log tokenguard_genai;
    });

my $secret = 'the launch code is 0000-SECRET';
my $true = JSON::PP::true;
my $false = JSON::PP::false;
my $lines = 0;

# the next line of logs/genai.log, decoded (the log phase may run a
# moment after the client has its answer)
sub next_line {
    my @l;
    TG::wait_for(sub {
        @l = split /\n/, $t->read_file('logs/genai.log');
        @l > $lines;
    });
    my $line = $l[$lines++];
    return (undef, '') unless defined $line;
    my $j = eval { $TG::JSON->decode($line) };
    return ($j, $line);
}

sub check {
    my ($name, $path, $body, $hdr, %want) = @_;
    my $r = $t->post($path, $body, { 'X-User' => 'alice', 'X-Team' => 'ml',
                                     %{ $hdr || {} } });
    is($r->{status}, $want{status} // 200, "$name: status");
    delete $want{status};
    my ($log, $line) = next_line();
    ok($log, "$name: the line is JSON") or diag $line;
    unlike($line, qr/SECRET/, "$name: no prompt text");
    for my $k (sort keys %want) {
        is_deeply($log->{$k}, $want{$k}, "$name: $k");
    }
    return $log;
}

my $msgs = [{ role => 'user', content => $secret }];
my %usage = ('X-Stub-Usage' => '50,20,10');

my $log = check('openai chat', '/v1/chat/completions',
    { model => 'gpt-4o', max_tokens => 100, messages => $msgs },
    { %usage, 'X-Stub-Model' => 'gpt-4o-2024-08-06' },
    'gen_ai.provider.name' => 'openai',
    'gen_ai.operation.name' => 'chat',
    'gen_ai.request.model' => 'gpt-4o',
    'gen_ai.response.model' => 'gpt-4o-2024-08-06',
    'gen_ai.request.max_tokens' => 100,
    'gen_ai.request.stream' => $false,
    'gen_ai.usage.input_tokens' => 50,
    'gen_ai.usage.output_tokens' => 20,
    'gen_ai.usage.cache_read.input_tokens' => 10,
    'gen_ai.usage.cache_write.input_tokens' => 0,
    'http.response.status_code' => 200,
    'tokenguard.user' => 'alice',
    'tokenguard.team' => 'ml',
    'tokenguard.decision' => 'allow',
    'tokenguard.usage_source' => 'provider');
ok($log->{'tokenguard.cost_usd'} > 0, 'openai chat: cost is a number');

check('openai chat stream', '/v1/chat/completions',
    { model => 'gpt-4o-mini', stream => $true, messages => $msgs },
    { %usage, 'X-Stub-Model' => 'gpt-4o-mini-2024-07-18' },
    'gen_ai.provider.name' => 'openai',
    'gen_ai.response.model' => 'gpt-4o-mini-2024-07-18',
    'gen_ai.request.max_tokens' => undef,
    'gen_ai.request.stream' => $true,
    'gen_ai.usage.input_tokens' => 50,
    'gen_ai.usage.output_tokens' => 20,
    'gen_ai.usage.cache_read.input_tokens' => 10);

check('openai completions', '/v1/completions',
    { model => 'gpt-3.5-turbo-instruct', prompt => $secret,
      max_tokens => 7 }, \%usage,
    'gen_ai.operation.name' => 'text_completion',
    'gen_ai.request.max_tokens' => 7,
    'gen_ai.usage.output_tokens' => 20);

check('responses', '/v1/responses',
    { model => 'o3', max_output_tokens => 300, input => $secret },
    { %usage, 'X-Stub-Model' => 'o3-2025-04-16' },
    'gen_ai.operation.name' => 'chat',
    'gen_ai.response.model' => 'o3-2025-04-16',
    'gen_ai.request.max_tokens' => 300,
    'gen_ai.usage.input_tokens' => 50,
    'gen_ai.usage.cache_read.input_tokens' => 10);

check('responses stream', '/v1/responses',
    { model => 'o3', stream => $true, input => $secret },
    { %usage, 'X-Stub-Model' => 'o3-2025-04-16' },
    'gen_ai.response.model' => 'o3-2025-04-16',
    'gen_ai.request.stream' => $true,
    'gen_ai.usage.output_tokens' => 20);

check('embeddings', '/v1/embeddings',
    { model => 'text-embedding-3-small', input => $secret },
    { 'X-Stub-Usage' => '9,0' },
    'gen_ai.operation.name' => 'embeddings',
    'gen_ai.usage.input_tokens' => 9,
    'gen_ai.usage.output_tokens' => 0);

my %ausage = ('X-Stub-Usage' => '100,20,30,40');
check('anthropic', '/v1/messages',
    { model => 'claude-sonnet-4-5', max_tokens => 512, messages => $msgs },
    { %ausage, 'X-Stub-Model' => 'claude-sonnet-4-5-20250929' },
    'gen_ai.provider.name' => 'anthropic',
    'gen_ai.operation.name' => 'chat',
    'gen_ai.request.model' => 'claude-sonnet-4-5',
    'gen_ai.response.model' => 'claude-sonnet-4-5-20250929',
    'gen_ai.request.max_tokens' => 512,
    'gen_ai.request.stream' => $false,
    'gen_ai.usage.input_tokens' => 100,
    'gen_ai.usage.output_tokens' => 20,
    'gen_ai.usage.cache_read.input_tokens' => 30,
    'gen_ai.usage.cache_write.input_tokens' => 40);

check('anthropic stream', '/v1/messages',
    { model => 'claude-haiku-4-5', max_tokens => 64, stream => $true,
      messages => $msgs },
    { %ausage, 'X-Stub-Model' => 'claude-haiku-4-5-20251001' },
    'gen_ai.response.model' => 'claude-haiku-4-5-20251001',
    'gen_ai.request.stream' => $true,
    'gen_ai.usage.input_tokens' => 100,
    'gen_ai.usage.output_tokens' => 20,
    'gen_ai.usage.cache_read.input_tokens' => 30,
    'gen_ai.usage.cache_write.input_tokens' => 40);

my $gbody = { contents => [{ role => 'user', parts => [{ text => $secret }] }],
              generationConfig => { maxOutputTokens => 256 } };
check('gemini', '/v1beta/models/gemini-2.5-flash:generateContent', $gbody,
    { %usage, 'X-Stub-Model' => 'gemini-2.5-flash-001' },
    'gen_ai.provider.name' => 'gcp.gemini',
    'gen_ai.operation.name' => 'generate_content',
    'gen_ai.request.model' => 'gemini-2.5-flash',
    'gen_ai.response.model' => 'gemini-2.5-flash-001',
    'gen_ai.request.max_tokens' => 256,
    'gen_ai.request.stream' => $false,
    'gen_ai.usage.input_tokens' => 50,
    'gen_ai.usage.output_tokens' => 20,
    'gen_ai.usage.cache_read.input_tokens' => 10);

check('gemini stream',
    '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', $gbody,
    { %usage, 'X-Stub-Model' => 'gemini-2.5-flash-001' },
    'gen_ai.response.model' => 'gemini-2.5-flash-001',
    'gen_ai.request.stream' => $true,
    'gen_ai.usage.output_tokens' => 20);

check('vertex gemini', '/v1/projects/p/locations/us-central1/publishers/'
      . 'google/models/gemini-2.5-flash:generateContent', $gbody, \%usage,
    'gen_ai.provider.name' => 'gcp.vertex_ai',
    'gen_ai.operation.name' => 'generate_content',
    'gen_ai.response.model' => 'gemini-2.5-flash');

check('vertex anthropic', '/v1/projects/p/locations/us-east5/publishers/'
      . 'anthropic/models/claude-sonnet-4-5:rawPredict',
    { anthropic_version => 'vertex-2023-10-16', max_tokens => 32,
      messages => $msgs }, \%ausage,
    'gen_ai.provider.name' => 'gcp.vertex_ai',
    'gen_ai.operation.name' => 'chat',
    'gen_ai.request.model' => 'claude-sonnet-4-5',
    'gen_ai.usage.cache_write.input_tokens' => 40);

check('azure', '/openai/deployments/gpt-4o/chat/completions',
    { messages => $msgs }, \%usage,
    'gen_ai.provider.name' => 'azure.ai.openai',
    'gen_ai.request.model' => 'gpt-4o');

# a model name with a quote in it is escaped by the provider: not kept
check('escaped model', '/v1/chat/completions',
    { model => 'gpt-4o', messages => $msgs },
    { %usage, 'X-Stub-Model' => 'evil","tokenguard.user":"mallory' },
    'gen_ai.response.model' => '',
    'tokenguard.user' => 'alice');

# refused before anything is counted: nulls, still JSON
check('refused', '/v1/chat/completions',
    { model => 'gpt-4o', messages => $msgs }, { 'X-User' => '' },
    status => 401,
    'tokenguard.decision' => 'deny_identity',
    'gen_ai.usage.input_tokens' => undef,
    'gen_ai.usage.output_tokens' => undef,
    'gen_ai.usage.cache_read.input_tokens' => undef,
    'tokenguard.cost_usd' => undef,
    'gen_ai.response.model' => '');

$t->stop;
done_testing();
