# The shadow-AI recipe, conf/shadow_ai_stream.conf as shipped (only its
# addresses and paths changed for the test), in Debian's nginx stream
# module: an approved provider's TLS connection is proxied, an AI
# provider that is not approved is refused and logged with its name, a
# host that is no AI provider passes unlogged, a connection without a
# server name is refused.  A local openssl s_server, with a certificate
# made here, plays every destination.
use strict;
use warnings;
use lib 't/lib';
use File::Copy qw(copy);
use Test::More;
use Time::HiRes qw(sleep);
use TG;

my $stream = $ENV{TG_STREAM_MODULE}
             || '/usr/lib/nginx/modules/ngx_stream_module.so';
plan skip_all => "$stream missing (make test-deps installs"
                 . " libnginx-mod-stream)" unless -f $stream;
# Debian's module loads only into Debian's nginx
plan skip_all => "the stream module is built for /usr/sbin/nginx, not"
                 . " $TG::NGINX" unless $TG::NGINX eq '/usr/sbin/nginx';
plan skip_all => 'openssl missing' unless `command -v openssl 2>/dev/null`;

my $t = TG->new(no_start => 1, no_redis => 1,
                main => "load_module $stream;\ninclude shadow_ai_stream.conf;",
                location => 'return 204;');
my $d = $t->{dir};
my $port = TG::free_port();
my $tls_port = TG::free_port();

# the shipped recipe; each change must find its text, or the test would
# not be testing what ships
my $conf = TG::slurp("$TG::TOP/conf/shadow_ai_stream.conf");
for my $s ([qr/listen 443;/, "listen 127.0.0.1:$port;"],
           [qr{unix:/run/nginx-shadow-ai\.sock}, "unix:$d/shadow-ai.sock"],
           [qr/\$ssl_preread_server_name:443/, "127.0.0.1:$tls_port"],
           [qr{/var/log/nginx/shadow-ai\.log}, "$d/logs/shadow-ai.log"])
{
    ok($conf =~ s/$s->[0]/$s->[1]/g, "recipe: $s->[0] found");
}
open my $f, '>', "$d/shadow_ai_stream.conf" or die $!;
print $f $conf;
close $f;
copy("$TG::TOP/conf/$_", "$d/$_") or die "$_: $!"
    for qw(ai_providers.map ai_approved.map);

# a TLS server with a certificate of the day
system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $d/key.pem"
       . " -out $d/cert.pem -days 1 -subj /CN=tokenguard-test -batch"
       . " >$d/logs/openssl-req.log 2>&1") == 0
    or die 'openssl req failed';
my $srv = fork // die "fork: $!";
if ($srv == 0) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', "$d/logs/s_server.log";
    open STDERR, '>&', \*STDOUT;
    exec 'openssl', 's_server', '-accept', "127.0.0.1:$tls_port",
         '-cert', "$d/cert.pem", '-key', "$d/key.pem", '-www';
    die "exec openssl: $!";
}
TG::wait_port($tls_port, 'openssl s_server');

my ($rc, $out) = $t->nginx_test;
is($rc, 0, 'nginx -t accepts the recipe') or diag $out;
$t->start_nginx;
TG::wait_port($port, 'the stream server');

# a TLS client asking for NAME (undef: no SNI); returns what it read
sub tls {
    my ($name) = @_;
    my @sni = defined $name ? ('-servername', $name) : ('-noservername');
    my $cmd = join ' ', 'printf "GET / HTTP/1.0\r\n\r\n" | timeout 20',
        'openssl s_client -quiet -connect', "127.0.0.1:$port", @sni,
        '2>&1';
    return scalar `$cmd`;
}

my @log;
sub log_lines {
    my ($n) = @_;
    TG::wait_for(sub {
        @log = map { $TG::JSON->decode($_) }
               split /\n/, $t->read_file('logs/shadow-ai.log');
        @log >= $n;
    });
    return @log;
}

# wait_port's connection sent nothing: no server name, refused, logged
log_lines(1);
is_deeply([map { $log[0]{$_} } qw(server_name ai_provider verdict)],
          ['', 'no_sni', 'refuse'], 'a connection that is not TLS: refused,'
          . ' logged');
my $lines = 1;
sub check {
    my ($name, $verdict, $provider) = @_;
    my $shown = $name // '(no SNI)';
    my $got = tls($name);
    if ($verdict eq 'refuse') {
        unlike($got, qr{HTTP/1\.0 200}, "$shown: refused");
    } else {
        like($got, qr{HTTP/1\.0 200}, "$shown: proxied");
    }
    return if $verdict eq 'pass';
    $lines++;
    log_lines($lines);
    my $l = $log[$lines - 1] || {};
    is($l->{server_name}, $name // '', "$shown: logged with its name");
    is($l->{ai_provider}, $provider, "$shown: logged as $provider");
    is($l->{verdict}, $verdict, "$shown: logged $verdict");
}

check('api.openai.com', 'approved', 'openai');
check('API.Anthropic.COM', 'approved', 'anthropic');
check('api.deepseek.com', 'refuse', 'deepseek');
check('my-resource.openai.azure.com', 'refuse', 'azure.ai.openai');
check('bedrock-runtime.eu-west-1.amazonaws.com', 'refuse', 'aws.bedrock');
check('us-central1-aiplatform.googleapis.com', 'refuse', 'gcp.vertex_ai');
check('generativelanguage.googleapis.com', 'refuse', 'gcp.gemini');
check('api.x.ai', 'refuse', 'x_ai');
check(undef, 'refuse', 'no_sni');

# not AI providers: pass, and nothing about them is logged
check('www.example.com', 'pass');
check('api.openai.com.example.net', 'pass');
check('bedrock.example.com', 'pass');
is(scalar(log_lines($lines)), $lines, 'hosts that are no AI provider are'
   . ' not logged');

# every provider named in the list is refused unless approved
my %ids = map { $_ => 1 } TG::slurp("$TG::TOP/conf/ai_providers.map")
                          =~ /^\s*(?:~\*\S+\s*|\S+\s+)([a-z0-9_.]+);/mg;
ok(scalar(keys %ids) >= 20, scalar(keys %ids) . ' providers in the list');
for my $want (qw(openai anthropic gcp.gemini gcp.vertex_ai azure.ai.openai
                 mistral_ai cohere deepseek groq together perplexity x_ai
                 openrouter fireworks huggingface replicate aws.bedrock))
{
    ok($ids{$want}, "the list names $want");
}

# a refusal reads the client's hello before it closes: no reset logged
unlike($t->error_log, qr/\[error\]/, 'refusals close cleanly: no [error]'
       . ' in the error log');

kill 'TERM', $srv;
waitpid $srv, 0;
$t->stop;
done_testing();
