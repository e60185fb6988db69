#!/usr/bin/env perl
# Opens N streaming requests and keeps them open, reading slowly, until
# killed or SECONDS have passed:
#
#   hold_streams.pl PORT N BODY_FILE SECONDS
#
# Prints "up N" once every stream has its response headers (200) and the
# first bytes of its body, so that RSS is read with all N streams held;
# "up K of N" instead when only K got there within 30 s (or N could not
# all be opened).  A stream that ends or fails is reported as "lost".
use strict;
use warnings;
use IO::Socket::INET;
use IO::Poll qw(POLLIN POLLHUP POLLERR);
use Time::HiRes qw(time);

my ($port, $n, $file, $secs) = @ARGV;
open my $f, '<', $file or die "$file: $!";
my $body = do { local $/; <$f> };
$| = 1;

my $poll = IO::Poll->new;
my (%got, %up, $opened);

for my $i (1 .. $n) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or do { warn "hold_streams: connect $i: $!\n"; last };
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\n"
        . "X-User: stream$i\r\nX-Team: streams\r\nX-Stream: 1\r\n"
        . "Content-Type: application/json\r\nContent-Length: "
        . length($body) . "\r\n\r\n$body";
    $poll->mask($s => POLLIN);
    $got{$s} = '';
    $opened++;
}

my $start = time;
my $end = $start + $secs;
my ($said, $lost) = (0, 0);

while (time < $end) {
    $poll->poll(0.5);
    for my $s ($poll->handles(POLLIN | POLLHUP | POLLERR)) {
        my $r = sysread($s, my $buf, 512);
        if (!$r) {
            $poll->remove($s);
            $lost++ if delete $up{$s};
            next;
        }
        next if $up{$s};
        $got{$s} .= $buf;
        # headers complete, a 200, and body bytes after them
        if ($got{$s} =~ /\A[^\r\n]* 200 .*?\r\n\r\n./s) {
            $up{$s} = 1;
            delete $got{$s};
        } elsif ($got{$s} =~ /\A[^\r\n]* [^2]\d\d /) {
            die "hold_streams: a stream was answered: "
                . (split /\r\n/, $got{$s})[0] . "\n";
        }
    }
    my $k = keys %up;
    if (!$said && $k == $n) {
        printf "up %d in %.1f s\n", $k, time - $start;
        $said = 1;
    } elsif (!$said && time - $start > 30) {
        printf "up %d of %d\n", $k, $n;
        $said = 1;
    }
}
print "lost $lost\n" if $lost;
