# A libFuzzer smoke of every core parser: tools/fuzz.sh builds the
# t/fuzz/fuzz_*.c targets (clang, ASan, UBSan) and runs each for
# TG_FUZZ_SECONDS (5 by default) on a copy of its seed corpus, the
# regression reproducers included.  One test point per target.  Without
# clang and libFuzzer (libclang-rt-14-dev) this fails: make test installs
# them.
use strict;
use warnings;
use FindBin;
use Test::More;

my $top = "$FindBin::Bin/..";
my @targets = map { m{/(fuzz_\w+)\.c$} ? $1 : () }
              glob "$top/t/fuzz/fuzz_*.c";

local $ENV{FUZZ_SECONDS} = $ENV{TG_FUZZ_SECONDS} || 5;

my $out = `$top/tools/fuzz.sh 2>&1`;
my $rc = $? >> 8;

my %line = map { /^(fuzz_\w+): (.*)$/ ? ($1 => $2) : () } split /\n/, $out;

if (!%line) {
    fail('fuzz targets build and run');
    diag("tools/fuzz.sh exited $rc without running a target:\n$out");
    diag('libFuzzer needs clang and libclang-rt-14-dev:'
         . ' "make test-deps" or "make fuzz" installs them');
    done_testing();
    exit;
}

for my $t (@targets) {
    my $l = $line{$t};
    ok(defined $l && $l =~ /^ok\b/, "$t: " . ($l // 'did not run'))
        or diag("reproduce with: build/fuzz/$t FILE; tools/fuzz.sh said:\n"
                . $out);
}

is($rc, 0, 'tools/fuzz.sh exit status');

done_testing();
