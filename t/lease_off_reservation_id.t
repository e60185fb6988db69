# t/reservation_id.t again with tokenguard_lease off: two instances whose
# workers share a pid make per-request ids that never collide
BEGIN { $ENV{TG_LEASE} = 0 }
use FindBin;
do "$FindBin::Bin/reservation_id.t" or die $@ || $!;
