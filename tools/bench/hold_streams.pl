#!/usr/bin/env perl
# Opens N streaming requests at once and keeps them open, reading slowly,
# until killed: hold_streams.pl PORT N BODY_FILE SECONDS
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep time);

my ($port, $n, $file, $secs) = @ARGV;
open my $f, '<', $file or die;
my $body = do { local $/; <$f> };

my $sel = IO::Select->new;
for my $i (1 .. $n) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or last;
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\n"
        . "X-User: stream$i\r\nX-Team: streams\r\nX-Stream: 1\r\n"
        . "Content-Type: application/json\r\nContent-Length: "
        . length($body) . "\r\n\r\n$body";
    $sel->add($s);
}

my $end = time + $secs;
while (time < $end) {
    for my $s ($sel->can_read(0.5)) {
        sysread($s, my $buf, 256) or $sel->remove($s);
    }
}
