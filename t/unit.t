# The core/ unit tests (t/unit/*.c, built as build/unit_tests, or the
# binary TG_UNIT_TESTS names: make test-asan's) speak TAP.
use strict;
use warnings;
use FindBin;

my $bin = $ENV{TG_UNIT_TESTS} || "$FindBin::Bin/../build/unit_tests";
die "build/unit_tests is missing: run 'make unit'\n" unless -x $bin;
exec $bin or die "exec $bin: $!\n";
