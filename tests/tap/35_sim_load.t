#!/usr/bin/env perl
# prepaid-sim under load, against worker/sim/tools/sim_poll (a minimal C
# polling daemon that checks every reply): frames per second and simulator
# CPU per frame with one request outstanding per connection, with a
# meter's reads pipelined, and with a gateway's meters pipelined; many
# idle connections (--idle, up to 20,000 as the file limit allows) and the
# memory they take; and an AddressSanitizer/UBSan build of the simulator
# with every fault injected. Figures are reported (diag), only sanity
# floors are asserted: the machine is shared.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(time sleep);

BEGIN
{
	require "$FindBin::Bin/35_sim_lib.pl";
	SimHarness->import;
}

plan skip_all => "$SIM not built (make workers)" unless -x $SIM;
my $tmp = tempdir(CLEANUP => !$ENV{KEEP_TMP});
my $poll = "$tmp/sim_poll";
my @kids;
END { kill 'KILL', @kids if @kids }

is system("cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I$ROOT/codec -o $poll "
	  . "$ROOT/worker/sim/tools/sim_poll.c $ROOT/codec/dlt645.c"), 0, 'sim_poll builds';

sub free_port {
	my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0);
	my $p = $s->sockport;
	close $s;
	return $p;
}

sub spawn {
	my ($out, @cmd) = @_;
	my $pid = fork // die;
	if ($pid == 0) {
		open STDOUT, '>', $out or die;
		open STDERR, '>>', $out or die;
		exec @cmd or die "exec $cmd[0]: $!";
	}
	push @kids, $pid;
	return $pid;
}

sub reap {
	my ($pid, $timeout) = @_;
	my $end = time + $timeout;
	while (time < $end) {
		return $? if waitpid($pid, WNOHANG) == $pid;
		sleep 0.05;
	}
	kill 'KILL', $pid;
	waitpid $pid, 0;
	return -1;
}

sub slurp { open my $fh, '<', $_[0] or return ''; local $/; <$fh> }

# one run: poller for $secs from its first connection, simulator a bit longer
sub run {
	my ($name, $gen, $poll_args, @sim_args) = @_;
	my $port = free_port();
	my $pp = spawn("$tmp/$name.poll", $poll, $port, 3, @$poll_args);
	sleep 0.1;
	my $sp = spawn("$tmp/$name.sim", $SIM, '--generate', $gen, '--port', $port,
		'--stats', 0, '--connect-rate', 20000, '--duration', 3.2, @sim_args);
	my @t0 = times;
	my $prc = reap($pp, 40);
	my @t1 = times;
	my $src = reap($sp, 40);
	my @t2 = times;
	@kids = grep { $_ != $pp && $_ != $sp } @kids;
	my %r = slurp("$tmp/$name.poll") =~ /(\w+)=([\d.]+)/g;
	my ($frames_in) = slurp("$tmp/$name.sim") =~ /frames_in=(\d+)/;
	$r{poll_rc} = $prc;
	$r{sim_rc} = $src;
	$r{sim_cpu} = ($t2[2] + $t2[3]) - ($t1[2] + $t1[3]);
	$r{us_per_frame} = $frames_in ? sprintf('%.1f', $r{sim_cpu} * 1e6 / $frames_in) : '?';
	return \%r;
}

my @cases = (
	['pingpong', '2000', ['--expect', 2000], 'one request outstanding per direct meter'],
	['pipelined', '2000', ['--expect', 2000, '--pipeline'], "a meter's two reads in one write"],
	['gateway', '2000/20', ['--expect', 100, '--per-gateway', 20, '--pipeline'],
		"the reads of a gateway's 20 meters in one write"],
);
for my $c (@cases) {
	my ($name, $gen, $pargs, $what) = @$c;
	my $r = run($name, $gen, $pargs, '--time-scale', 3600);
	ok $r->{poll_rc} == 0 && $r->{errors} == 0 && $r->{rate} > 1000,
	  "$name: $what: $r->{rate} frames/s, $r->{us_per_frame} us simulator CPU per frame, "
	  . "$r->{connections} connections, $r->{errors} bad replies";
	diag "$name: $r->{frames} frames in $r->{seconds} s = $r->{rate}/s; simulator CPU "
	  . "$r->{sim_cpu} s ($r->{us_per_frame} us/frame)";
}

# many idle connections: as many as the file limit allows, up to 20,000
my $hard = `sh -c 'ulimit -Hn'`;
chomp $hard;
my $n = $hard eq 'unlimited' || $hard > 20200 ? 20000 : $hard - 200;
{
	my $port = free_port();
	my $ready = "$tmp/ready";
	my $pp = spawn("$tmp/idle.poll", $poll, $port, 30, '--hold', '--expect', $n);
	sleep 0.1;
	my $t0 = time;
	my $sp = spawn("$tmp/idle.sim", $SIM, '--generate', $n, '--idle', '--port', $port,
		'--stats', 0, '--connect-rate', 20000, '--max-connecting', 1000,
		'--ready-file', $ready);
	my $up = wait_for(60, sub { -s $ready });
	my $secs = sprintf '%.1f', time - $t0;
	my ($rss) = slurp("/proc/$sp/status") =~ /VmRSS:\s+(\d+)/;
	ok $up, "--idle: $n connections established in $secs s (fd hard limit $hard)";
	ok $rss && $rss * 1024 / $n < 16384,
	  sprintf '--idle: %d MB resident, %.1f KB per meter and connection', ($rss // 0) / 1024,
	  ($rss // 0) / $n;
	is stop_sim($sp, 20), 0, '--idle: SIGTERM exits 0';
	kill 'TERM', $pp;
	reap($pp, 10);
	@kids = ();
}

# AddressSanitizer + UBSan build, every fault, gateways and direct meters
SKIP: {
	skip 'clang not installed', 2 unless system('clang --version >/dev/null 2>&1') == 0;
	my $asan = "$tmp/prepaid-sim-asan";
	my $inc = `pg_config --includedir`;
	chomp $inc;
	my $rc = system("clang -std=c11 -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer "
		  . "-fno-sanitize-recover=undefined -D_GNU_SOURCE -I$ROOT/codec -I$ROOT/worker/common "
		  . "-I$ROOT/worker/sim -I$inc -o $asan $ROOT/worker/sim/*.c $ROOT/worker/common/*.c "
		  . "$ROOT/codec/dlt645.c -lpq 2>$tmp/asan.build");
	is $rc, 0, 'the simulator builds with -fsanitize=address,undefined';
	skip 'no ASan build', 1 if $rc;
	local $ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=0:exitcode=97';
	local $ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1:exitcode=98';
	my $faults = 'garbage~5%@20%,duplicate~5%@20%,replay~5%@20%,bad_checksum~5%@20%,'
	  . 'disconnect~1%@10%,slow:30~10%@10%,silence~5%@5%,phase_loss@10%,undervoltage@10%,'
	  . 'unknown_meter:3,unknown_gateway:1';
	my $port = free_port();
	my $pp = spawn("$tmp/asan.poll", $poll, $port, 3, '--per-gateway', 20, '--lenient');
	sleep 0.1;
	my $sp = spawn("$tmp/asan.sim", $asan, '--generate', '600/20', '--port', $port,
		'--stats', 1, '--faults', $faults, '--truth', "$tmp/asan_truth.csv",
		'--reconnect', 50, '--heartbeat', 1, '--time-scale', 86400, '--button-delay', 60);
	reap($pp, 30);
	my $src = stop_sim($sp, 30);
	@kids = ();
	my $log = slurp("$tmp/asan.sim");
	ok defined $src && $src == 0 && $log !~ /AddressSanitizer|runtime error|LeakSanitizer/,
	  'ASan/UBSan build under faults and 3 months of simulated time: no error, no leak';
	diag join '', (split /\n/, $log)[-15 .. -1] if $src || $log =~ /Sanitizer|runtime error/;
}

done_testing();
