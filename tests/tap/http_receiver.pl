#!/usr/bin/perl
# A small HTTP receiver on 127.0.0.1 for the forwarding test. Serves one
# request at a time. Behaviour per request comes from a list of modes given
# on the command line, used in order, then "ok": "500" answers 500, "422"
# answers 422, "hang:N" waits N seconds before answering, "ok" answers 200.
# Like a real integration platform it honours the Idempotency-Key: the first
# accepted request of a key is appended to the log as
# "key<TAB>signature-ok<TAB>body"; a repeat (say, of a request whose client
# had timed out) is answered 200 and only counted in LOG.dup. Stops by itself
# after 120 seconds.
use strict;
use warnings;
use IO::Socket::INET;
use Digest::SHA qw(hmac_sha256_hex);

my ($port, $log, $secret, @modes) = @ARGV;
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
	Proto => 'tcp', Listen => 16, ReuseAddr => 1) or die "listen: $!";
$SIG{ALRM} = sub { exit 0 };
alarm 120;
while (my $c = $srv->accept) {
	my ($len, %h) = (0);
	my $line = <$c>;
	next unless defined $line;
	while (defined($line = <$c>)) {
		$line =~ s/\r?\n$//;
		last if $line eq '';
		my ($k, $v) = split /:\s*/, $line, 2;
		$h{lc $k} = $v;
	}
	my $body = '';
	read($c, $body, $h{'content-length'} // 0);
	my $mode = shift(@modes) // 'ok';
	if ($mode =~ /^hang:(\d+)/) { sleep $1; $mode = 'ok'; }
	my $sig_ok = ($h{'x-prepaid-signature'} // '') eq 'sha256=' . hmac_sha256_hex($body, $secret) ? 1 : 0;
	my ($code, $text) = $mode eq '500' ? (500, 'server error')
		: $mode eq '422' ? (422, 'unknown property in payload') : (200, 'accepted');
	if ($code == 200) {
		my $key = $h{'idempotency-key'} // '';
		my $seen = 0;
		if (open my $in, '<', $log) { while (<$in>) { $seen = 1 if (split /\t/)[0] eq $key } close $in }
		open my $fh, '>>', $seen ? "$log.dup" : $log or die;
		print $fh join("\t", $key, $sig_ok, $body), "\n";
		close $fh;
	}
	print $c "HTTP/1.1 $code X\r\nContent-Type: text/plain\r\nContent-Length: " . length($text)
		. "\r\nConnection: close\r\n\r\n$text";
	close $c;
}
