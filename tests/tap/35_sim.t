#!/usr/bin/env perl
# prepaid-sim against a fake daemon (35_sim_lib.pl): the harness listens on
# 127.0.0.1, the simulator connects, and hand-built DL/T 645 frames check
# what a meter fleet must do -- read-address, energy blocks whose rate
# registers sum to the total and follow the TOU period in force, energy that
# grows with the load and stops while the relay is open, V x I x PF = P,
# month and daily freezes, relay / keep-power / time-sync / write / freeze
# commands, abnormal replies, gateways (registration, heartbeats, routing,
# collisions, broadcasts), every injected fault, the ground-truth file, a
# fleet read from the database, and clean exits. The gateway scenario runs
# under valgrind (PREPAID_SIM_WRAP="valgrind ..." runs every scenario under
# it). Waits are deadlines on conditions, never fixed sleeps.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use List::Util qw(sum);
use Test::More;
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);

BEGIN
{
	require "$FindBin::Bin/35_sim_lib.pl";
	SimHarness->import;
}

plan skip_all => "$SIM not built (make workers)" unless -x $SIM;
my $tmp = tempdir(CLEANUP => !$ENV{KEEP_TMP});
my @started;    # simulator pids still running (killed at exit)
END { kill 'KILL', @started if @started }

sub write_file {
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
	return $path;
}

sub sw3 {
	my ($c, $a) = @_;
	return status_word($c, $a, 3);
}

# status words are binary bit fields (low byte first), not BCD
sub status_word {
	my ($c, $a, $n) = @_;
	my $f = $c->request(read_req($a, 0x04000500 + $n)) or return -1;
	return unpack 'v', substr $f->{data}, 4, 2;
}

sub power_dw {
	my ($c, $a) = @_;
	my $f = $c->request(read_req($a, 0x02030000)) or return -1;
	return (reply_values($f, 3, 1))[0];
}

# waits until the meter's clock has passed $t (a local epoch)
sub wait_clock {
	my ($c, $a, $t, $timeout) = @_;
	return wait_for($timeout // 20, sub { (meter_clock($c, $a) // 0) >= $t });
}

sub summary {
	my $path = shift;
	open my $fh, '<', $path or return {};
	return { map { chomp; split /=/, $_, 2 } <$fh> };
}

my $TOU = '00:00=valley;08:00=sharp;10:00=peak;18:00=flat';

# =====================================================================
# A. Direct meters from a CSV fleet
# =====================================================================
my $fleet_a = write_file("$tmp/a.csv", <<"CSV");
address,phase,kind,rate_registers,time_zone,registers,schedule
000000000101,1,dormitory,4,Asia/Shanghai,sharp;peak;flat;valley,$TOU
000000000102,3,factory,4,Asia/Shanghai,sharp;peak;flat;valley,$TOU
000000000103,1,office,0,Asia/Shanghai,,
000000000104,1,dormitory,0,Asia/Shanghai,,
CSV
my $srv = server();
# 22:30 local on March 31st; 900x: an hour passes every four seconds
my $pid = start_sim($srv, "$tmp/a.log", '--fleet', $fleet_a,
	'--time-scale', 900, '--time-start', '2026-03-31T14:30:00Z',
	'--truth', "$tmp/a_truth.csv", '--summary', "$tmp/a_summary",
	'--button-delay', 300);
push @started, $pid;

my %c;
%SimHarness::RECEIVED = ();
for (1 .. 4) {
	my $conn = $srv->accept_conn(10) or last;
	my $f = $conn->request(read_address_req());
	next unless $f && $f->{c} == 0x93;
	$c{ addr_text($f->{data}) } = $conn;
}
is_deeply [sort keys %c], [qw(000000000101 000000000102 000000000103 000000000104)],
  'each direct meter connects and answers read-address (93) with its own address';

my $d1 = $c{'000000000101'};
my $d2 = $c{'000000000102'};
my $d3 = $c{'000000000103'};
my $d4 = $c{'000000000104'};
my %energy_seen;    # address -> list of [total, rates] the harness received
sub E {
	my ($conn, $a) = @_;
	my ($t, $r) = energy($conn, $a);
	push @{ $energy_seen{$a} }, [$t, [@$r]] if defined $t;
	return ($t, $r);
}
sub R {    # a counted request
	my ($conn, $a, $bytes) = @_;
	my $f = $conn->request($bytes);
	return $f;
}

my ($t1, $r1) = E($d1, '000000000101');
is scalar(@$r1), 4, 'energy block of a 4-register meter: total + T1..T4';
is sum(@$r1), $t1, 'T1..T4 sum to the total';
is $t1 % 10, 0, 'registers count whole 0.01 kWh';
my ($t3, $r3) = E($d3, '000000000103');
is scalar(@$r3), 0, 'a meter without rate registers reports the total only';

# per-rate registers follow the period in force: 22:xx-23:xx is flat (T3)
my $clock = meter_clock($d1, '000000000101');
like fmt_local($clock), qr/^2026-03-31 22:/, "meter clock is local time (got @{[fmt_local($clock)]})";
wait_clock($d1, '000000000101', $clock + 1200);
my ($t1b, $r1b) = E($d1, '000000000101');
ok $t1b > $t1, "energy grows with time ($t1 -> $t1b Wh)";
is_deeply [map { $r1b->[$_] - $r1->[$_] } 0 .. 3], [0, 0, $t1b - $t1, 0],
  'before midnight only T3 (flat, 18:00-24:00) grows';

# after midnight: valley (T4); the month freeze happened at 00:00
wait_clock($d1, '000000000101', $clock + 2 * 3600);
my ($t1c, $r1c) = E($d1, '000000000101');
is sum(map { $r1c->[$_] - $r1b->[$_] } 2, 3), $t1c - $t1b, 'across midnight the growth splits between T3 and T4';
is_deeply [map { $r1c->[$_] - $r1b->[$_] } 0, 1], [0, 0], 'T1, T2 unchanged';
my $mf = R($d1, '000000000101', read_req('000000000101', 0x0001FF01));
my @mf = map { $_ * 10 } reply_values($mf, 4);
is sum(@mf[1 .. 4]), $mf[0], 'month freeze (00 01 FF 01): rates sum to the total';
ok $mf[0] > $t1b && $mf[0] <= $t1c, "month freeze lies between the readings around midnight ($t1b < $mf[0] <= $t1c)";
is $mf[4], $r1b->[3], 'month freeze: T4 (valley) as it was before midnight';
my $mf1 = R($d1, '000000000101', read_req('000000000101', 0x00010001));
is((reply_values($mf1, 4))[0] * 10, $mf[0], '00 01 00 01 is the total of the same freeze');
my $df = R($d1, '000000000101', read_req('000000000101', 0x05060001));
is unpack('H*', substr($df->{data}, 4)), '0000010426', 'daily freeze time (05 06 00 01): 2026-04-01 00:00';
my $dfe = R($d1, '000000000101', read_req('000000000101', 0x05060101));
is((reply_values($dfe, 4))[0] * 10, $mf[0], 'daily freeze energy (05 06 01 01) at the same midnight');
my $prev2 = R($d1, '000000000101', read_req('000000000101', 0x00010002));
is $prev2->{c}, 0x91, 'the freeze before (March 1st, from the start-up history) is the 2nd previous';
my $prev3 = R($d1, '000000000101', read_req('000000000101', 0x00010003));
is reply_serr($prev3), 0x02, 'a freeze that never happened: SERR 02';

# instantaneous values: V x I x PF = P, per phase
for my $a ('000000000101', '000000000102') {
	my $conn = $c{$a};
	my @u = map { $_ / 10 } reply_values(R($conn, $a, read_req($a, 0x0201FF00)), 2);
	my @i = map { $_ / 1000 } reply_values(R($conn, $a, read_req($a, 0x0202FF00)), 3, 1);
	my @p = map { $_ / 10 } reply_values(R($conn, $a, read_req($a, 0x0203FF00)), 3, 1);
	my @pf = map { $_ / 1000 } reply_values(R($conn, $a, read_req($a, 0x0206FF00)), 2, 1);
	my $n = $a eq '000000000102' ? 3 : 1;
	is scalar(@u), $n, "$a: $n voltage(s)";
	my $bad = 0;
	for my $k (0 .. $n - 1) {
		my $calc = $u[$k] * $i[$k] * $pf[$k + 1];
		$bad++ if abs($calc - $p[$k + 1]) > $u[$k] * 0.0005 * $pf[$k + 1] + 0.05;
		$bad++ if $u[$k] < 200 || $u[$k] > 240;
	}
	is $bad, 0, "$a: U x I x PF = P on every phase (U @u, I @i, P @p, PF @pf)";
	ok abs($p[0] - sum(@p[1 .. $n])) < 0.001, "$a: total power = sum of phases";
}
my $fr = R($d2, '000000000102', read_req('000000000102', 0x02800002));
my ($hz) = reply_values($fr, 2);
ok $hz >= 4990 && $hz <= 5010, "frequency around 50.00 Hz ($hz)";

# energy agrees with power: two readings inside one 15-minute window
my $agree;
for (1 .. 8) {
	my $p = power_dw($d2, '000000000102');
	my ($ea) = E($d2, '000000000102');
	my $ca = meter_clock($d2, '000000000102');
	wait_clock($d2, '000000000102', $ca + 300, 5);
	my ($eb) = E($d2, '000000000102');
	my $p2 = power_dw($d2, '000000000102');
	my $seen = @{ $energy_seen{'000000000102'} };
	my @tr = grep { $_->{address} eq '000000000102' && $_->{di} eq '0001FF00' }
	  truth_when("$tmp/a_truth.csv", sub { $seen == grep { $_->{address} eq '000000000102' && $_->{di} eq '0001FF00' } @_ });
	next unless @tr >= 2 && $p == $p2;
	my ($la, $lb) = @tr[-2, -1];
	next unless substr($la->{meter_time}, 0, 14) eq substr($lb->{meter_time}, 0, 14)
	  && int(substr($la->{meter_time}, 14, 2) / 15) == int(substr($lb->{meter_time}, 14, 2) / 15);
	my $dt = usec($lb->{sim_time}) - usec($la->{sim_time});
	my $expect = $p / 10 * $dt / 3.6e9;
	$agree = [$eb - $ea, $expect, $p];
	last;
}
ok $agree && abs($agree->[0] - $agree->[1]) <= 10,
  'energy between two readings in one window = power x time within 10 Wh'
  . ($agree ? " ($agree->[0] Wh, expected $agree->[1] at $agree->[2] dW)" : '');

sub usec {
	my ($d, $t, $us) = $_[0] =~ /^(\S+) (\d\d:\d\d:\d\d)\.(\d+)/;
	my ($y, $m, $dd) = split /-/, $d;
	my ($hh, $mi, $ss) = split /:/, $t;
	return (Time::Local::timegm($ss, $mi, $hh, $dd, $m - 1, $y) * 1e6) + $us;
}

# the truth file once $want->(@rows) holds (it is flushed every 0.2 s)
sub truth_when {
	my ($path, $want) = @_;
	my @rows;
	wait_for(5, sub { @rows = read_csv($path); $want->(@rows) });
	return @rows;
}

# abnormal reply
my $unk = R($d1, '000000000101', read_req('000000000101', 0x12345678));
is $unk->{c}, 0xD1, 'unknown DI: abnormal reply D1';
is reply_serr($unk), 0x02, 'unknown DI: SERR 02 (no such data)';
is ord(substr($unk->{raw}, 10, 1)), 0x35, 'SERR is sent +0x33 (35)';

# relay: trip stops consumption, close resumes it
my $a2 = '000000000102';
my $now = meter_clock($d2, $a2);
my $trip = R($d2, $a2, control_req($a2, 0x1A, $now + 3600));
is $trip->{c}, 0x9C, 'trip (1A): normal reply 9C';
is sw3($d2, $a2) & 0x50, 0x50, 'status word 3: relay open (bit 4) and command open (bit 6)';
is power_dw($d2, $a2), 0, 'no power through an open relay';
my ($eo1) = E($d2, $a2);
wait_clock($d2, $a2, $now + 1800);
my ($eo2) = E($d2, $a2);
is $eo2, $eo1, "no consumption while open ($eo1 Wh after 30 simulated minutes)";
my $close = R($d2, $a2, control_req($a2, 0x1C, $now + 7200));
is $close->{c}, 0x9C, 'close (1C): 9C';
is sw3($d2, $a2) & 0x50, 0, 'status word 3: relay closed';
my $cnow = meter_clock($d2, $a2);
wait_clock($d2, $a2, $cnow + 1800);
my ($eo3) = E($d2, $a2);
ok $eo3 > $eo2, "consumption resumes after close ($eo2 -> $eo3 Wh)";

# permit close: the tenant presses the button after --button-delay
$now = meter_clock($d2, $a2);
R($d2, $a2, control_req($a2, 0x1A, $now + 3600));
my $permit = R($d2, $a2, control_req($a2, 0x1B, $now + 3600));
is $permit->{c}, 0x9C, 'permit close (1B): 9C';
my $s = sw3($d2, $a2);
is $s & 0x50, 0x10, 'after 1B: relay still open, command state closed';
my $closed = wait_for(10, sub { my $v = sw3($d2, $a2); $v >= 0 && !($v & 0x10) });
ok $closed, 'the tenant closes the relay after the button delay';

# keep-power refuses trips
is R($d2, $a2, control_req($a2, 0x3A, $now + 7200))->{c}, 0x9C, 'keep-power on (3A): 9C';
is sw3($d2, $a2) & 0x1000, 0x1000, 'status word 3 bit 12: keep-power';
my $refused = R($d2, $a2, control_req($a2, 0x1A, $now + 7200));
is $refused->{c}, 0xDC, 'trip while keep-power is on: abnormal reply DC';
is sw3($d2, $a2) & 0x10, 0, 'relay stays closed under keep-power';
is R($d2, $a2, control_req($a2, 0x3B, $now + 7200))->{c}, 0x9C, 'keep-power off (3B): 9C';
is R($d2, $a2, control_req($a2, 0x1A, $now + 7200))->{c}, 0x9C, 'trip accepted again';
is R($d2, $a2, control_req($a2, 0x1C, $now + 7200))->{c}, 0x9C, 'and closed again';
my $badpw = R($d2, $a2, control_req($a2, 0x1A, $now + 7200, '02123456'));
is_deeply [$badpw->{c}, reply_serr($badpw)], [0xDC, 0x04], 'wrong password: DC with SERR 04';
my $late = R($d2, $a2, control_req($a2, 0x1A, $now - 3600));
is_deeply [$late->{c}, reply_serr($late)], [0xDC, 0x04], 'valid-until already past by the meter clock: refused';
is sw3($d2, $a2) & 0x10, 0, 'the refused trips left the relay closed';

# time sync (broadcast, no reply) and the load profile by local time
my $a3 = '000000000103';
my $mon10 = Time::Local::timegm(0, 0, 10, 6, 3, 2026);    # Monday 10:00
$d3->send(time_sync_req($mon10));
my $clk = meter_clock($d3, $a3);
ok $clk >= $mon10 && $clk < $mon10 + 600, 'time sync sets the meter clock (' . fmt_local($clk) . ')';
my $p_office_day = power_dw($d3, $a3);
$d3->send(time_sync_req($mon10 - 7 * 3600));
ok meter_clock($d3, $a3) < $mon10 - 6 * 3600, 'time sync back to 03:00';
my $p_office_night = power_dw($d3, $a3);
ok $p_office_day > 3 * $p_office_night, "office: working hours draw more than the night ($p_office_day vs $p_office_night dW)";
my $a4 = '000000000104';
$d4->send(time_sync_req(Time::Local::timegm(0, 0, 20, 7, 3, 2026)));
my $p_dorm_eve = power_dw($d4, $a4);
$d4->send(time_sync_req(Time::Local::timegm(0, 0, 3, 7, 3, 2026)));
my $p_dorm_night = power_dw($d4, $a4);
ok $p_dorm_eve > 3 * $p_dorm_night, "dormitory: evening peak over the night ($p_dorm_eve vs $p_dorm_night dW)";

# write data with password; read back
my $w = R($d3, $a3, write_req($a3, 0x04050101, bcd_bytes(12345, 4)));
is $w->{c}, 0x94, 'write price T1 (04 05 01 01) with the password: 94';
is((reply_values(R($d3, $a3, read_req($a3, 0x04050101)), 4))[0], 12345, 'price reads back as 1.2345');
my $wbad = R($d3, $a3, write_req($a3, 0x04050101, bcd_bytes(1, 4), '04000000'));
is_deeply [$wbad->{c}, reply_serr($wbad)], [0xD4, 0x04], 'write with the wrong password: D4 SERR 04';
my $wlim = R($d3, $a3, write_req($a3, 0x04001001, bcd_bytes(5000, 4)));
is $wlim->{c}, 0x94, 'write alarm amount 1 (04 00 10 01): 94';
is((reply_values(R($d3, $a3, read_req($a3, 0x04001001)), 4))[0], 5000, 'alarm amount reads back as 50.00');

# instant freeze (0x16 99 99 99 99)
my $fz = R($d4, $a4, freeze_req($a4, 99, 99, 99, 99));
is $fz->{c}, 0x96, 'instant freeze: 96';
my $fze = R($d4, $a4, read_req($a4, 0x05010101));
my @ftruth = grep { $_->{address} eq $a4 && $_->{event} eq 'freeze' }
  truth_when("$tmp/a_truth.csv", sub { grep { $_->{address} eq $a4 && $_->{event} eq 'freeze' } @_ });
is((reply_values($fze, 4))[0] * 10, $ftruth[-1]{energy_wh}, 'instant freeze (05 01 01 01) holds the registers at the freeze');

# meter number and address DIs
is addr_text(substr(R($d3, $a3, read_req($a3, 0x04000402))->{data}, 4)), $a3, 'meter number (04 00 04 02)';

# clean stop; the truth file matches what was received
my $status = stop_sim($pid, 20);
@started = grep { $_ != $pid } @started;
is $status, 0, 'SIGTERM: exit status 0';
my @truth = read_csv("$tmp/a_truth.csv");
open my $th, '<', "$tmp/a_truth.csv";
my $header = <$th>;
is $header, "sim_time,address,event,di,value,energy_wh,rate_wh,relay,meter_time,fault\n", 'truth file header';
my %truth_replies;
$truth_replies{ $_->{address} }++ for grep { $_->{event} !~ /^(relay|time_sync)$/ } @truth;
is_deeply \%truth_replies, \%SimHarness::RECEIVED, 'one truth line per reply received, per meter';
my $mismatch = 0;
for my $a (keys %energy_seen) {
	my @tl = grep { $_->{address} eq $a && $_->{di} eq '0001FF00' } @truth;
	$mismatch++ if @tl != @{ $energy_seen{$a} };
	for my $k (0 .. $#tl) {
		my $seen = $energy_seen{$a}[$k] or last;
		$mismatch++ if $tl[$k]{energy_wh} != $seen->[0]
		  || $tl[$k]{rate_wh} ne join(';', @{ $seen->[1] });
	}
}
is $mismatch, 0, 'truth energy_wh / rate_wh equal every energy block the harness decoded';
ok((grep { $_->{event} eq 'relay' && $_->{address} eq $a2 && $_->{value} eq 'closed' } @truth),
	'truth records the button press (event relay)');
my $sum = summary("$tmp/a_summary");
is $sum->{meters}, 4, 'summary: meters';
ok $sum->{relay_ops} >= 6, "summary: relay operations ($sum->{relay_ops})";
is $sum->{frames_in}, $sum->{replies} + 4, 'summary: every request answered but the four time-sync broadcasts';

# =====================================================================
# B. Gateways (under valgrind when available)
# =====================================================================
my @wrap;
if (!$ENV{SIM_NO_VALGRIND} && system('valgrind --version >/dev/null 2>&1') == 0) {
	@wrap = qw(valgrind -q --error-exitcode=99 --leak-check=full
	  --errors-for-leak-kinds=definite);
}
my $fleet_b = write_file("$tmp/b.csv", <<"CSV");
address,gateway,phase,kind,rate_registers,schedule
000000000201,GW-A,1,dormitory,4,$TOU
000000000202,GW-A,1,office,4,$TOU
000000000203,GW-A,3,factory,4,$TOU
000000000204,GW-B,1,dormitory,2,$TOU
000000000205,,1,office,0,
CSV
$srv = server();
{
	local $SimHarness::SIM = $SIM;
	my @cmd = (@wrap, $SIM);
	$pid = fork // die;
	if ($pid == 0) {
		open STDERR, '>', "$tmp/b.log";
		exec @cmd, '--port', $srv->port, '--stats', 0, '--fleet', $fleet_b,
		  '--heartbeat', 1, '--time-scale', 600, '--summary', "$tmp/b_summary",
		  '--truth', "$tmp/b_truth.csv";
		die;
	}
	push @started, $pid;
}
my $tmo = @wrap ? 30 : 10;
my @conns = grep { defined } map { $srv->accept_conn($tmo) } 1 .. 3;
is scalar(@conns), 3, 'two gateways and one direct meter connect';
wait_for($tmo, sub { $_->pump(0.05) for @conns; 2 == grep { @{ $_->{lines} } } @conns });
my %gw;
my $direct;
for my $conn (@conns) {
	my $line = shift @{ $conn->{lines} };
	if (defined $line && $line =~ /"gateway":"([^"]+)"/) { $gw{$1} = [$conn, $line] }
	else { $direct = $conn }
}
is_deeply [sort keys %gw], ['GW-A', 'GW-B'], 'gateways send their registration line first';
like $gw{'GW-A'}[1], qr/^\{"type":"register","gateway":"GW-A","imei":"86\d{13}"\}$/,
  'registration JSON: type, serial, 15-digit IMEI';
my $ga = $gw{'GW-A'}[0];
my $gb = $gw{'GW-B'}[0];
my @via = map { ($ga->request(read_req($_, 0x0001FF00), $tmo) // {})->{addr} // '' }
  qw(000000000201 000000000202 000000000203);
is_deeply \@via, [qw(000000000201 000000000202 000000000203)], 'the meters behind GW-A answer on its socket';
$ga->send(read_req('000000000204', 0x0001FF00) . read_req('000000000202', 0x04000503));
is(($ga->next_frame($tmo) // {})->{addr}, '000000000202', 'a meter behind another gateway does not answer on GW-A');
$ga->send(read_address_req() . read_req('000000000203', 0x04000503));
is(($ga->next_frame($tmo) // {})->{c}, 0x91, 'wildcard read-address on a 3-meter gateway: collision, no reply');
my $only = $gb->request(read_address_req(), $tmo);
is addr_text($only->{data} // "\0" x 6), '000000000204', 'wildcard read-address on a 1-meter gateway: its meter answers';
like $gb->next_line($tmo + 5) // '', qr/^\{"type":"heartbeat"\}$/, 'an idle gateway sends heartbeats';
my $sync = Time::Local::timegm(0, 30, 12, 15, 5, 2026);
$ga->send(time_sync_req($sync));
my @clocks = map { meter_clock($ga, $_) } qw(000000000201 000000000203);
ok !(grep { !defined $_ || $_ < $sync || $_ > $sync + 600 } @clocks), 'broadcast time sync reaches every meter behind the gateway';
$ga->send(freeze_req('999999999999', 99, 99, 99, 99));
is(($ga->request(read_req('000000000202', 0x05010101), $tmo) // {})->{c}, 0x91,
	'broadcast instant freeze: no reply, and the frozen block exists');
$direct->send(read_req('000000000205', 0x0001FF00) . read_req('000000000205', 0x04000503));
my @two = map { $direct->next_frame($tmo) } 1, 2;
is_deeply [map { unpack 'V', substr($_->{data} // "\0\0\0\0", 0, 4) } @two], [0x0001FF00, 0x04000503],
  'pipelined requests are answered in order';
$status = stop_sim($pid, @wrap ? 60 : 20);
@started = grep { $_ != $pid } @started;
is $status, 0, 'gateway run exits 0' . (@wrap ? ' (valgrind: no errors, no definite leaks)' : '');
if ($status) { diag $_ for `tail -30 $tmp/b.log` }
$sum = summary("$tmp/b_summary");
ok $sum->{no_target} >= 1 && $sum->{collisions} >= 1, "summary counts requests for no meter ($sum->{no_target}) and collisions ($sum->{collisions})";
ok $sum->{heartbeats} >= 1, 'summary counts heartbeats';

# =====================================================================
# C. Fault injection
# =====================================================================
my $fleet_c = "address,phase,kind\n" . join('', map { sprintf "0000000003%02d,%d,office\n", $_, $_ == 8 ? 3 : 1 } 1 .. 9);
write_file("$tmp/c.csv", $fleet_c);
my $faults = join ',', 'bad_checksum@000000000301', 'garbage:8@000000000302',
  'silence@000000000303', 'slow:700@000000000304', 'disconnect@000000000305',
  'duplicate@000000000306', 'replay@000000000307', 'phase_loss:b@000000000308',
  'undervoltage@000000000309', 'unknown_meter:1';
$srv = server();
$pid = start_sim($srv, "$tmp/c.log", '--fleet', "$tmp/c.csv", '--faults', $faults,
	'--reconnect', 200, '--truth', "$tmp/c_truth.csv", '--preamble', 0);
push @started, $pid;
my @cc = grep { defined } map { $srv->accept_conn(10) } 1 .. 10;
is scalar(@cc), 10, 'nine meters and one unknown meter connect';
$_->send(read_address_req()) for @cc;
wait_for(3, sub { $_->pump(0.02) for @cc; 9 <= grep { @{ $_->{frames} } || @{ $_->{bad} } } @cc });
my %fc;
my $silent;
for my $conn (@cc) {
	my $f = $conn->{frames}[0] // $conn->{bad}[0];
	if ($f) { $fc{ $f->{addr} } = $conn } else { $silent = $conn }
}
my @unknown = grep { /^99/ } keys %fc;
is scalar(@unknown), 1, "unknown_meter: an address not in the fleet answers (@unknown)";
ok $fc{'000000000301'} && @{ $fc{'000000000301'}{bad} } && !@{ $fc{'000000000301'}{frames} },
  'bad_checksum: the reply arrives with a wrong checksum';
ok $fc{'000000000302'} && $fc{'000000000302'}{garbage} > 0 && @{ $fc{'000000000302'}{frames} },
  "garbage: bytes before an intact frame ($fc{'000000000302'}{garbage} bytes)";
ok $silent && !$fc{'000000000303'}, 'silence: one meter never answers';
ok $fc{'000000000304'} && $fc{'000000000304'}{frames}[0]{at} - $fc{'000000000304'}{sent_at} >= 0.6,
  'slow: the reply comes 0.7 s late';
my $c5 = $fc{'000000000305'};
ok $c5 && $c5->pump(5, sub { $c5->{closed} }), 'disconnect: the meter closes the connection after replying';
my $re = $srv->accept_conn(10);
my $ref = $re && $re->request(read_address_req());
is $ref && $ref->{addr}, '000000000305', 'disconnect: and reconnects';
my $c6 = $fc{'000000000306'};
$c6->pump(1, sub { @{ $c6->{frames} } >= 2 });
ok @{ $c6->{frames} } >= 2 && $c6->{frames}[0]{raw} eq $c6->{frames}[1]{raw}, 'duplicate: the same reply twice';
my $c7 = $fc{'000000000307'};
@{ $c7->{frames} } = ();
my $first = $c7->request(read_req('000000000307', 0x04000503));
my $again = $c7->next_frame(3);
is $first->{c}, 0x93, 'replay: an older reply (the read-address answer) arrives again first';
is unpack('V', substr($again->{data}, 0, 4)), 0x04000503, 'replay: then the real reply';
my $c8 = $fc{'000000000308'};
@{ $c8->{frames} } = ();
my @u8 = reply_values($c8->request(read_req('000000000308', 0x0201FF00)), 2);
ok $u8[1] == 0 && $u8[0] > 2000 && $u8[2] > 2000, "phase_loss: phase B voltage is 0 (@u8)";
is status_word($c8, '000000000308', 5) & 1, 1, 'phase_loss: status word 5 bit 0 (loss of voltage)';
is((reply_values($c8->request(read_req('000000000308', 0x02030200)), 3, 1))[0], 0, 'phase_loss: no power on phase B');
my $c9 = $fc{'000000000309'};
@{ $c9->{frames} } = ();
my ($u9) = reply_values($c9->request(read_req('000000000309', 0x02010100)), 2);
ok $u9 > 1650 && $u9 < 1780, "undervoltage: about 78% of 220 V ($u9 dV)";
is status_word($c9, '000000000309', 4) & 2, 2, 'undervoltage: status word 4 bit 1';
$status = stop_sim($pid, 20);
@started = grep { $_ != $pid } @started;
is $status, 0, 'fault run: SIGTERM exits 0';
my %faults_in_truth;
$faults_in_truth{$_} = 1 for map { split /\+/, $_->{fault} } read_csv("$tmp/c_truth.csv");
is_deeply [sort keys %faults_in_truth],
  [qw(bad_checksum disconnect duplicate garbage replay silence slow)],
  'the truth file names every reply fault';

# =====================================================================
# D. A fleet from the database
# =====================================================================
SKIP: {
	skip 'no database (PGHOST/PGPORT unset)', 10 unless $ENV{PGPORT};
	my $db = "prepaid_sim_$$";
	my $psql = "psql -qXAt -v ON_ERROR_STOP=1";
	system("$psql -d postgres -c 'CREATE DATABASE $db' >/dev/null") == 0 or skip 'cannot create a database', 10;
	my $setup = <<'SQL';
CREATE EXTENSION pg_prepaid CASCADE;
SELECT prepaid.tariff_put('{"name": "sim", "time_zone": "Asia/Shanghai",
  "registers": ["valley", "peak"], "prices": {"peak": 1, "valley": 0.4},
  "day_types": {"workday": ["mon","tue","wed","thu","fri"], "weekend": ["sat","sun"]},
  "schedule": {"workday": [{"from": "00:00", "to": "08:00", "period": "valley"},
                           {"from": "08:00", "to": "20:00", "period": "peak"},
                           {"from": "20:00", "to": "24:00", "period": "valley"}],
               "weekend": [{"from": "00:00", "to": "24:00", "period": "valley"}]}}');
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (1, 'sim park', 'Asia/Shanghai');
INSERT INTO prepaid.area (property_id, area_id, name, kind) VALUES (1, 1, 'works', 'factory');
INSERT INTO prepaid.customer (property_id, customer_id, name, kind) VALUES
  (1, 1, 'a factory', 'company'), (1, 2, 'dorm', 'dormitory');
INSERT INTO prepaid.account (property_id, account_id, customer_id) VALUES (1, 1, 1), (1, 2, 2);
INSERT INTO prepaid.gateway (property_id, gateway_id, serial) VALUES (1, 1, 'GW-DB-1');
INSERT INTO prepaid.meter (property_id, meter_id, address, phase, ct_ratio, account_id, tariff_id,
                           rate_registers, gateway_id, area_id, mode, relay_actual)
VALUES (1, 1, '000000000401', 3, 50, 1, 1, 2, NULL, 1, 'prepaid', 'closed'),
       (1, 2, '000000000402', 1, 1, 2, 1, 2, 1, NULL, 'postpaid', 'open'),
       (1, 3, '000000000403', 1, 1, 2, 1, 0, 1, NULL, 'prepaid', 'unknown');
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh)
VALUES (1, 1, '2026-04-06 01:00+00', 123450, '{100000,23450}');
SQL
	open my $ph, '|-', "$psql -d $db >/dev/null" or die;
	print $ph $setup;
	close $ph;
	is $?, 0, 'database fleet set up';
	$srv = server();
	# Monday 10:00 local: a workday peak period
	$pid = start_sim($srv, "$tmp/d.log", '--db', "dbname=$db", '--time-scale', 600,
		'--time-start', '2026-04-06T02:00:00Z', '--preamble', 2);
	push @started, $pid;
	my @dc = grep { defined } map { $srv->accept_conn(10) } 1 .. 2;
	my ($gwc) = grep { $_->next_line(0.5) } @dc;
	my ($dir) = grep { $_ != ($gwc // 0) } @dc;
	ok $gwc && $dir, 'the gateway and the direct meter of the database connect';
	my $da = $dir->request(read_address_req());
	is $da->{addr}, '000000000401', 'the direct meter answers with its address from prepaid.meter';
	my ($e0, $er0) = energy($dir, '000000000401');
	ok $e0 >= 123450 && $er0->[0] >= 100000 && $er0->[1] >= 23450 && sum(@$er0) == $e0,
	  "registers continue from the newest reading ($e0: @$er0)";
	my $t0 = meter_clock($dir, '000000000401');
	wait_clock($dir, '000000000401', $t0 + 1800);
	my ($e1, $er1) = energy($dir, '000000000401');
	is_deeply [$er1->[0] - $er0->[0], $er1->[1] - $er0->[1]], [0, $e1 - $e0],
	  'registers ["valley", "peak"]: on a workday at 10:00 only T2 (peak) grows';
	my @i = map { $_ / 1000 } reply_values($dir->request(read_req('000000000401', 0x0202FF00)), 3, 1);
	ok @i == 3 && !(grep { $_ > 6 } @i), "CT 50: secondary currents of a factory stay small (@i A)";
	is sw3($dir, '000000000401') & 0x0210, 0x0200, 'prepaid meter, relay closed (status word 3)';
	is sw3($gwc, '000000000402') & 0x0210, 0x0010, 'relay_actual open in the database: the meter starts open';
	my ($g3, $gr3) = energy($gwc, '000000000403');
	is scalar(@$gr3), 0, 'rate_registers 0: total only';
	is stop_sim($pid, 20), 0, 'database run: SIGTERM exits 0';
	@started = grep { $_ != $pid } @started;
	system("psql -qXAt -d postgres -c 'DROP DATABASE $db' >/dev/null 2>&1");
}

# =====================================================================
# E. Command line
# =====================================================================
my $help = `$SIM --help`;
open my $mf_h, '<', "$ROOT/worker/sim/sim_main.c" or die;
my @opts = map { /^\s*\{"([a-z-]+)",/ ? $1 : () } <$mf_h>;
my @missing = grep { $help !~ /--\Q$_\E\b/ } @opts;
ok @opts > 20 && !@missing, scalar(@opts) . ' options, all documented in --help' . (@missing ? " (missing: @missing)" : '');
is system("$SIM --no-such-option >/dev/null 2>&1") >> 8, 2, 'unknown option: exit 2';
is system("$SIM --generate 1 --faults 'melt\@5%' >/dev/null 2>&1") >> 8, 1, 'bad fault spec: exit 1';
like `$SIM --generate 1 --faults 'melt\@5%' 2>&1`, qr/unknown fault "melt"/, 'the bad fault is named';

done_testing();
