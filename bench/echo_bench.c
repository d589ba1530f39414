/*
 * echo_bench.c
 *	  The machine's floor for prepaid-ingest: how many request/reply
 *	  exchanges per second loopback TCP sustains with thousands of
 *	  connections and one request outstanding per connection (what
 *	  DL/T 645 allows, shared/dlt645.md 5.4), with nothing else done per
 *	  exchange. Two processes, like the daemon and the simulator: a server
 *	  that accepts N connections and answers each request of REQ bytes with
 *	  a reply of REP bytes, and a client holding the N connections that
 *	  sends the next request on a connection as soon as its reply is in.
 *	  Each side uses epoll and one recv() and one send() per exchange -- the
 *	  fewest system calls a one-outstanding-request protocol can use with
 *	  the sockets API (a reply cannot be sent before its request arrived).
 *
 *	    cc -O2 -D_GNU_SOURCE -o /tmp/echo_bench bench/echo_bench.c
 *	    /tmp/echo_bench [-c CONNS] [-t SECONDS] [-g GAP_MS] [-q REQ] [-r REP]
 *	    (bench/run_ingest.sh builds and runs it)
 *	    defaults: 10000 connections, 5 s, no gap, 20-byte requests (4 FE +
 *	    a 16-byte read), 36-byte replies (an energy-block reply)
 *
 *	  -g GAP_MS: a connection's next request goes out GAP_MS after its
 *	  reply instead of at once, as a meter's next poll comes an interval
 *	  later. Then no request carries the acknowledgement of the previous
 *	  reply: TCP sends it on its own after the delayed-ACK timeout (40 ms
 *	  or more), one more segment per exchange. Back to back (no gap) is
 *	  the cheapest case; what a gateway socket carrying many meters gets.
 *
 *	  Prints one line, CPU from /proc of each process over the measured
 *	  window (after 1 s of warm-up):
 *	    echo floor: 10000 connections, 120000 exchanges/s; CPU per exchange
 *	    server 7.9 us, client 8.1 us, both 16.0 us
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 1024
#define MAX_MSG    256

static int conns = 10000, secs = 5, gap_ms = 0, req_len = 20, rep_len = 36;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* utime + stime of a process, in microseconds (from /proc, clock ticks) */
static int64_t
cpu_us(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	f = fopen(path, "r");
	if (f == NULL || fgets(buf, sizeof(buf), f) == NULL)
	{
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	           &ut, &st) != 2)
		return 0;
	return (int64_t) (ut + st) * 1000000 / sysconf(_SC_CLK_TCK);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
	{
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Server: accept, then answer every complete request with one reply. */
static void
serve(int lfd)
{
	struct epoll_event ev = {.events = EPOLLIN}, evs[MAX_EVENTS];
	int ep = epoll_create1(0);
	static uint8_t have[1 << 17]; /* bytes of a partial request per fd */
	uint8_t buf[4096], rep[MAX_MSG];

	memset(rep, 0x33, sizeof(rep));
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;)
	{
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);

		for (int i = 0; i < n; i++)
		{
			int fd = evs[i].data.fd, got, reqs;

			if (fd == lfd)
			{
				int c, one = 1;

				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
				{
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			got = (int) recv(fd, buf, sizeof(buf), 0);
			if (got <= 0)
			{
				if (got == 0 || (errno != EAGAIN && errno != EINTR))
					close(fd);
				continue;
			}
			reqs = (have[fd] + got) / req_len;
			have[fd] = (uint8_t) ((have[fd] + got) % req_len);
			for (int r = 0; r < reqs; r++)
				if (send(fd, rep, (size_t) rep_len, MSG_NOSIGNAL) < 0)
					break;
		}
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: echo_bench [-c CONNS] [-t SECONDS] [-g GAP_MS] "
	                "[-q REQ_BYTES] [-r REP_BYTES]\n");
	exit(2);
}

static void
parse_args(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "c:t:g:q:r:")) != -1)
	{
		switch (c)
		{
			case 'c':
				conns = atoi(optarg);
				break;
			case 't':
				secs = atoi(optarg);
				break;
			case 'g':
				gap_ms = atoi(optarg);
				break;
			case 'q':
				req_len = atoi(optarg);
				break;
			case 'r':
				rep_len = atoi(optarg);
				break;
			default:
				usage();
		}
	}
	if (optind < argc || conns < 1 || secs < 1 || gap_ms < 0 || req_len < 1 ||
	    req_len > MAX_MSG || rep_len < 1 || rep_len > MAX_MSG)
		usage();
}

/* Connects the client's sockets to the server; returns an epoll set. */
static int
connect_all(const struct sockaddr_in *sa, int *fds)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int ep = epoll_create1(0);

	for (int i = 0; i < conns; i++)
	{
		int one = 1;

		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 ||
		    connect(fds[i], (const struct sockaddr *) sa, sizeof(*sa)) != 0)
		{
			fprintf(stderr, "echo_bench: connection %d: %s\n", i,
			        strerror(errno));
			return -1;
		}
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.data.u32 = (uint32_t) i;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	return ep;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	struct epoll_event evs[MAX_EVENTS];
	uint8_t req[MAX_MSG], buf[4096];
	int lfd, ep, *fds, *ring, r_head = 0, r_len = 0;
	int64_t *due;
	uint16_t *have;
	pid_t server;
	int64_t start, t0 = 0, c0 = 0, s0 = 0, end;
	long long done = 0, at_t0 = 0;

	parse_args(argc, argv);
	raise_nofile();
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *) &sa, &sl) != 0)
	{
		perror("echo_bench: listen");
		return 1;
	}
	server = fork();
	if (server == 0)
	{
		serve(lfd);
		_exit(0);
	}
	close(lfd);
	memset(req, 0xFE, sizeof(req));
	fds = calloc((size_t) conns, sizeof(int));
	have = calloc((size_t) conns, sizeof(uint16_t));
	ring = calloc((size_t) conns, sizeof(int)); /* waiting out the gap */
	due = calloc((size_t) conns, sizeof(int64_t));
	ep = connect_all(&sa, fds);
	if (ep < 0)
	{
		kill(server, SIGKILL);
		return 1;
	}
	for (int i = 0; i < conns; i++)
		send(fds[i], req, (size_t) req_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	start = now_us();
	end = start + (int64_t) (secs + 1) * 1000000;
	for (int64_t now = start; now < end; now = now_us())
	{
		int wait_ms = r_len ? (int) ((due[r_head] - now + 999) / 1000) : 100;
		int n = epoll_wait(ep, evs, MAX_EVENTS, wait_ms < 0 ? 0 : wait_ms);

		if (t0 == 0 && now - start >= 1000000)
		{
			t0 = now;
			at_t0 = done;
			c0 = cpu_us(getpid());
			s0 = cpu_us(server);
		}
		for (int i = 0; i < n; i++)
		{
			int ci = (int) evs[i].data.u32;
			int got = (int) recv(fds[ci], buf, sizeof(buf), MSG_DONTWAIT);

			if (got <= 0)
				continue;
			have[ci] = (uint16_t) (have[ci] + got);
			if (have[ci] < rep_len)
				continue;
			have[ci] = (uint16_t) (have[ci] - rep_len);
			done++;
			if (gap_ms == 0)
			{
				send(fds[ci], req, (size_t) req_len,
				     MSG_NOSIGNAL | MSG_DONTWAIT);
				continue;
			}
			/* one gap for all: the ring stays in due order */
			ring[(r_head + r_len) % conns] = ci;
			due[(r_head + r_len) % conns] = now + gap_ms * 1000LL;
			r_len++;
		}
		now = now_us();
		while (r_len > 0 && due[r_head] <= now)
		{
			send(fds[ring[r_head]], req, (size_t) req_len,
			     MSG_NOSIGNAL | MSG_DONTWAIT);
			r_head = (r_head + 1) % conns;
			r_len--;
		}
	}
	{
		double dt = (double) (now_us() - t0) / 1e6;
		long long x = done - at_t0;
		double cu = (double) (cpu_us(getpid()) - c0) / (double) x;
		double su = (double) (cpu_us(server) - s0) / (double) x;

		printf("echo floor: %d connections, gap %d ms, %.0f exchanges/s "
		       "(%d-byte requests, %d-byte replies, one outstanding per "
		       "connection); CPU per exchange server %.1f us, client %.1f "
		       "us, both %.1f us\n",
		       conns, gap_ms, (double) x / dt, req_len, rep_len, su, cu,
		       su + cu);
	}
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	return 0;
}
