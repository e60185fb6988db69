# Routing: tokenguard_route with every condition, captures, tags, first
# match wins; tokenguard_classify; the X-TokenGuard-* response headers.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

my $t = TG->new(server => q{
    location / {
        tokenguard on;
        tokenguard_user $http_x_user;
        tokenguard_sandbox $http_x_sandbox;
        tokenguard_sandbox_allowance 10usd month;
        tokenguard_route ^gpt-4o$ gpt-4o-mini "prompt~(?i)^\s*summari[sz]e" tag=summaries;
        tokenguard_route ^gpt-4o$ gpt-4o-mini prompt_tokens<10 !tools tag=short;
        tokenguard_route ^gpt-4o$ o3 prompt_tokens>1000 tag=long;
        tokenguard_route ^gpt-4o$ gpt-4.1 tools stream tag=agent-stream;
        tokenguard_route ^gpt-4o$ gpt-4.1-mini sandbox tag=sandbox;
        tokenguard_route ^gpt-4o$ never budget>=0% tag=budget;
        tokenguard_route ^claude-(opus|sonnet)-(.*)$ claude-haiku-$2 !sandbox tag=cheaper-claude;
        tokenguard_route ^any-(.*)$ $1;
        tokenguard_route ^keep$ keep tag=same;
        tokenguard_classify "(?i)\bsummari[sz]e\b" summary;
        tokenguard_classify "(?i)\btranslate\b" translation;
        proxy_pass http://stub;
    }
    location /quiet/ {
        tokenguard on;
        tokenguard_user alice;
        tokenguard_headers off;
        tokenguard_route ^a$ b;
        proxy_pass http://stub/;
    }
});
my %u = ('X-User' => 'alice');
my $true = JSON::PP::true;
my $long = 'word ' x 1000;

sub routed {
    my ($name, $body, $model, $tag, $headers) = @_;
    my $r = $t->post($body->{contents} ? $body->{path}
                     : $body->{max_tokens} ? '/v1/messages'
                     : '/v1/chat/completions',
                     { map { $_ eq 'path' ? () : ($_ => $body->{$_}) }
                       keys %$body }, { %u, %{ $headers || {} } });
    is($r->{status}, 200, "$name: 200");
    my $up = $t->upstream;
    is($up && $up->{json}{model}, $model, "$name: upstream model");
    is($r->{headers}{'x-tokenguard-model'}, $model, "$name: X-TokenGuard-Model");
    is($r->{headers}{'x-tokenguard-route'}, $tag, "$name: X-TokenGuard-Route");
    my $log = $t->last_log;
    is($log->{route}, $tag // '', "$name: \$tokenguard_route");
    is($log->{model}, $model, "$name: \$tokenguard_model");
    return $log;
}

sub msg { [{ role => 'user', content => $_[0] }] }

my $log = routed('prompt~', { model => 'gpt-4o',
       messages => msg('  Summarize the following report: ' . $long) },
       'gpt-4o-mini', 'summaries');
is($log->{model_requested}, 'gpt-4o', '$tokenguard_model_requested');
is($log->{category}, 'summary', 'classified as summary');

routed('prompt_tokens<', { model => 'gpt-4o', messages => msg('hi') },
       'gpt-4o-mini', 'short');
routed('prompt_tokens> (no rule in between)', { model => 'gpt-4o',
       messages => msg($long) }, 'o3', 'long');
routed('tools stream', { model => 'gpt-4o', stream => $true,
       tools => [{ type => 'function', function => { name => 'f' } }],
       messages => msg('call the tool, please, with care') }, 'gpt-4.1',
       'agent-stream');
routed('sandbox', { model => 'gpt-4o',
       messages => msg('an experiment of some length here') },
       'gpt-4.1-mini', 'sandbox', { 'X-Sandbox' => '1' });
routed('no condition holds: budget>= unknown never fires',
       { model => 'gpt-4o', messages => msg('a mid-sized question, no more') },
       'gpt-4o', undef);
routed('captures', { model => 'claude-opus-4-1', max_tokens => 10,
       messages => msg('x') }, 'claude-haiku-4-1', 'cheaper-claude');
routed('!sandbox', { model => 'claude-opus-4-1', max_tokens => 10,
       messages => msg('x') }, 'claude-opus-4-1', undef,
       { 'X-Sandbox' => 'on' });
routed('untagged rule is numbered', { model => 'any-gpt-4o-mini',
       messages => msg('x') }, 'gpt-4o-mini', '#8');
routed('a rule that keeps the model is no reroute', { model => 'keep',
       messages => msg('x') }, 'keep', undef);

$log = routed('unmatched model', { model => 'gpt-4o-mini',
       messages => msg('Please translate this') }, 'gpt-4o-mini', undef);
is($log->{category}, 'translation', 'second classify rule');

$log = routed('tools make it agentic', { model => 'gpt-4o-mini',
       tools => [{ type => 'function' }],
       messages => msg('summarize with a tool') }, 'gpt-4o-mini', undef);
is($log->{category}, 'agentic', 'agentic wins over classify');

$log = routed('default category', { model => 'gpt-4o-mini',
       messages => msg('hello') }, 'gpt-4o-mini', undef);
is($log->{category}, 'chat', 'chat by default');

my $r = $t->post('/quiet/v1/chat/completions', { model => 'a',
                 messages => msg('x') });
is($t->upstream->{json}{model}, 'b', 'headers off: still routed');
ok(!exists $r->{headers}{'x-tokenguard-model'}, 'headers off: no Model header');
ok(!exists $r->{headers}{'x-tokenguard-route'}, 'headers off: no Route header');

$t->stop;
done_testing;
