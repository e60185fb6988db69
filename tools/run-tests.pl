#!/usr/bin/env perl
# Runs every t/**/*.t with TAP::Harness (prove's engine) and ends with one
# line "N passed, N failed" counting test points; a file that dies or
# exits non-zero without a failing point counts as one failure.
use strict;
use warnings;

use File::Find;
use TAP::Harness;

my @files;
find(sub { push @files, $File::Find::name if /\.t$/ && -f }, 't');
@files = sort @files;
@files = grep { my $f = $_; grep { $f =~ /$_/ } @ARGV } @files if @ARGV;

my $harness = TAP::Harness->new({
    verbosity => $ENV{TEST_VERBOSE} ? 1 : 0,
    lib => ['t/lib'],
    jobs => $ENV{TEST_JOBS} || 1,
    color => 0,
});
my $agg = $harness->runtests(@files);

my ($passed, $failed) = (0, 0);
for my $desc ($agg->descriptions) {
    my ($p) = $agg->parsers($desc);
    my $f = scalar $p->failed;
    $passed += scalar $p->passed;
    $failed += $f;
    $failed++ if !$f && ($p->exit || $p->wait || $p->has_problems);
}

print "$passed passed, $failed failed\n";
exit($failed ? 1 : 0);
