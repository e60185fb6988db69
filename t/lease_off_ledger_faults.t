# t/ledger_faults.t again with tokenguard_lease off: the per-request ledger
# when Redis fails keeps its own coverage
BEGIN { $ENV{TG_LEASE} = 0 }
use FindBin;
do "$FindBin::Bin/ledger_faults.t" or die $@ || $!;
