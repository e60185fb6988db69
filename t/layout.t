# The glue's layers as README's Layout draws them: every file of
# ngx_http_tokenguard_module/ is listed once, the config script compiles
# them in the same order, and a function of one file calls only functions
# of the files listed below it (a lower layer answers through a
# continuation, never by name).  No function, glue or core/, is over 150
# lines.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

my $top = $TG::TOP;
my $dir = "$top/ngx_http_tokenguard_module";

sub slurp { TG::slurp(@_) }

# strings and comments say nothing about calls
sub code {
    my ($s) = @_;
    $s =~ s/"(?:\\.|[^"\\])*"/""/g;
    $s =~ s{/\*.*?\*/}{}gs;
    return $s;
}

my $readme = slurp("$top/README.md");
my ($layout) = $readme =~ /^## Layout\n(.*?)(?=^## |\z)/ms;
ok(defined $layout, 'README has a Layout section');
$layout //= '';

my @order = $layout =~ /^\s+(ngx_http_tokenguard_\w+\.c)\s/mg;
my %rank;
@rank{@order} = (0 .. $#order);

opendir my $dh, $dir or die "$dir: $!\n";
my @files = sort grep { /\.c$/ } readdir $dh;
closedir $dh;

ok(@files >= 10, scalar(@files) . ' glue files');
is(scalar(@order), scalar(keys %rank), 'each file listed once in Layout');

for my $f (@files) {
    ok(exists $rank{$f}, "$f is in README's Layout");
}

for my $f (@order) {
    ok(-f "$dir/$f", "Layout's $f exists");
}

my ($srcs) = slurp("$top/config") =~ /ngx_module_srcs="(.*?)"/s;
my @config = ($srcs // '') =~ /(ngx_http_tokenguard_\w+\.c)/g;
is("@config", "@order", 'config compiles the files in the Layout order');

# who defines what
my (%src, %def);
for my $f (@files) {
    $src{$f} = code(slurp("$dir/$f"));
    while ($src{$f} =~ /^([a-z_][a-z0-9_]*)\(/mg) {
        $def{$1} //= $f;
    }
}

my $calls = 0;
for my $f (@files) {
    next unless exists $rank{$f};
    my %bad;
    while ($src{$f} =~ /\b([a-z_][a-z0-9_]*)\s*\(/g) {
        my $g = $def{$1};
        next if !defined $g || $g eq $f || !exists $rank{$g};
        $calls++;
        $bad{"$1 ($g)"} = 1 if $rank{$g} < $rank{$f};
    }
    ok(!%bad, "$f calls only down")
        or diag("$f calls up: " . join(', ', sort keys %bad));
}

ok($calls > 50, "$calls calls between files seen");

# function length: from the "{" after a definition to its "}"
for my $sub ('ngx_http_tokenguard_module', 'ngx_http_tokenguard_module/core')
{
    opendir my $d, "$top/$sub" or die "$sub: $!\n";
    for my $f (sort grep { /\.c$/ } readdir $d) {
        my ($name, $start, $i, @long) = (undef, undef, 0);
        for my $line (split /\n/, slurp("$top/$sub/$f")) {
            if ($line =~ /^([a-z_][a-z0-9_]*)\(/) {
                $name = $1;
            } elsif ($line eq '{' && defined $name) {
                $start = $i;
            } elsif ($line eq '}' && defined $start) {
                push @long, "$name (" . ($i - $start) . ' lines)'
                    if $i - $start > 150;
                ($name, $start) = (undef, undef);
            }
            $i++;
        }
        ok(!@long, "$sub/$f: no function over 150 lines")
            or diag(join(', ', @long));
    }
    closedir $d;
}

done_testing();
