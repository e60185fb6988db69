# The documentation holds together: README.md is a front door of at most
# 25,000 bytes; docs/directives.md documents every directive of the
# module's ngx_command_t tables exactly once, with the contexts the table
# allows, and nothing else; every relative link of README.md and docs/*.md
# reaches a file (and a heading, when it names one); the configurations
# README shows pass "nginx -t" with the module.
use strict;
use warnings;
use lib 't/lib';
use File::Temp qw(tempdir);
use Test::More;
use TG;

my $top = $TG::TOP;

sub slurp { TG::slurp(@_) }

# the text outside ``` fences, and the fenced blocks with their info
sub split_fences {
    my ($text) = @_;
    my ($prose, @blocks, $block, $info) = ('');
    for my $line (split /\n/, $text) {
        if ($line =~ /^```(\S*)/) {
            if (defined $block) {
                push @blocks, [$info, $block];
                undef $block;
            } else {
                ($block, $info) = ('', $1);
            }
            next;
        }
        if (defined $block) {
            $block .= "$line\n";
        } else {
            $prose .= "$line\n";
        }
    }
    return ($prose, @blocks);
}

# README.md: the front door
my $readme = slurp("$top/README.md");
cmp_ok(length $readme, '<=', 25000, 'README.md is at most 25,000 bytes')
    or diag(length($readme) . ' bytes');
ok($readme =~ /^## Quick start\n+```\nmake run\b[^\n]*\n(?: +#[^\n]*\n)*make test\b/m,
   'README: Quick start begins with make run, then make test');

# the directives, from every ngx_command_t table of the module
my %context_of = (NGX_HTTP_MAIN_CONF => 'http', NGX_HTTP_SRV_CONF => 'server',
                  NGX_HTTP_LOC_CONF => 'location');
my %directive;
for my $c (glob "$top/ngx_http_tokenguard_module/*.c") {
    my $src = slurp($c);
    while ($src =~ /ngx_command_t\s+\w+\[\]\s*=\s*\{(.*?)ngx_null_command/sg) {
        my $table = $1;
        while ($table =~ /\{\s*ngx_string\("([^"]+)"\),\s*([^,]+),/g) {
            my ($name, $flags) = ($1, $2);
            my @ctx = map { $context_of{$_} // () } split /\s*\|\s*/, $flags;
            $directive{$name} = join(', ', @ctx);
        }
    }
}
cmp_ok(scalar(keys %directive), '>=', 20,
       'the command tables were read: ' . scalar(keys %directive)
       . ' directives');

my $ref = slurp("$top/docs/directives.md");
my %syntax;
while ($ref =~ /^ *Syntax: +(\w+)[^\n]*\n *Default: +[^\n]+\n *Context: +([^\n]+)/mg) {
    push @{ $syntax{$1} }, $2;
}
my @entries = $ref =~ /^ *Syntax:/mg;
is(scalar(@entries), scalar(map { @$_ } values %syntax),
   'every Syntax: entry has a Default: and a Context: line');
for my $name (sort keys %directive) {
    my $n = $syntax{$name} ? @{ $syntax{$name} } : 0;
    is($n, 1, "$name: one Syntax: entry in docs/directives.md");
    is($syntax{$name}[0], $directive{$name}, "$name: the context of its table")
        if $n == 1;
}
for my $name (sort keys %syntax) {
    ok($directive{$name}, "$name: documented, and in a command table");
}

# a directive is documented in docs/directives.md and nowhere else
my @md = ("$top/README.md", sort glob "$top/docs/*.md");
for my $f (@md) {
    next if $f eq "$top/docs/directives.md";
    (my $rel = $f) =~ s{^\Q$top\E/}{};
    my @s = slurp($f) =~ /^ *Syntax: +\w+/mg;
    is(scalar(@s), 0, "$rel: no Syntax: entry (they live in docs/directives.md)");
}

# GitHub's anchor of a heading: lower case, punctuation dropped, spaces
# to hyphens, "-1", "-2" ... for repeats
sub anchors {
    my ($text) = @_;
    my ($prose) = split_fences($text);
    my (%seen, %a);
    for my $h ($prose =~ /^#{1,6} +(.+?) *$/mg) {
        $h =~ s/\[([^\]]*)\]\([^)]*\)/$1/g;
        my $id = lc $h;
        $id =~ s/[^a-z0-9 _-]//g;
        $id =~ s/ /-/g;
        my $n = $seen{$id}++;
        $a{$n ? "$id-$n" : $id} = 1;
    }
    return \%a;
}

my %anchors;
my $links = 0;
for my $f (@md) {
    (my $rel = $f) =~ s{^\Q$top\E/}{};
    (my $dir = $f) =~ s{/[^/]+$}{};
    my ($prose) = split_fences(slurp($f));
    $prose =~ s/`[^`]*`//g;
    while ($prose =~ /\[[^\]]*\]\(([^)\s]+)\)/g) {
        my $target = $1;
        next if $target =~ m{^[a-z][a-z0-9+.-]*:}i;    # http:, mailto: ...
        $links++;
        my ($path, $frag) = $target =~ /^([^#]*)(?:#(.*))?$/;
        my $file = length $path ? "$dir/$path" : $f;
        if (!-e $file) {
            fail("$rel: link $target: no such file");
            next;
        }
        next unless defined $frag && $file =~ /\.md$/;
        $anchors{$file} //= anchors(slurp($file));
        ok($anchors{$file}{$frag}, "$rel: link $target: the heading exists");
    }
}
cmp_ok($links, '>=', 30, "relative links checked: $links");

# README's configurations pass "nginx -t": the module's path, the files
# they name under /etc/nginx and /var/log/nginx, and the hosts (which
# "nginx -t" would resolve) are moved into a test prefix
SKIP: {
    skip 'build/ngx_http_tokenguard_module.so missing: make module', 3
        unless -f $TG::MODULE && -x $TG::NGINX;

    my $d = tempdir('tg-docs-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    mkdir "$d/$_" for qw(logs temp);
    system('cp', "$top/conf/prices.json", "$top/conf/tokenguard.conf", $d) == 0
        or die "cp: $?\n";
    open my $fh, '>', "$d/our-prices.json" or die $!;
    print $fh '{"models": {"our-model": {"input_mtok": 1, "output_mtok": 2}}}';
    close $fh;

    my (undef, @blocks) = split_fences($readme);
    my @confs = map { $_->[1] } grep { $_->[0] eq 'nginx' } @blocks;
    is(scalar(@confs), 2, 'README shows two nginx configurations');

    my $i = 0;
    for my $conf (@confs) {
        $i++;
        $conf = "load_module $TG::MODULE;\nevents {}\n$conf"
            unless $conf =~ /^load_module/m;
        $conf =~ s{^load_module \S+;}{load_module $TG::MODULE;}m;
        $conf =~ s{/etc/nginx/|/var/log/nginx/}{$d/}g;
        $conf =~ s{\b(proxy_pass) https?://[^/;]+}{$1 http://127.0.0.1:1}g;
        my $paths = join '', map { "\n    ${_}_temp_path $d/temp/$_;" }
            qw(client_body proxy fastcgi uwsgi scgi);
        $conf =~ s/^http \{/http {$paths\n    access_log $d\/logs\/access.log;/m;
        $conf = "error_log $d/logs/error.log;\npid $d/logs/nginx.pid;\n$conf";
        open my $c, '>', "$d/nginx.conf" or die $!;
        print $c $conf;
        close $c;
        local $ENV{ASAN_OPTIONS} = join ':', grep { length }
            $ENV{ASAN_OPTIONS} // '', 'detect_leaks=0';
        my $out = `$TG::NGINX -e stderr -t -p $d/ -c $d/nginx.conf 2>&1`;
        is($? >> 8, 0, "README configuration $i passes nginx -t")
            or diag($out);
    }
}

done_testing();
