# Real clients: the official openai and @anthropic-ai/sdk npm packages
# (pinned in t/clients/package.json) talk to nginx + tokenguard in front
# of the stub provider, streaming and not; what they get and the Redis
# counters are checked.
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use Test::More;
use TG;

my $dir = "$TG::TOP/t/clients";
plan skip_all => 'node or t/clients/node_modules missing: run make test'
    unless -d "$dir/node_modules" && `node --version 2>/dev/null`;

my $month = strftime('%Y-%m', gmtime);

my $t = TG->new(http => q{
    map $http_authorization $tg_key_user {
        "Bearer sk-alice" alice;
        "Bearer sk-ant-bob" bob;
    }
    map $http_x_api_key $tg_ant_user { sk-ant-bob bob; }
}, location => q{
    tokenguard on;
    tokenguard_user $tg_key_user$tg_ant_user;
    tokenguard_allow_models "^(gpt-4o|claude-haiku-4-5)$";
    proxy_set_header X-Stub-Usage "1000,20,100";
});

my %r;
for my $line (split /\n/, `node $dir/run.mjs http://127.0.0.1:$t->{port} 2>&1`) {
    my $v = eval { $TG::JSON->decode($line) } or do { diag $line; next };
    $r{$v->{name}} = $v;
}
ok(!$r{error}, 'the SDKs ran') or diag explain $r{error};

like($r{openai}{text}, qr/^Hello from the tokenguard stub/, 'openai: text');
is($r{openai}{usage}{prompt_tokens}, 1000, 'openai: usage as sent');
like($r{'openai-stream'}{text}, qr/^Hello from the tokenguard stub/,
     'openai stream: text');
is($r{'openai-stream'}{usage}{completion_tokens}, 20,
   'openai stream: the SDK sees the usage chunk tokenguard asked for');
like($r{anthropic}{text}, qr/^Hello from/, 'anthropic: text');
is($r{anthropic}{usage}{output_tokens}, 20, 'anthropic: usage');
like($r{'anthropic-stream'}{text}, qr/^Hello from/, 'anthropic stream: text');
is($r{'anthropic-stream'}{usage}{output_tokens}, 20,
   'anthropic stream: usage');
is($r{refused}{status}, 403, 'refusal: the SDK raises a 403');
is($r{refused}{code}, 'model_not_allowed', 'refusal: with our code');
like($r{refused}{message}, qr/not allowed through this gateway/,
     'refusal: and the message');

$t->wait_settled("tg:{u:alice}:$month");
$t->wait_settled("tg:{u:bob}:$month");
my $a = $t->hash("tg:{u:alice}:$month");
my $b = $t->hash("tg:{u:bob}:$month");
is($a->{requests}, 2, 'alice: 2 requests');
is($a->{tokens_in}, 2000, 'alice: tokens_in');
is($a->{tokens_out}, 40, 'alice: tokens_out');
# gpt-4o: 2 * (900 * 2.5 + 100 * 1.25 + 20 * 10)
is($a->{usd}, 2 * 2575, 'alice: cost');
is($a->{denied}, 1, 'alice: the refusal counted');
is($b->{requests}, 2, 'bob: 2 requests');
# claude-haiku-4-5: input_tokens 900 + 100 cache reads; 2 * (900 * 1 +
# 100 * 0.1 + 20 * 5)
is($b->{usd}, 2 * 1010, 'bob: cost');

$t->stop;
done_testing;
