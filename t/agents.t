# Real agent CLIs: Claude Code, Gemini CLI and Codex (the npm packages
# pinned in t/agents/package.json, unmodified) each run one
# non-interactive agent turn through nginx + tokenguard in front of the
# stub provider, with only a base URL and a key changed: the stub first
# asks for one of the CLI's own tools (X-Stub-Tool-Call), the CLI runs it
# and sends its result, the stub answers.  Each must finish with the
# stub's answer; every call it made must have a tokenguard decision and
# none a refusal; every generation call must be metered to the key's
# owner exactly as the stub reported it, and any other call the stub saw
# must be on the free list (model listing, token counting).
use strict;
use warnings;
use lib 't/lib';
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(time);
use TG;

my $bin = "$TG::TOP/t/agents/node_modules/.bin";
plan skip_all => 'node or t/agents/node_modules missing: run make test'
    unless `node --version 2>/dev/null`
           && !grep { !-x "$bin/$_" } qw(claude gemini codex);

my $month = strftime('%Y-%m', gmtime);
# each CLI run is bounded: no network here but loopback, and a CLI that
# waits on something it cannot reach must not stall the suite
my $timeout = 60;

# each CLI's HOME, made first: its tool reads a file in its working folder
my $homes = tempdir('tg-agents-XXXXXX', TMPDIR => 1,
                    CLEANUP => !$ENV{TG_KEEP});
my %file;
for my $cli (qw(claude gemini codex)) {
    make_path("$homes/$cli/work");
    $file{$cli} = "$homes/$cli/work/notes.txt";
    spew($file{$cli}, "tokenguard agents test: marker-$cli-4711\n");
}

# one owner per CLI, mapped from the key the CLI sends in its own header;
# one price for every model, so the cost is exact whatever model the CLI
# picks: 1 micro-dollar an input token, 2 an output token
my $t = TG->new(
    prices => { default => { input => 1, output => 2 }, models => {} },
    http => q{
    map $http_x_api_key $tg_ant_user { sk-ant-agents-ann ann; }
    map $http_x_goog_api_key $tg_gem_user { agents-gemini-gus gus; }
    map $http_authorization $tg_oai_user { "Bearer sk-agents-cody" cody; }
    log_format agents escape=json '{"decision":"$tokenguard_decision",'
        '"method":"$request_method","uri":"$uri","args":"$args",'
        '"status":"$status","user":"$tokenguard_user",'
        '"model":"$tokenguard_model",'
        '"prompt_tokens":"$tokenguard_prompt_tokens",'
        '"completion_tokens":"$tokenguard_completion_tokens",'
        '"cost_usd":"$tokenguard_cost_usd",'
        '"usage_source":"$tokenguard_usage_source"}';
}, server => q{
    # the gateway's own log of every call (a path relative to the prefix)
    access_log logs/agents.log agents;
    location /anthropic/ {
        tokenguard on;
        tokenguard_provider anthropic;
        tokenguard_user $tg_ant_user;
        proxy_set_header X-Stub-Tool-Call
                         'Read {"file_path":"%%CLAUDE_FILE%%"}';
        proxy_pass http://stub/;
    }
    location /gemini/ {
        tokenguard on;
        tokenguard_provider gemini;
        tokenguard_user $tg_gem_user;
        proxy_set_header X-Stub-Tool-Call
                         'read_file {"file_path":"%%GEMINI_FILE%%"}';
        proxy_pass http://stub/;
    }
    location /openai/ {
        tokenguard on;
        tokenguard_provider openai;
        tokenguard_user $tg_oai_user;
        # Codex's default model gets its tools in namespaces; a harmless
        # one (it reads no file: its shell would need a sandbox)
        proxy_set_header X-Stub-Tool-Call 'clock.sleep {"duration_ms":10}';
        proxy_pass http://stub/;
    }
} =~ s/%%(\w+)_FILE%%/$file{lc $1}/gr);
my $gw = "http://127.0.0.1:$t->{port}";

# generation calls, metered; and the free ones a CLI may make besides
my $generation = qr{/v1/messages$|:(?:stream)?generateContent$
                    |/v1/responses$|/v1/chat/completions$}xi;
my $free = qr{/v1(?:beta)?/models(?:/[^/:]+)?$|/v1/messages/count_tokens$
              |:countTokens$}x;

# the stub's usage (tools/stub-provider.pl): about four bytes of the body
# it received a token in, its canned 13-word answer out
my $ANSWER = qr/Hello from the tokenguard stub provider, a canned answer/;
sub stub_in { int((length($_[0]) + 3) / 4) || 1 }
my $STUB_OUT = 13;


# runs a CLI in a fresh HOME with only %env (and PATH) in its environment,
# stdin closed, under timeout; returns { rc, out, err, secs }
sub run_cli {
    my ($name, $home, $env, @cmd) = @_;
    make_path("$home/work");
    my ($out, $err) = ("$home/stdout", "$home/stderr");
    my $t0 = time;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        chdir "$home/work" or die "chdir: $!";
        %ENV = (PATH => '/usr/local/bin:/usr/bin:/bin', HOME => $home,
                TMPDIR => $home, LANG => 'C.UTF-8', %$env);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or die;
        open STDERR, '>', $err or die;
        { exec 'timeout', '-k', '5', $timeout, @cmd; }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my %r = (rc => $? >> 8, secs => sprintf('%.1f', time - $t0));
    $r{out} = slurp($out);
    $r{err} = slurp($err);
    diag "$name: timed out after $timeout s" if $r{rc} == 124;
    return \%r;
}


sub slurp {
    open my $f, '<', $_[0] or return '';
    local $/;
    return scalar <$f>;
}


sub spew {
    my ($file, $text) = @_;
    open my $f, '>', $file or die "$file: $!";
    print $f $text;
    close $f;
}


# the access log lines since the last call, decoded (the log phase may
# end a moment after the client has its answer)
my $logged = 0;

sub new_log_lines {
    my ($want) = @_;
    my @l;
    TG::wait_for(sub {
        @l = grep { length } split /\n/, $t->read_file('logs/agents.log');
        @l >= $logged + $want;
    }, 5);
    my @new = map { $TG::JSON->decode($_) } @l[$logged .. $#l];
    $logged = @l;
    return @new;
}


# what every CLI must show: its answer, the stub's record of its calls,
# a decision for each, none refused, the generation calls metered
sub check_cli {
    my ($name, $user, $r, $prompt, $result) = @_;
    is($r->{rc}, 0, "$name: exits 0 ($r->{secs} s)")
        or diag "stdout:\n$r->{out}\nstderr:\n" . substr($r->{err}, -4000);

    my @up = $t->upstream_all;
    ok(@up, "$name: the stub saw its calls");
    ok((grep { index($_->{body}, $prompt) >= 0 } @up),
       "$name: the prompt reached the provider");
    my @gen = grep { (split /\?/, $_->{uri})[0] =~ $generation } @up;
    my @other = grep { (split /\?/, $_->{uri})[0] !~ $generation } @up;
    cmp_ok(scalar @gen, '>=', 2,
           "$name: generation calls for the tool call and the answer");
    ok((grep { $_->{body} =~ $result } @gen),
       "$name: ran the tool and sent its result through the gateway");
    note "$name called: $_->{method} $_->{uri}" for @up;
    my @unmetered = grep { (split /\?/, $_->{uri})[0] !~ $free } @other;
    ok(!@unmetered, "$name: nothing but generation and free calls")
        or diag join "\n", map { "$_->{method} $_->{uri}" } @unmetered;

    my @log = new_log_lines(scalar @up);
    my @refused = grep { $_->{decision} =~ /^deny|^store_error$/
                         || $_->{status} >= 400 } @log;
    ok(!@refused, "$name: no call refused")
        or diag explain \@refused;
    ok(!(grep { $_->{decision} eq '' } @log),
       "$name: every call has a tokenguard decision")
        or diag explain \@log;
    my @allow = grep { $_->{decision} eq 'allow' } @log;
    is(scalar @allow, scalar @gen,
       "$name: every generation call admitted and logged");
    ok(!(grep { $_->{usage_source} ne 'provider' || $_->{user} ne $user }
         @allow), "$name: each metered to $user from the provider's usage")
        or diag explain \@allow;

    # exactly what the stub reported, once each
    my $in = 0;
    $in += stub_in($_->{body}) for @gen;
    my $out = $STUB_OUT * @gen;
    my ($lin, $lout, $lusd) = (0, 0, 0);
    for (@allow) {
        $lin += $_->{prompt_tokens};
        $lout += $_->{completion_tokens};
        $lusd += $_->{cost_usd} * 1e6;
    }
    is($lin, $in, "$name: logged input tokens as the stub reported");
    is($lout, $out, "$name: logged output tokens as the stub reported");

    ok($t->wait_settled("tg:{u:$user}:$month"), "$name: settled");
    my $h = $t->hash("tg:{u:$user}:$month");
    is($h->{requests}, scalar @gen, "$name: requests in Redis");
    is($h->{tokens_in}, $in, "$name: tokens_in in Redis");
    is($h->{tokens_out}, $out, "$name: tokens_out in Redis");
    is($h->{usd}, $in + 2 * $out, "$name: cost in Redis");
    is(sprintf('%.0f', $lusd), $h->{usd}, "$name: the log's cost is Redis'");
    ok(!$h->{estimated}, "$name: nothing estimated");
    return ($in, $out);
}


# ---- Claude Code: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY
{
    my $home = "$homes/claude";
    my $prompt = 'Read notes.txt and say hello to the tokenguard agents test';
    $t->clear_upstream;
    my $r = run_cli('claude', $home, {
        ANTHROPIC_BASE_URL => "$gw/anthropic",
        ANTHROPIC_API_KEY => 'sk-ant-agents-ann',
        # no update checks, telemetry or error reports to unreachable hosts
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC => 1,
        DISABLE_AUTOUPDATER => 1,
    }, "$bin/claude", '-p', $prompt, '--output-format', 'json');
    my $j = eval { $TG::JSON->decode($r->{out}) } || {};
    like($j->{result} // '', qr/^$ANSWER/, 'claude: prints the answer');
    ok(!$j->{is_error}, 'claude: no error');
    my ($in, $out) = check_cli('claude', 'ann', $r, $prompt,
                               qr/^(?=.*"tool_result").*marker-claude-4711/s);
    my $u = $j->{usage} || {};
    is(($u->{input_tokens} // 0) + ($u->{cache_read_input_tokens} // 0)
       + ($u->{cache_creation_input_tokens} // 0), $in,
       'claude: the usage it saw is the one metered (input)');
    is($u->{output_tokens}, $out,
       'claude: the usage it saw is the one metered (output)');
}

# ---- Gemini CLI: GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY, the API key
# auth chosen in its settings, the workspace trusted
{
    my $home = "$homes/gemini";
    my $prompt = 'Read notes.txt and say hello to the tokenguard agents test';
    make_path("$home/.gemini");
    spew("$home/.gemini/settings.json", $TG::JSON->encode({
        security => { auth => { selectedType => 'gemini-api-key' } },
        general => { enableAutoUpdate => JSON::PP::false,
                     enableAutoUpdateNotification => JSON::PP::false },
        privacy => { usageStatisticsEnabled => JSON::PP::false },
        telemetry => { enabled => JSON::PP::false } }));
    $t->clear_upstream;
    my $r = run_cli('gemini', $home, {
        GOOGLE_GEMINI_BASE_URL => "$gw/gemini",
        GEMINI_API_KEY => 'agents-gemini-gus',
        GEMINI_CLI_TRUST_WORKSPACE => 'true',
    }, "$bin/gemini", '-p', $prompt, '-o', 'json');
    my $j = eval { $TG::JSON->decode($r->{out}) } || {};
    like($j->{response} // '', qr/^$ANSWER/, 'gemini: prints the answer');
    my ($in, $out) = check_cli('gemini', 'gus', $r, $prompt,
        qr/^(?=.*"functionResponse").*marker-gemini-4711/s);
    my ($sin, $sout) = (0, 0);
    for my $m (values %{ $j->{stats}{models} || {} }) {
        $sin += $m->{tokens}{prompt} // 0;
        $sout += ($m->{tokens}{candidates} // 0)
                 + ($m->{tokens}{thoughts} // 0);
    }
    is($sin, $in, 'gemini: the usage it saw is the one metered (input)');
    is($sout, $out, 'gemini: the usage it saw is the one metered (output)');
}

# ---- Codex: a model provider of its own in $CODEX_HOME/config.toml, the
# key in the environment variable the provider names
{
    my $home = "$homes/codex";
    my $prompt = 'Wait a moment and say hello to the tokenguard agents test';
    make_path("$home/.codex");
    spew("$home/.codex/config.toml", <<"END");
model_provider = "tokenguard"

[model_providers.tokenguard]
name = "tokenguard gateway"
base_url = "$gw/openai/v1"
env_key = "TOKENGUARD_API_KEY"
wire_api = "responses"
END
    $t->clear_upstream;
    my $r = run_cli('codex', $home, {
        CODEX_HOME => "$home/.codex",
        TOKENGUARD_API_KEY => 'sk-agents-cody',
    }, "$bin/codex", 'exec', '--skip-git-repo-check', $prompt);
    # exec prints the last answer alone on stdout, the session on stderr
    like($r->{out}, qr/^$ANSWER/, 'codex: prints the answer');
    my ($in, $out) = check_cli('codex', 'cody', $r, $prompt,
                               qr/^(?=.*"function_call_output").*"call_stub"/s);
    my ($used) = $r->{err} =~ /tokens used\s+([\d,]+)/;
    $used =~ tr/,//d if defined $used;
    is($used, $in + $out, 'codex: the usage it saw is the one metered');
}

$t->stop;
done_testing;
