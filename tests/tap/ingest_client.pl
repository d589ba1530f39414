#!/usr/bin/perl
# Hand-built DL/T 645 traffic for the ingest tests (no simulator needed):
#   ingest_client.pl meter PORT ADDR [SECONDS]      a direct meter answering
#       read-address, the energy block (total grows 0.01 kWh per read),
#       status word 3, 0x1C relay control; other DIs get an error reply
#   ingest_client.pl mute PORT ADDR [SECONDS]   a meter that answers only
#       read-address (commands to it stay unanswered)
#   ingest_client.pl gateway PORT SERIAL SECONDS ADDR...   the same for
#       several meters behind one registered gateway socket; an address
#       written =ADDR is a meter without load (its register never moves)
#   environment DELAY_MS: wait that long before each reply (a slow radio
#       link; requests are answered one after the other); CONTROL_LOG=FILE:
#       append "ADDR N1 valid-until" (20YY-MM-DD hh:mm:ss) per 0x1C frame
#   ingest_client.pl frame ADDR CTRL HEXDATA   print one frame (hex; data plain)
#   ingest_client.pl raw PORT HEX [MS]   send bytes, print what comes back
#       (hex) until the peer closes or MS (default 2000) pass; exit 0 if the
#       peer closed the connection
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

sub addr_wire { my $a = shift; return join '', reverse map { chr hex } ($a =~ /(..)/g) }
sub frame {
	my ($addr, $ctrl, $data) = @_;
	my $d = join '', map { chr((ord($_) + 0x33) & 0xFF) } split //, $data;
	my $f = "\x68" . addr_wire($addr) . "\x68" . chr($ctrl) . chr(length $d) . $d;
	my $cs = 0; $cs = ($cs + ord $_) & 0xFF for split //, $f;
	return "\xFE\xFE" . $f . chr($cs) . "\x16";
}
sub bcd { my ($v, $n) = @_; my $s = sprintf("%0*d", 2 * $n, $v); return join '', reverse map { chr hex } ($s =~ /(..)/g) }
sub di_bytes { my $di = shift; return join '', reverse map { chr hex } ($di =~ /(..)/g) }

# parse frames out of a buffer; returns list of [addr_text, ctrl, data]
sub frames {
	my $buf = shift; my @out;
	while ($$buf =~ /\x68/g) {
		my $i = pos($$buf) - 1;
		last if length($$buf) < $i + 12;
		if (substr($$buf, $i + 7, 1) ne "\x68") { pos($$buf) = $i + 1; next }
		my $len = ord substr($$buf, $i + 9, 1);
		last if length($$buf) < $i + 12 + $len;
		my $addr = join '', map { sprintf "%02X", ord } reverse split //, substr($$buf, $i + 1, 6);
		my $ctrl = ord substr($$buf, $i + 8, 1);
		my $data = join '', map { chr((ord($_) - 0x33) & 0xFF) } split //, substr($$buf, $i + 10, $len);
		push @out, [$addr, $ctrl, $data];
		substr($$buf, 0, $i + 12 + $len) = '';
		pos($$buf) = 0;
	}
	return @out;
}

my %meter;   # addr -> { energy => 0.01 kWh units, open => 0/1 }
my $mute = 0;
sub answer {
	my ($addr, $ctrl, $data) = @_;
	if ($ctrl == 0x13) { my ($a) = keys %meter; return frame($a, 0x93, addr_wire($a)) }
	return '' if $mute;
	my $m = $meter{$addr} or return '';
	if ($ctrl == 0x11) {
		my $di = join '', map { sprintf "%02X", ord } reverse split //, substr($data, 0, 4);
		if ($di eq '0001FF00') {
			$m->{energy} += 1 unless $m->{open} || $m->{still};
			return frame($addr, 0x91, di_bytes($di) . bcd($m->{energy}, 4) . bcd(0, 4) x 4);
		}
		if ($di eq '04000503') {
			return frame($addr, 0x91, di_bytes($di) . chr($m->{open} ? 0x50 : 0) . "\0");
		}
		return frame($addr, 0xD1, "\x02");
	}
	if ($ctrl == 0x1C) {
		my $n1 = ord substr($data, 8, 1);
		if ($ENV{CONTROL_LOG} && open my $log, '>>', $ENV{CONTROL_LOG}) {
			my @t = map { sprintf '%02X', ord substr($data, $_, 1) } 10 .. 15;	# ss mm hh DD MM YY
			printf $log "%s %02X 20%s-%s-%s %s:%s:%s\n", $addr, $n1, @t[5, 4, 3, 2, 1, 0];
			close $log;
		}
		$m->{open} = 1 if $n1 == 0x1A;
		$m->{open} = 0 if $n1 == 0x1C;
		return frame($addr, 0x9C, '');
	}
	return frame($addr, 0xC0 | $ctrl, "\x02");
}

sub serve {
	my ($sock, $seconds) = @_;
	my $sel = IO::Select->new($sock); my $buf = ''; my $end = time + $seconds;
	while (time < $end) {
		next unless $sel->can_read(0.2);
		my $n = sysread($sock, my $chunk, 65536);
		return unless $n;
		$buf .= $chunk;
		for my $f (frames(\$buf)) {
			my $r = answer(@$f);
			next unless length $r;
			select(undef, undef, undef, $ENV{DELAY_MS} / 1000) if $ENV{DELAY_MS};
			syswrite($sock, $r);
		}
	}
}

my $mode = shift @ARGV // '';
if ($mode eq 'frame') {
	my ($addr, $ctrl, $hex) = @ARGV;
	print unpack('H*', substr(frame($addr, hex $ctrl, pack 'H*', $hex), 2)), "\n";
	exit 0;
}
my $port = shift @ARGV;
my $connect = sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die "connect: $!" };
if ($mode eq 'meter' || $mode eq 'mute') {
	$mute = $mode eq 'mute';
	my ($addr, $seconds) = @ARGV;
	$meter{$addr} = { energy => 100000, open => 0 };
	serve($connect->(), $seconds // 3600);
} elsif ($mode eq 'gateway') {
	my ($serial, $seconds, @addrs) = @ARGV;
	for (@addrs) {
		my $still = s/^=//;
		$meter{$_} = { energy => 200000, open => 0, still => $still };
	}
	my $s = $connect->();
	syswrite($s, qq({"type":"register","gateway":"$serial","imei":"860000000000001"}\n));
	serve($s, $seconds);
} elsif ($mode eq 'raw') {
	my ($hex, $ms) = @ARGV;
	$hex =~ s/\s+//g;
	my $s = $connect->();
	syswrite($s, pack 'H*', $hex);
	my $sel = IO::Select->new($s); my $end = time + ($ms // 2000) / 1000; my $got = '';
	while (time < $end) {
		next unless $sel->can_read(0.05);
		my $n = sysread($s, my $chunk, 4096);
		if (!$n) { print unpack('H*', $got), "\n"; exit 0 }
		$got .= $chunk;
	}
	print unpack('H*', $got), "\n";
	exit 1;
} else {
	die "usage: ingest_client.pl meter|gateway|raw PORT ...\n";
}
