# t/ledger.t again, with every worker admitting from budget leases
BEGIN { $ENV{TG_LEASE} = 1 }
use FindBin;
do "$FindBin::Bin/ledger.t" or die $@ || $!;
