# t/ledger_concurrency.t again, with every worker admitting from budget leases
BEGIN { $ENV{TG_LEASE} = 1 }
use FindBin;
do "$FindBin::Bin/ledger_concurrency.t" or die $@ || $!;
