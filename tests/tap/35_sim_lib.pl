# Test harness for prepaid-sim (required by tests/tap/35_sim*.t): a fake
# prepaid-ingest that listens on 127.0.0.1, accepts the simulator's
# connections and speaks DL/T 645-2007 to them. Frames are built and parsed
# here, independently of codec/dlt645.c: 68 A0..A5 68 C L data(+0x33) CS 16,
# checksum = sum of the bytes from the first 68 to the last data byte.
package SimHarness;

use strict;
use warnings;
use Exporter 'import';
use IO::Select;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);

our @EXPORT = qw(addr_wire addr_text frame read_req read_address_req
  control_req time_sync_req write_req freeze_req bcd_bytes bcd_value
  reply_values reply_serr server start_sim stop_sim wait_for read_csv
  energy meter_clock fmt_local $SIM $ROOT);

our $ROOT = $ENV{PREPAID_ROOT} // do {
	my $d = __FILE__;
	$d =~ s{/tests/tap/[^/]+$}{};
	$d eq __FILE__ ? '../..' : $d;
};
our $SIM = "$ROOT/worker/prepaid-sim";
our %RECEIVED;    # address -> frames received (good or bad checksum)

# ---- frames -------------------------------------------------------------

# "000000000101" -> wire order (A0 first)
sub addr_wire { pack 'C6', reverse map { hex } $_[0] =~ /(..)/g }
sub addr_text { join '', map { sprintf '%02X', $_ } reverse unpack 'C6', $_[0] }

sub frame {
	my ($addr, $c, $data) = @_;
	my $d = join '', map { chr((ord($_) + 0x33) & 0xFF) } split //, $data;
	my $body = "\x68" . $addr . "\x68" . chr($c) . chr(length $d) . $d;
	my $cs = 0;
	$cs += ord for split //, $body;
	return "\xFE\xFE\xFE\xFE" . $body . chr($cs & 0xFF) . "\x16";
}

sub read_req { frame(addr_wire($_[0]), 0x11, pack('V', $_[1])) }
sub read_address_req { frame("\xAA" x 6, 0x13, '') }

# n BCD bytes of an integer, low byte first
sub bcd_bytes {
	my ($v, $n) = @_;
	my $s = sprintf "%0*d", 2 * $n, $v;
	return pack 'C*', reverse map { hex } $s =~ /(..)/g;
}

# ss mm hh DD MM YY of a "local epoch" (local wall time as if it were UTC)
sub bcd_time6 {
	my @t = gmtime shift;
	return join '', map { bcd_bytes($_, 1) } $t[0], $t[1], $t[2], $t[3],
	  $t[4] + 1, $t[5] % 100;
}

sub password { my $pw = shift // '02000000'; pack 'C4', hex(substr $pw, 0, 2),
	  map { hex } reverse substr($pw, 2) =~ /(..)/g }

sub control_req {
	my ($addr, $n1, $until_local, $pw) = @_;
	return frame(addr_wire($addr), 0x1C,
		password($pw) . "\0\0\0\0" . chr($n1) . "\0" . bcd_time6($until_local));
}

sub time_sync_req { frame("\x99" x 6, 0x08, bcd_time6($_[0])) }

sub write_req {
	my ($addr, $di, $value, $pw) = @_;
	return frame(addr_wire($addr), 0x14,
		pack('V', $di) . password($pw) . "\0\0\0\0" . $value);
}

# freeze time mm hh DD MM (99 = any)
sub freeze_req {
	my ($addr, $mm, $hh, $dd, $mo) = @_;
	return frame($addr =~ /^9+$/ ? "\x99" x 6 : addr_wire($addr), 0x16,
		join '', map { bcd_bytes($_, 1) } $mm, $hh, $dd, $mo);
}

# BCD bytes (low first) -> integer; signed: bit 7 of the last byte
sub bcd_value {
	my ($bytes, $signed) = @_;
	my @b = unpack 'C*', $bytes;
	my $neg = 0;
	if ($signed && ($b[-1] & 0x80)) { $neg = 1; $b[-1] &= 0x7F }
	my $s = join '', map { sprintf '%02X', $_ } reverse @b;
	die "not BCD: $s\n" if $s =~ /[A-F]/;
	return $neg ? -($s + 0) : $s + 0;
}

# the values of a 91 reply: elements of $size bytes after the 4-byte DI
sub reply_values {
	my ($f, $size, $signed) = @_;
	my $v = substr $f->{data}, 4;
	return map { bcd_value(substr($v, $_ * $size, $size), $signed) }
	  0 .. length($v) / $size - 1;
}

sub reply_serr { my $f = shift; $f->{c} & 0x40 ? ord($f->{data}) : undef }

sub fmt_local {
	my @t = gmtime shift;
	sprintf '%04d-%02d-%02d %02d:%02d:%02d', $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0];
}

# ---- the fake daemon --------------------------------------------------------

sub server {
	my $ls = IO::Socket::INET->new(Listen => 1024, LocalAddr => '127.0.0.1',
		LocalPort => 0, ReuseAddr => 1, Proto => 'tcp')
	  or die "listen: $!";
	return bless { sock => $ls, port => $ls->sockport }, 'SimHarness::Server';
}

# start_sim($server, $logfile, @options) -> pid; PREPAID_SIM_WRAP runs it
# under a wrapper (valgrind)
sub start_sim {
	my ($srv, $log, @args) = @_;
	my @cmd = ((split ' ', $ENV{PREPAID_SIM_WRAP} // ''), $SIM, '--port',
		$srv->{port}, '--stats', 0, @args);
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDERR, '>', $log or die;
		open STDOUT, '>>', $log or die;
		exec @cmd or die "exec $SIM: $!";
	}
	return $pid;
}

# SIGTERM and wait (deadline); returns the exit status or undef
sub stop_sim {
	my ($pid, $timeout) = @_;
	kill 'TERM', $pid;
	my $end = time + ($timeout // 20);
	while (time < $end) {
		my $r = waitpid $pid, WNOHANG;
		return $? if $r == $pid;
		sleep 0.05;
	}
	kill 'KILL', $pid;
	waitpid $pid, 0;
	return undef;
}

# polls $cond until it returns true or the deadline passes
sub wait_for {
	my ($timeout, $cond) = @_;
	my $end = time + $timeout;
	while (time < $end) {
		my $r = $cond->();
		return $r if $r;
		sleep 0.02;
	}
	return $cond->();
}

# CSV with a header line -> list of hashes (no quoting needed: the truth
# file never quotes)
sub read_csv {
	my $path = shift;
	open my $fh, '<', $path or return ();
	my $h = <$fh> // return ();
	chomp $h;
	my @cols = split /,/, $h;
	my @rows;
	while (my $l = <$fh>) {
		next unless $l =~ /\n$/;
		chomp $l;
		my @v = split /,/, $l, -1;
		push @rows, { map { $cols[$_] => $v[$_] } 0 .. $#cols };
	}
	return @rows;
}

# energy block of a meter: (total Wh, [rate Wh...], frame)
sub energy {
	my ($conn, $addr) = @_;
	my $f = $conn->request(read_req($addr, 0x0001FF00)) or return;
	my @v = map { $_ * 10 } reply_values($f, 4);
	return ($v[0], [@v[1 .. $#v]], $f);
}

# the meter's clock as a "local epoch" (from 04 00 01 01 and 04 00 01 02)
sub meter_clock {
	my ($conn, $addr) = @_;
	my $d = $conn->request(read_req($addr, 0x04000101)) or return;
	my $t = $conn->request(read_req($addr, 0x04000102)) or return;
	my ($wd, $dd, $mo, $yy) = map { bcd_value($_) } split //, substr $d->{data}, 4;
	my ($ss, $mi, $hh) = map { bcd_value($_) } split //, substr $t->{data}, 4;
	return timegm($ss, $mi, $hh, $dd, $mo - 1, 2000 + $yy);
}

package SimHarness::Server;
use Time::HiRes qw(time);

sub port { $_[0]{port} }

# the next connection from the simulator (undef after the deadline)
sub accept_conn {
	my ($srv, $timeout) = @_;
	my $sel = IO::Select->new($srv->{sock});
	return undef unless $sel->can_read($timeout // 10);
	my $s = $srv->{sock}->accept or return undef;
	$s->autoflush(1);
	return bless { sock => $s, buf => '', frames => [], lines => [],
		garbage => 0, bad => [], closed => 0 }, 'SimHarness::Conn';
}

package SimHarness::Conn;
use IO::Select;
use Time::HiRes qw(time);

sub send {
	my ($c, $bytes) = @_;
	$c->{sent_at} = time;
	return syswrite $c->{sock}, $bytes;
}

# moves complete frames and JSON lines from the buffer to the queues
sub parse {
	my $c = shift;
	for (;;) {
		if ($c->{buf} =~ /^\{/) {
			my $nl = index $c->{buf}, "\n";
			return if $nl < 0;
			push @{ $c->{lines} }, substr $c->{buf}, 0, $nl;
			$c->{buf} = substr $c->{buf}, $nl + 1;
			next;
		}
		my $i = index $c->{buf}, "\x68";
		my $pre = $i < 0 ? $c->{buf} : substr $c->{buf}, 0, $i;
		$pre =~ s/^\xFE+//;    # preamble
		my $fe_free = ($pre =~ tr/\xFE//c);
		$c->{garbage} += $fe_free;
		if ($i < 0) { $c->{buf} = ''; return }
		$c->{buf} = substr $c->{buf}, $i;
		return if length $c->{buf} < 10;
		if (substr($c->{buf}, 7, 1) ne "\x68") {
			$c->{garbage}++;
			$c->{buf} = substr $c->{buf}, 1;
			next;
		}
		my $L = ord substr $c->{buf}, 9, 1;
		return if length $c->{buf} < 12 + $L;
		my $raw = substr $c->{buf}, 0, 12 + $L;
		if (substr($raw, 11 + $L, 1) ne "\x16") {
			$c->{garbage}++;
			$c->{buf} = substr $c->{buf}, 1;
			next;
		}
		$c->{buf} = substr $c->{buf}, 12 + $L;
		my $cs = 0;
		$cs += ord for split //, substr $raw, 0, 10 + $L;
		my $f = { raw => $raw, at => time,
			addr => SimHarness::addr_text(substr $raw, 1, 6),
			c => ord(substr $raw, 8, 1),
			data => join('', map { chr((ord($_) - 0x33) & 0xFF) }
				  split //, substr $raw, 10, $L) };
		$SimHarness::RECEIVED{ $f->{addr} }++;
		if (($cs & 0xFF) != ord substr $raw, 10 + $L, 1) {
			push @{ $c->{bad} }, $f;
			next;
		}
		push @{ $c->{frames} }, $f;
	}
}

# reads what arrives within $timeout (or until $until->() is true)
sub pump {
	my ($c, $timeout, $until) = @_;
	my $end = time + $timeout;
	my $sel = IO::Select->new($c->{sock});
	while (!$c->{closed}) {
		return 1 if $until && $until->();
		my $left = $end - time;
		last if $left <= 0;
		next unless $sel->can_read($left);
		my $n = sysread $c->{sock}, my $chunk, 65536;
		if (!$n) { $c->{closed} = 1; last }
		$c->{buf} .= $chunk;
		$c->parse;
	}
	return $until ? $until->() : 0;
}

sub next_frame {
	my ($c, $timeout) = @_;
	$c->pump($timeout // 10, sub { @{ $c->{frames} } });
	return shift @{ $c->{frames} };
}

sub next_line {
	my ($c, $timeout) = @_;
	$c->pump($timeout // 10, sub { @{ $c->{lines} } });
	return shift @{ $c->{lines} };
}

sub request {
	my ($c, $bytes, $timeout) = @_;
	$c->send($bytes);
	return $c->next_frame($timeout);
}

sub close { close $_[0]{sock} }

1;
