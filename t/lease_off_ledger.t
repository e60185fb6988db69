# t/ledger.t again with tokenguard_lease off: the per-request ledger, whose
# reservations and settles go to Redis one by one, keeps its own coverage
BEGIN { $ENV{TG_LEASE} = 0 }
use FindBin;
do "$FindBin::Bin/ledger.t" or die $@ || $!;
