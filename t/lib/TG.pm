package TG;

# Test harness: a real nginx with the tokenguard module and a per-test
# config on free loopback ports, plus the stub provider recording exactly
# what it received.  Core Perl only (Test::More, HTTP::Tiny, JSON::PP).
#
#   my $t = TG->new(location => 'tokenguard on; tokenguard_user $http_x_user;');
#   my $r = $t->post('/v1/chat/completions', {model => 'gpt-4o', ...},
#                    {'X-User' => 'alice'});
#   my $up = $t->upstream;        # what the provider got: method uri headers body
#   $t->stop;                     # a test: no [alert] or worse in error.log
#
# Fault tests add: stop_redis('KILL'), redis_args => [...], wait_for(),
# parallel_start()/parallel_wait(), concurrent() (hundreds at once without
# a process each), http10() (a raw request that may stop reading early),
# master_pid(), worker_pids(), reload().

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

our $TOP = abs_path(dirname(__FILE__) . '/../..');
our $NGINX = $ENV{TG_NGINX_BIN}
    || (-x "$TOP/build/nginx-bin" ? "$TOP/build/nginx-bin" : '/usr/sbin/nginx');
# an ASan nginx loads only an ASan module: make test-asan sets both
our $MODULE = $ENV{TG_MODULE} || "$TOP/build/ngx_http_tokenguard_module.so";
our $JSON = JSON::PP->new->canonical->allow_nonref;
# lines of AddressSanitizer, LeakSanitizer and UBSan reports
our $SANITIZER = qr/ERROR: AddressSanitizer|runtime error:|LeakSanitizer/;


# a port nothing listens on now, and one this test has not been given
# before: the kernel may hand out a closed port again, and a port a test
# keeps across instances (a provider of its own) would then be taken by a
# later instance's redis or stub, failing nginx's bind.  Ports come from
# below the kernel's ephemeral range: a port from that range can be taken
# by any outgoing connection (a cluster node's gossip, a test's client)
# between now and the bind.
my %given;

sub ephemeral_low {
    open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range'
        or return 32768;
    my ($low) = split ' ', scalar <$fh>;
    return $low && $low > 13000 ? $low : 32768;
}

sub free_port {
    my $low = ephemeral_low();
    for (1 .. 1000) {
        my $port = 12000 + int rand($low - 12000);
        next if $given{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Listen => 1,
                                      ReuseAddr => 1)
            or next;
        close $s;
        $given{$port} = 1;
        return $port;
    }
    die "no free port that this test was not given already\n";
}


sub wait_port {
    my ($port, $what) = @_;
    # nginx under valgrind takes seconds to read its config on a busy box
    for (1 .. ($ENV{TG_VALGRIND} ? 1500 : 300)) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port);
        if ($s) { close $s; return 1; }
        sleep 0.02;
    }
    die "$what did not start listening on port $port\n";
}


# options: location (directives for "location /", before proxy_pass),
# server (replaces the whole server block body), http (extra http-level
# directives), main (extra main-level directives), jit => 0 (pcre_jit
# off), error_log_level (info by default)
sub new {
    my ($class, %opt) = @_;
    my $self = bless { %opt }, $class;

    $self->{dir} = tempdir('tg-test-XXXXXX', TMPDIR => 1,
                           CLEANUP => !$ENV{TG_KEEP});
    chmod 0755, $self->{dir};
    make_path("$self->{dir}/upstream", "$self->{dir}/logs");
    $self->{port} = free_port();
    $self->{upstream_port} = free_port();

    # each redis reply takes some milliseconds through the TG_TINY proxy
    $self->{redis_timeout} //= '3s' if $ENV{TG_TINY};
    # under valgrind one process parses every body 20-50 times slower, and
    # a reply waits behind the bodies that arrived with it (body_memory.t
    # sends eight 3.8 MB bodies at once)
    $self->{redis_timeout} //= '10s' if $ENV{TG_VALGRIND};
    $self->start_stub;
    # redis_port => N shares another test instance's redis; cluster => 1
    # starts a Redis Cluster of three masters and three replicas instead
    if ($opt{cluster}) {
        $self->start_cluster;
    } else {
        $self->start_redis unless $opt{no_redis} || $opt{redis_port};
    }
    $self->start_redis_proxy if $ENV{TG_TINY} && $self->{redis_port};
    $self->{redis_timeout} //= '1s';
    $self->write_prices;
    $self->write_conf;
    $self->start_nginx unless $opt{no_start} || $opt{no_redis_directive};

    return $self;
}


sub conf_text {
    my ($self) = @_;
    my $d = $self->{dir};
    my $server = $self->{server} // qq{
        location / {
            $self->{location}
            proxy_pass http://stub;
        }
    };
    $server =~ s/%%UPSTREAM%%/127.0.0.1:$self->{upstream_port}/g;
    my $http = $self->{http} // '';
    $http =~ s/%%UPSTREAM%%/127.0.0.1:$self->{upstream_port}/g;
    my $ledger = ($self->{http} // '') =~ /tokenguard_prices/ ? ''
                 : "tokenguard_prices $self->{dir}/prices.json;\n";
    my $redis = $self->{redis_proxy_port} // $self->{redis_port};
    # redis_tls: nginx reaches redis over TLS only (the plain port is the
    # harness's); redis_params adds to the directive (user=, password=),
    # redis_ssl replaces the tokenguard_redis_ssl_* lines
    my $params = $self->{redis_params} // '';
    if ($self->{redis_tls}) {
        $redis = $self->{redis_tls_port};
        $params = "tls $params";
        my $ssl = $self->{redis_ssl}
                  // "tokenguard_redis_ssl_trusted_certificate %%TLS%%/ca.crt;\n";
        $ssl =~ s/%%TLS%%/$self->{dir}\/tls/g;
        $ledger .= $ssl;
    }
    my $addrs = $self->{cluster}
        ? join(' ', map { "127.0.0.1:" . ($self->{cluster_tls}{$_} // $_) }
                    @{ $self->{cluster_ports} }[0, 1])
          . ' cluster'
        : "127.0.0.1:" . ($redis // '');
    $ledger .= "    tokenguard_redis $addrs $params"
               . " timeout=$self->{redis_timeout};\n"
        if $self->{redis_port} && !$self->{no_redis_directive};
    # budget leases are the shipped default (flush=1s idle=3s); lease => 0
    # or TG_LEASE=0: the per-request ledger; lease => 1 or TG_LEASE=1:
    # leases that flush every 200 ms
    my $lease = $self->{lease} // $ENV{TG_LEASE} // '';
    $ledger .= $lease ? "    tokenguard_lease on flush=200ms idle=500ms;\n"
                      : "    tokenguard_lease off;\n"
        if $lease ne '' && $self->{redis_port}
           && ($self->{http} // '') !~ /tokenguard_lease/;
    my $main = $self->{main} // '';
    my $tiny = $ENV{TG_TINY} ? $self->tiny_conf : '';
    my $user = $> == 0 ? 'user root;' : '';
    my $workers = $self->{workers} // 1;
    my $mp = $ENV{TG_VALGRIND} ? "master_process off;\ndaemon off;" : '';
    # valgrind cannot follow JIT-compiled code; jit => 0 turns it off too
    my $jit = $ENV{TG_VALGRIND} || (defined $self->{jit} && !$self->{jit})
              ? 'pcre_jit off;' : 'pcre_jit on;';
    my $level = $self->{error_log_level} // 'info';

    return <<"END";
load_module $MODULE;
$user
$mp
worker_processes $workers;
error_log $d/logs/error.log $level;
pid $d/logs/nginx.pid;
$jit
$main
events { worker_connections 1024; }
http {
    log_format tg escape=json '{"user":"\$tokenguard_user","team":"\$tokenguard_team",'
        '"model_requested":"\$tokenguard_model_requested","model":"\$tokenguard_model",'
        '"route":"\$tokenguard_route","category":"\$tokenguard_category",'
        '"sandbox":"\$tokenguard_sandbox","decision":"\$tokenguard_decision",'
        '"prompt_tokens":"\$tokenguard_prompt_tokens",'
        '"completion_tokens":"\$tokenguard_completion_tokens",'
        '"cost_usd":"\$tokenguard_cost_usd","status":"\$status",'
        '"uri":"\$uri","content_length":"\$content_length",'
        '"usage_source":"\$tokenguard_usage_source",'
        '"test_id":"\$http_x_tg_test_id"}';
    access_log $d/logs/access.log tg;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    client_max_body_size 16m;
    upstream stub { server 127.0.0.1:$self->{upstream_port}; }
    $tiny
    $ledger
    $http
    server {
        listen 127.0.0.1:$self->{port};
        $server
    }
}
END
}


# TG_TINY=1 (make test-tiny): buffers so small that request headers and
# bodies, and responses from the provider, arrive in many short reads and
# spill to temp files.  A test that sets a size of its own keeps it.
sub tiny_conf {
    my ($self) = @_;
    my $own = join ' ', map { $self->{$_} // '' }
                        qw(main http server location);
    my @conf = (
        client_header_buffer_size => '64',
        client_body_buffer_size => '128',
        proxy_buffer_size => '256',
        proxy_buffers => '8 128',
    );
    # at least proxy_buffer_size, less than all proxy_buffers but one
    push @conf, proxy_busy_buffers_size => '256'
        unless $own =~ /proxy_buffers?(_size)?\s/;
    my $conf = '';
    while (my ($name, $value) = splice @conf, 0, 2) {
        $conf .= "$name $value;\n    "
            unless ($self->{http} // '') =~ /\b$name\s/;
    }
    return $conf;
}


sub write_conf {
    my ($self) = @_;
    open my $f, '>', "$self->{dir}/nginx.conf" or die $!;
    print $f $self->conf_text;
    close $f;
}


# the shipped price table plus a default, so made-up model names have a
# price; prices => {...} replaces the whole table
sub write_prices {
    my ($self) = @_;
    my $p = $self->{prices};
    if (!$p) {
        open my $f, '<', "$TOP/conf/prices.json" or die $!;
        local $/;
        $p = $JSON->decode(scalar <$f>);
        $p->{default} = { input => 1, output => 2 };
    }
    open my $f, '>', "$self->{dir}/prices.json" or die $!;
    print $f $JSON->encode($p);
    close $f;
}


# the test's own CA, a second CA nobody trusts, a server certificate for
# redis.test and 127.0.0.1, a client certificate: made with the openssl
# CLI in DIR/tls
sub make_certs {
    my ($self) = @_;
    my $d = "$self->{dir}/tls";
    return $d if -f "$d/client.crt";
    make_path($d);
    # its progress dots go to a file, not into the test's output
    my $openssl = sub {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            open STDERR, '>>', "$d/openssl.log";
            open STDOUT, '>&', \*STDERR;
            { exec 'openssl', @_; }
            POSIX::_exit(127);
        }
        waitpid $pid, 0;
        return $?;
    };
    for my $ca (qw(ca other-ca)) {
        $openssl->('req', '-x509', '-newkey', 'rsa:2048', '-nodes',
               '-days', '2', '-subj', "/CN=tokenguard test $ca",
               '-keyout', "$d/$ca.key", '-out', "$d/$ca.crt") == 0
            or die "openssl req ($ca) failed\n";
    }
    open my $ext, '>', "$d/server.ext" or die;
    print $ext "subjectAltName=DNS:redis.test,IP:127.0.0.1\n";
    close $ext;
    open $ext, '>', "$d/client.ext" or die;
    print $ext "extendedKeyUsage=clientAuth\n";
    close $ext;
    for my $who (qw(server client)) {
        $openssl->('req', '-newkey', 'rsa:2048', '-nodes',
               '-subj', "/CN=$who.tokenguard.test",
               '-keyout', "$d/$who.key", '-out', "$d/$who.csr") == 0
            and $openssl->('x509', '-req', '-in', "$d/$who.csr",
                       '-CA', "$d/ca.crt", '-CAkey', "$d/ca.key",
                       '-CAcreateserial', '-days', '2',
                       '-extfile', "$d/$who.ext", '-out', "$d/$who.crt") == 0
            or die "openssl ($who certificate) failed\n";
    }
    # a self-signed one, for verify off
    $openssl->('req', '-x509', '-newkey', 'rsa:2048', '-nodes',
           '-days', '2', '-subj', '/CN=self-signed',
           '-keyout', "$d/self.key", '-out', "$d/self.crt") == 0
        or die "openssl req (self) failed\n";
    chmod 0644, glob("$d/*");
    return $d;
}


# the redis-server arguments of redis_tls => 1 or { auth_clients => 'yes',
# cert => 'self' }: a TLS port beside the harness's plain one
sub redis_tls_args {
    my ($self) = @_;
    my $o = ref $self->{redis_tls} ? $self->{redis_tls} : {};
    my $d = $self->make_certs;
    my $cert = $o->{cert} // 'server';
    $self->{redis_tls_port} //= free_port();
    return ('--tls-port', $self->{redis_tls_port},
            '--tls-cert-file', "$d/$cert.crt",
            '--tls-key-file', "$d/$cert.key",
            '--tls-ca-cert-file', "$d/ca.crt",
            '--tls-auth-clients', $o->{auth_clients} // 'no');
}


# a real redis-server of this test's own, on a free port; redis_args =>
# [...] adds to its command line (later arguments win); redis_users =>
# ['NAME RULE ...'] adds ACL users; redis_tls => 1 a TLS port
sub start_redis {
    my ($self) = @_;
    $self->{redis_port} //= free_port();
    $self->{redis_timeout} //= '1s';
    my @tls = $self->{redis_tls} ? $self->redis_tls_args : ();
    my @users = map { ('--user', split ' ', $_) }
                @{ $self->{redis_users} || [] };
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        exec 'redis-server', '--bind', '127.0.0.1',
             '--port', $self->{redis_port}, '--save', '', '--appendonly', 'no',
             '--dir', $self->{dir},
             ($self->{redis_password}
              ? ('--requirepass', $self->{redis_password}) : ()),
             @tls, @users, @{ $self->{redis_args} || [] };
        die "exec redis-server: $!";
    }
    $self->{redis_pid} = $pid;
    wait_port($self->{redis_port}, 'redis-server');
    wait_port($self->{redis_tls_port}, 'redis-server (TLS)')
        if $self->{redis_tls};
}


# a Redis Cluster on loopback: six redis-server --cluster-enabled yes,
# "redis-cli --cluster create" with one replica each, ready once every
# node says cluster_state:ok and agrees on the slots.  redis_port is the
# first master (redis() follows MOVED and ASK from there).
sub start_cluster {
    my ($self) = @_;
    # each node's cluster bus gets a port of its own (cluster-port): the
    # default, port + 10000 (of the TLS port with tls-cluster), could land
    # in the ephemeral range or on a port given to nginx or a stub
    my @ports = map { free_port() } 1 .. 6;
    my %bus = map { $_ => free_port() } @ports;
    $self->{cluster_ports} = \@ports;
    $self->{redis_timeout} //= '1s';
    for my $port (@ports) {
        my $dir = "$self->{dir}/redis-$port";
        make_path($dir);
        my @tls = $self->{redis_tls} ? $self->cluster_tls_args($port) : ();
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            open STDOUT, '>', "$dir/log";
            exec 'redis-server', '--bind', '127.0.0.1', '--port', $port,
                 '--save', '', '--appendonly', 'no', '--dir', $dir,
                 '--cluster-enabled', 'yes',
                 '--cluster-config-file', "$dir/nodes.conf",
                 '--cluster-port', $bus{$port},
                 '--cluster-node-timeout', '2000',
                 @tls, @{ $self->{redis_args} || [] };
            die "exec redis-server: $!";
        }
        $self->{cluster_pids}{$port} = $pid;
        wait_port($port, 'redis-server');
        wait_port($self->{cluster_tls}{$port}, 'redis-server (TLS)')
            if $self->{redis_tls};
    }
    # over TLS the cluster is made through the TLS ports, as on a managed
    # Redis; the nodes then gossip over TLS (tls-cluster yes)
    my @addrs = map { "127.0.0.1:" . ($self->{cluster_tls}{$_} // $_) }
                @ports;
    my @cli = $self->{redis_tls}
              ? ('--tls', '--cacert', "$self->{dir}/tls/ca.crt") : ();
    my $out = `redis-cli @cli --cluster create @addrs --cluster-replicas 1 --cluster-yes 2>&1`;
    die "redis-cli --cluster create failed:\n$out" if $?;
    $self->{redis_port} = $ports[0];
    $self->{redis_tls_port} = $self->{cluster_tls}{$ports[0]}
        if $self->{redis_tls};
    $self->wait_cluster or die "the cluster did not become ok\n";
    # redis_users: the same ACL users on every node (ACL SETUSER is not
    # replicated nor spread by the cluster)
    for my $port (@ports) {
        for my $u (@{ $self->{redis_users} || [] }) {
            my $r = $self->redis_at($port, 'ACL', 'SETUSER', split ' ', $u);
            die "ACL SETUSER on $port: $r->{error}\n" if ref $r;
        }
    }
}


# a TLS cluster node: a TLS port beside the plain one, which only the
# harness uses (Redis 7 answers CLUSTER SLOTS and MOVED on a TLS
# connection with the TLS ports, on a plain one with the plain ports);
# the cluster bus and replication over TLS too
sub cluster_tls_args {
    my ($self, $port) = @_;
    my $tls = free_port();
    $self->{cluster_tls}{$port} = $tls;
    my $d = $self->make_certs;
    return ('--tls-port', $tls,
            '--tls-cert-file', "$d/server.crt",
            '--tls-key-file', "$d/server.key",
            '--tls-ca-cert-file', "$d/ca.crt",
            '--tls-auth-clients', 'no',
            '--tls-cluster', 'yes', '--tls-replication', 'yes');
}


# every node that runs says cluster_state:ok, and all masters' slots
# add up to 16384
sub wait_cluster {
    my ($self, $secs) = @_;
    return wait_for(sub {
        for my $port (keys %{ $self->{cluster_pids} }) {
            my $info = eval { $self->redis_at($port, 'CLUSTER', 'INFO') };
            return 0 unless defined $info && !ref $info
                            && $info =~ /cluster_state:ok/
                            && $info =~ /cluster_slots_ok:16384/;
        }
        return 1;
    }, $secs // 30);
}


# the masters as { port => [slot ranges] }, from CLUSTER SLOTS
sub cluster_masters {
    my ($self) = @_;
    my %m;
    for my $r (@{ $self->redis('CLUSTER', 'SLOTS') || [] }) {
        push @{ $m{ $r->[2][1] } }, [$r->[0], $r->[1]];
    }
    return \%m;
}


# a command to one node of the cluster, no redirect followed
sub redis_at {
    my ($self, $port, @cmd) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Timeout => 5)
        or die "cannot connect to redis at $port: $!";
    print $s resp(@cmd);
    my $r = read_resp($s);
    close $s;
    return $r;
}


# a cluster node killed (KILL) or stopped
sub stop_cluster_node {
    my ($self, $port, $sig) = @_;
    my $pid = delete $self->{cluster_pids}{$port} or return;
    kill $sig // 'TERM', $pid;
    waitpid $pid, 0;
}


# stop_redis('KILL') is a crash: no shutdown save, connections reset
sub stop_redis {
    my ($self, $sig) = @_;
    $self->stop_cluster_node($_, $sig) for keys %{ $self->{cluster_pids} };
    return unless $self->{redis_pid};
    kill 'CONT', $self->{redis_pid};
    kill $sig // 'TERM', $self->{redis_pid};
    waitpid $self->{redis_pid}, 0;
    delete $self->{redis_pid};
}


# TG_TINY=1: nginx reaches redis through a proxy that passes commands as
# they are and cuts every reply at random points, sending the pieces a
# millisecond apart, so that replies arrive in short reads.  The proxy
# outlives stop_redis/start_redis; with redis down it closes each
# connection it accepts.
sub start_redis_proxy {
    my ($self) = @_;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => 0, Listen => 16,
                                       ReuseAddr => 1)
        or die "redis proxy: $!";
    $self->{redis_proxy_port} = $listen->sockport;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        redis_proxy($listen, $self->{redis_port});
        POSIX::_exit(0);
    }
    close $listen;
    $self->{redis_proxy_pid} = $pid;
}


sub redis_proxy {
    my ($listen, $port) = @_;
    my $sel = IO::Select->new($listen);
    # keyed by the socket as a string; %client turns it back to the socket
    my (%peer, %from_redis, %client, %queue, %due);
    srand($port);
    $SIG{PIPE} = 'IGNORE';

    my $close = sub {
        for my $x (@_) {
            $sel->remove($x);
            delete $peer{$x};
            delete $from_redis{$x};
            delete $client{$x};
            delete $queue{$x};
            delete $due{$x};
            close $x;
        }
    };
    my $write = sub {
        my ($to, $data) = @_;
        for (my $off = 0; $off < length $data; ) {
            my $w = syswrite $to, $data, 65536, $off;
            return 0 unless $w;
            $off += $w;
        }
        return 1;
    };

    for (;;) {
        my $now = time;
        my ($next) = sort { $a <=> $b } values %due;
        for my $s ($sel->can_read(defined $next ? ($next > $now ? $next - $now : 0)
                                                : undef))
        {
            if ($s == $listen) {
                my $c = $listen->accept or next;
                my $r = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $port);
                if (!$r) {
                    close $c;
                    next;
                }
                setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
                @peer{$c, $r} = ($r, $c);
                $from_redis{$r} = 1;
                $client{$c} = $c;
                $sel->add($c, $r);
                next;
            }

            my $to = $peer{$s} or next;
            my $n = sysread $s, my $buf, 65536;

            if (!$n) {
                # what redis sent before it closed still goes out
                $write->($to, join '', @{ $queue{$to} || [] })
                    if $from_redis{$s};
                $close->($s, $to);
                next;
            }

            if (!$from_redis{$s}) {
                $close->($s, $to) unless $write->($to, $buf);
                next;
            }

            push @{ $queue{$to} },
                 substr($buf, 0, 1 + int rand length $buf, '')
                while length $buf;
            $due{$to} //= time;
        }

        # one piece per connection at a time, a millisecond apart
        $now = time;
        for my $c (map { $client{$_} } grep { $due{$_} <= $now } keys %due) {
            if (!$write->($c, shift @{ $queue{$c} })) {
                $close->($c, $peer{$c});
                next;
            }
            if (@{ $queue{$c} }) {
                $due{$c} = $now + 0.001;
            } else {
                delete $queue{$c};
                delete $due{$c};
            }
        }
    }
}


sub stop_redis_proxy {
    my ($self) = @_;
    my $pid = delete $self->{redis_proxy_pid} or return;
    kill 'TERM', $pid;
    waitpid $pid, 0;
}


# a command to this test's redis; returns the reply (arrays as array refs,
# errors as { error => text })
sub redis {
    my ($self, @cmd) = @_;
    my $port = $self->{redis_port};
    my $asking;
    for (1 .. 5) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Timeout => 5)
            or die "cannot connect to redis: $!";
        if ($self->{redis_password}) {
            print $s resp('AUTH', $self->{redis_password});
            read_resp($s);
        }
        if ($asking) {
            print $s resp('ASKING');
            read_resp($s);
        }
        print $s resp(@cmd);
        my $r = read_resp($s);
        close $s;
        # a cluster: the key's owner answers
        if (ref $r eq 'HASH' && $r->{error} =~ /^(MOVED|ASK) \d+ [^:]+:(\d+)/)
        {
            ($asking, $port) = ($1 eq 'ASK', $2);
            next;
        }
        return $r;
    }
    die "redis: too many redirects for @cmd\n";
}


sub resp {
    my @a = @_;
    return '*' . @a . "\r\n" . join '', map { '$' . length($_) . "\r\n$_\r\n" } @a;
}


sub read_resp {
    my ($s) = @_;
    my $line = <$s>;
    die "redis closed the connection\n" unless defined $line;
    $line =~ s/\r\n$//;
    my ($t, $v) = (substr($line, 0, 1), substr($line, 1));
    return $v if $t eq '+';
    return { error => $v } if $t eq '-';
    return $v + 0 if $t eq ':';
    if ($t eq '$') {
        return undef if $v < 0;
        read($s, my $b, $v + 2);
        return substr($b, 0, $v);
    }
    if ($t eq '*') {
        return undef if $v < 0;
        return [map { read_resp($s) } 1 .. $v];
    }
    die "bad RESP line: $line\n";
}


# polls $cond every 20 ms until it is true or $secs (default 10) pass;
# returns whether it became true
sub wait_for {
    my ($cond, $secs) = @_;
    my $end = time + ($secs // 10);
    while (1) {
        return 1 if $cond->();
        return 0 if time > $end;
        sleep 0.02;
    }
}


# waits until no reservation is left in the hash at key: the settle that
# follows a response is written after the client has its answer
sub wait_settled {
    my ($self, $key) = @_;
    # leases flush and give their slices back when the scope is idle
    for (1 .. 500) {
        my $v = $self->redis('HGET', $key, 'reserved_requests') // 0;
        my $s = $self->redis('HGET', $key, 'sandbox_reserved_usd') // 0;
        return 1 if !$v && !$s;
        sleep 0.02;
    }
    return 0;
}


# HGETALL as a hash
sub hash {
    my ($self, $key) = @_;
    my %h = @{ $self->redis('HGETALL', $key) || [] };
    return \%h;
}


sub start_stub {
    my ($self) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        exec $^X, "$TOP/tools/stub-provider.pl",
             '--listen', "127.0.0.1:$self->{upstream_port}",
             '--record', "$self->{dir}/upstream",
             ($self->{stub_delay} ? ('--delay', $self->{stub_delay}) : ());
        die "exec: $!";
    }
    $self->{stub_pid} = $pid;
    wait_port($self->{upstream_port}, 'stub provider');
}


# runs "nginx -t" on the config; returns (exit code, output)
sub nginx_test {
    my ($self) = @_;
    # "nginx -t" returns from main() with its cycle never freed: by design
    local @ENV{qw(ASAN_OPTIONS UBSAN_OPTIONS)} =
        $self->sanitizer_env('detect_leaks=0');
    my $out = `$NGINX -t -p $self->{dir} -c $self->{dir}/nginx.conf 2>&1`;
    my $rc = $? >> 8;
    push @{ $self->{sanitizer_out} }, $out if $out =~ $SANITIZER;
    return ($rc, $out);
}


sub start_nginx {
    my ($self) = @_;
    my @cmd = ($NGINX, '-p', $self->{dir}, '-c', "$self->{dir}/nginx.conf");
    local @ENV{qw(ASAN_OPTIONS UBSAN_OPTIONS)} = $self->sanitizer_env;

    if ($ENV{TG_VALGRIND}) {
        @cmd = ('valgrind', '--error-exitcode=99', '--leak-check=full',
                '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
                "--suppressions=$TOP/t/valgrind.supp",
                "--log-file=$self->{dir}/logs/valgrind.log", @cmd);
        my $pid = fork // die "fork: $!";
        if ($pid == 0) { exec @cmd; die "exec: $!"; }
        $self->{nginx_pid} = $pid;
    } else {
        my $out = `@cmd 2>&1`;
        die "nginx did not start:\n$out" if $?;
        # before nginx sends stderr to error.log
        push @{ $self->{sanitizer_out} }, $out if $out =~ $SANITIZER;
    }

    wait_port($self->{port}, 'nginx');

    # for DESTROY: at global destruction the pid file may be gone already
    if (!$self->{nginx_pid} && open my $f, '<', "$self->{dir}/logs/nginx.pid") {
        ($self->{master_pid}) = <$f> =~ /(\d+)/;
    }
}


sub stop {
    my ($self) = @_;
    my $quitting;
    return if $self->{stopped}++;

    if ($self->{nginx_pid}) {
        kill 'QUIT', $self->{nginx_pid};
        waitpid $self->{nginx_pid}, 0;
        my $vg = $? >> 8;
        my $log = $self->read_file('logs/valgrind.log');
        ok($vg != 99, 'valgrind: no errors in module code')
            or diag $log;
    } elsif (-f "$self->{dir}/logs/nginx.pid") {
        my $pid = $self->read_file('logs/nginx.pid');
        chomp $pid;
        kill 'QUIT', $pid if $pid;
        for (1 .. 250) { last unless kill 0, $pid; sleep 0.02; }
        $quitting = $pid if $pid && kill 0, $pid;
    }

    kill 'TERM', $self->{stub_pid} if $self->{stub_pid};
    waitpid $self->{stub_pid}, 0 if $self->{stub_pid};
    $self->stop_redis;
    $self->stop_redis_proxy;

    if ($quitting) {
        # a worker still serving a request of the stub or Redis, gone now;
        # its exit (and the sanitizers' leak report) is waited for, or the
        # report would land after the check below
        for (1 .. 1500) { last unless kill 0, $quitting; sleep 0.02; }
        ok(!kill(0, $quitting), 'nginx exited within 35 s of QUIT')
            or kill 'KILL', $quitting;
    }

    my $allow = $self->{allow_log};
    my @bad = grep { /\[(alert|crit|emerg)\]/ && !($allow && /$allow/)
                     || /$SANITIZER/ }
              split /\n/, $self->read_file('logs/error.log');
    push @bad, $self->sanitizer_reports;
    ok(!@bad, 'no alert, crit, emerg or sanitizer report')
        or diag join "\n", @bad;
}


# a sanitizer-built nginx (make test-asan) writes its reports to
# logs/sanitizer.PID rather than to a stderr that may be closed
sub sanitizer_env {
    my ($self, $asan) = @_;
    my $log = "log_path=$self->{dir}/logs/sanitizer";
    return (join(':', grep { length } $ENV{ASAN_OPTIONS} // '', $asan // '',
                 $log),
            join(':', grep { length } $ENV{UBSAN_OPTIONS} // '', $log));
}


sub sanitizer_reports {
    my ($self) = @_;
    my @r = @{ $self->{sanitizer_out} || [] };
    for my $f (sort glob "$self->{dir}/logs/sanitizer.*") {
        open my $fh, '<', $f or next;
        local $/;
        my $text = <$fh>;
        push @r, "$f:\n$text" if length $text;
    }
    return @r;
}


sub stop_stub {
    my ($self) = @_;
    $self->{stopped}++;
    kill 'TERM', $self->{stub_pid};
    waitpid $self->{stub_pid}, 0;
    $self->stop_redis;
    $self->stop_redis_proxy;
    # "nginx -t" only: a point of its own only when a sanitizer spoke
    my @r = $self->sanitizer_reports;
    fail('no sanitizer report') if @r;
    diag join "\n", @r if @r;
}


sub DESTROY {
    my ($self) = @_;
    local $?;
    return if $self->{stopped};
    # a test that died: leave nothing running behind it
    kill 'TERM', $self->{nginx_pid} if $self->{nginx_pid};
    if (!$self->{nginx_pid} && open my $f, '<', "$self->{dir}/logs/nginx.pid") {
        my $pid = <$f>;
        kill 'TERM', $pid + 0 if $pid;
    } elsif ($self->{master_pid}) {
        kill 'TERM', $self->{master_pid};
    }
    kill 'TERM', $self->{stub_pid} if $self->{stub_pid};
    kill 'TERM', $self->{redis_pid} if $self->{redis_pid};
    kill 'TERM', $_ for values %{ $self->{cluster_pids} || {} };
    kill 'TERM', $self->{redis_proxy_pid} if $self->{redis_proxy_pid};
}


sub master_pid {
    my ($self) = @_;
    my $pid = $self->read_file('logs/nginx.pid');
    chomp $pid;
    return $pid;
}


# the master's worker processes, sorted
sub worker_pids {
    my ($self) = @_;
    my $m = $self->master_pid or return ();
    return sort { $a <=> $b } grep { /^\d+$/ } split ' ', `pgrep -P $m`;
}


# nginx -s reload, as a signal: waits (at most $secs, default 10) until
# a worker of the new generation runs; the old ones may still be
# finishing their requests.  Returns whether one did.
sub reload {
    my ($self, $secs) = @_;
    my %old = map { $_ => 1 } $self->worker_pids;
    kill 'HUP', $self->master_pid;
    return wait_for(sub { grep { !$old{$_} } $self->worker_pids }, $secs);
}


# a whole file, for a test that reads the tree; dies if it cannot
sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or die "$f: $!\n";
    local $/;
    return scalar <$fh>;
}


sub read_file {
    my ($self, $name) = @_;
    open my $f, '<', "$self->{dir}/$name" or return '';
    local $/;
    return scalar <$f>;
}


sub error_log { $_[0]->read_file('logs/error.log') }
sub access_log { $_[0]->read_file('logs/access.log') }


sub url { "http://127.0.0.1:$_[0]{port}$_[1]" }


# the access log line of the last request, decoded; found by the
# X-TG-Test-Id header request() sends, as the log phase may run a moment
# after the client has its response
sub last_log {
    my ($self) = @_;
    my $id = $self->{test_id} // 0;
    for (1 .. 250) {
        for my $line (reverse split /\n/, $self->access_log) {
            my $log = $JSON->decode($line);
            return $log if $log->{test_id} eq $id;
        }
        sleep 0.02;
    }
    return undef;
}


# a request; $body a string, a hash/array (sent as JSON), or a code ref
# (sent chunked).  Returns HTTP::Tiny's response, plus {json} if the
# response body is JSON.
sub request {
    my ($self, $method, $path, $body, $headers) = @_;
    $self->clear_upstream;
    my %h = %{ $headers || {} };
    $h{'X-TG-Test-Id'} = ++$self->{test_id};
    my %opt = (headers => \%h);
    if (ref $body eq 'HASH' || ref $body eq 'ARRAY') {
        $opt{content} = $JSON->encode($body);
        $h{'Content-Type'} //= 'application/json';
    } elsif (defined $body) {
        $opt{content} = $body;
    }
    my $res = HTTP::Tiny->new(timeout => 30, keep_alive => 0)
                        ->request($method, $self->url($path), \%opt);
    $res->{json} = eval { $JSON->decode($res->{content}) };
    return $res;
}


sub post { my ($s, $p, $b, $h) = @_; $s->request('POST', $p, $b, $h) }


# runs each [method, path, body, headers, delay] of @reqs at once (after
# delay seconds, if given), each on its own connection; returns their
# statuses in order (599: no HTTP answer, as when the connection was
# reset), and leaves how long each took in $t->{elapsed}
sub parallel {
    my ($self, @reqs) = @_;
    return $self->parallel_wait($self->parallel_start(@reqs));
}


# parallel() in two halves: start the requests (from one child process),
# do something while they are in flight, then collect their statuses
sub parallel_start {
    my ($self, @reqs) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $rd;
        my ($st, $el) = _concurrent([map { [$self, @$_] } @reqs], 90);
        print $wr map { "$st->[$_] $el->[$_]\n" } 0 .. $#$st;
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    return [$pid, $rd];
}


sub parallel_wait {
    my ($self, $h) = @_;
    my ($pid, $fh) = @$h;
    my (@status, @elapsed);
    while (my $line = <$fh>) {
        my ($st, $el) = split ' ', $line;
        push @status, $st || 599;
        push @elapsed, $el;
    }
    close $fh;
    waitpid $pid, 0;
    $self->{elapsed} = \@elapsed;
    return @status;
}


# many requests at once from this one process (no fork each): every
# [$tg, method, path, body, headers, delay] is sent as HTTP/1.0 on its
# own connection to that instance, all connections open together (or
# after delay seconds); returns the statuses in order (0: no answer
# within $secs, default 60)
sub concurrent {
    my ($reqs, $secs) = @_;
    return @{ (_concurrent($reqs, $secs))[0] };
}


sub _concurrent {
    my ($reqs, $secs) = @_;
    my (@st, @el, %conn, @later);
    my ($sel, $wsel) = (IO::Select->new, IO::Select->new);
    my $t0 = time;
    my $open = sub {
        my ($i) = @_;
        my ($tg, $m, $p, $b, $h) = @{ $reqs->[$i] };
        $b = $JSON->encode($b) if ref $b;
        $b //= '';
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $tg->{port}, Blocking => 0)
            or die "cannot connect to nginx: $!";
        $conn{fileno $s} = { i => $i, s => $s, in => '', start => time,
            out => "$m $p HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                   . join('', map { "$_: $h->{$_}\r\n" } sort keys %$h)
                   . 'Content-Length: ' . length($b) . "\r\n\r\n$b" };
        $sel->add($s);
        $wsel->add($s);
    };
    for my $i (0 .. $#$reqs) {
        ($st[$i], $el[$i]) = (0, 0);
        if ($reqs->[$i][5]) { push @later, $i; } else { $open->($i); }
    }
    @later = sort { $reqs->[$a][5] <=> $reqs->[$b][5] } @later;
    my $end = time + ($secs // 60);
    while (($sel->count || @later) && time < $end) {
        $open->(shift @later)
            while @later && time - $t0 >= $reqs->[$later[0]][5];
        my ($r, $w) = IO::Select->select($sel, $wsel, undef, 0.02);
        for my $s (@{ $w || [] }) {
            my $c = $conn{fileno $s};
            my $n = syswrite($s, $c->{out});
            substr($c->{out}, 0, $n, '') if $n;
            $wsel->remove($s) if !length $c->{out} || !defined $n;
        }
        for my $s (@{ $r || [] }) {
            my $c = $conn{fileno $s};
            my $n = sysread($s, $c->{in}, 65536, length $c->{in});
            next if !defined $n && $!{EAGAIN};
            next if $n;
            ($st[$c->{i}]) = $c->{in} =~ m{^HTTP/1\.\d (\d+)};
            $st[$c->{i}] //= 0;
            $el[$c->{i}] = sprintf '%.3f', time - $c->{start};
            $sel->remove($s);
            $wsel->remove($s);
            delete $conn{fileno $s};
            close $s;
        }
    }
    close $_->{s} for values %conn;
    return (\@st, \@el);
}


# an HTTP/1.0 request on a raw socket: the response is not chunked and
# ends when nginx closes, so the body is exactly the bytes relayed.
# Options: body_bytes => N: send only N bytes of the body (Content-Length
# says all of it), then close (an upload cut short); read_until => a
# regex: close as soon as the body
# matches it (a client that leaves), close_after => seconds to wait
# before closing without reading.  Returns { status, head, body, eof }
# (eof: nginx closed the connection, as opposed to the client leaving).
sub http10 {
    my ($self, $method, $path, $body, $headers, %o) = @_;
    $body = $JSON->encode($body) if ref $body;
    $body //= '';
    my %h = (%{ $headers || {} }, 'X-TG-Test-Id' => ++$self->{test_id});
    my $req = "$method $path HTTP/1.0\r\nHost: 127.0.0.1\r\n"
        . join('', map { "$_: $h{$_}\r\n" } sort keys %h)
        . 'Content-Length: ' . length($body) . "\r\n\r\n"
        . (defined $o{body_bytes} ? substr($body, 0, $o{body_bytes}) : $body);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port}, Timeout => 5)
        or die "cannot connect to nginx: $!";
    binmode $s;
    syswrite($s, $req) == length $req or die "write: $!";
    if (defined $o{body_bytes} || defined $o{close_after}) {
        sleep $o{close_after} // 0;
        close $s;
        return { eof => 0 };
    }
    my ($got, $eof) = ('', 0);
    my $sel = IO::Select->new($s);
    my $end = time + ($o{timeout} // 30);
    while (time < $end) {
        if (defined $o{read_until}) {
            my $i = index($got, "\r\n\r\n");
            last if $i >= 0 && substr($got, $i + 4) =~ $o{read_until};
        }
        next unless $sel->can_read(0.1);
        my $n = sysread($s, $got, 65536, length $got);
        if (!$n) { $eof = 1; last; }
    }
    close $s;
    my ($head, $b) = split /\r\n\r\n/, $got, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
    return { status => $status // 0, head => $head // '', body => $b // '',
             eof => $eof };
}


sub get { my ($s, $p, $h) = @_; $s->request('GET', $p, undef, $h) }


sub clear_upstream {
    my ($self) = @_;
    unlink glob "$self->{dir}/upstream/*.json";
}


# the requests the provider received since the last request(), oldest first
sub upstream_all {
    my ($self) = @_;
    my @r;
    for my $f (sort glob "$self->{dir}/upstream/*.json") {
        open my $fh, '<', $f or next;
        local $/;
        push @r, $JSON->decode(scalar <$fh>);
    }
    return @r;
}


# the one request the provider received, with {json} the decoded body
sub upstream {
    my ($self) = @_;
    my @r = $self->upstream_all;
    return undef unless @r;
    my $u = $r[-1];
    $u->{json} = eval { $JSON->decode($u->{body}) };
    return $u;
}


# runs build/tokenguardctl against this test's redis (-r first: a later -r
# in @args wins); returns { rc, out, err, json (stdout decoded, if JSON) }.
# env => { NAME => VALUE } as a first argument sets the environment.
our $CTL = "$TOP/build/tokenguardctl";

sub ctl {
    my ($self, @args) = @_;
    my %env = ref $args[0] eq 'HASH' ? %{ shift @args } : ();
    my ($out, $err) = ("$self->{dir}/ctl.out", "$self->{dir}/ctl.err");
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', $out or die;
        open STDERR, '>', $err or die;
        $ENV{$_} = $env{$_} for keys %env;
        { exec $CTL, '-r', "127.0.0.1:$self->{redis_port}", @args; }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my %r = (rc => $? >> 8);
    for my $k (qw(out err)) {
        open my $f, '<', $k eq 'out' ? $out : $err or die;
        local $/;
        $r{$k} = <$f> // '';
    }
    $r{json} = eval { JSON::PP->new->decode($r{out}) };
    return \%r;
}


1;
