/*
 * sim_poll.c
 *	  A minimal polling "daemon" for prepaid-sim's load test (not part of
 *	  the product): listens, identifies each direct meter with read-address
 *	  (or derives a gateway's meters from --per-gateway K and the serial
 *	  GW<n> that --generate gives), then reads the energy block and status
 *	  word 3 of its meters back to back, one request outstanding per
 *	  connection, as fast as replies come. Checks every reply (checksum,
 *	  rate registers summing to the total, registers never going back) and
 *	  prints the frame rate.
 *
 *	  sim_poll PORT SECONDS [--per-gateway K] [--expect N] [--pipeline]
 *	           [--hold] [--lenient]
 *	  --pipeline  send the reads of all meters of a connection in one write
 *	  --hold      only identify direct meters, then hold the connections
 *	  --lenient   count errors but do not fail on them (fault injection)
 *	  Output: "frames=N seconds=S rate=R connections=C identified=I
 *	  errors=E"; exit 1 on any error (unless --lenient) or if fewer than N
 *	  connections were seen (--expect).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dlt645.h"

#define MAX_METERS 64

typedef struct pconn
{
	int fd;
	int identified;
	int nmeters;
	int next;        /* meter to read next */
	int step;        /* 0 energy block, 1 status word */
	int outstanding; /* replies still expected */
	int64_t last_total[MAX_METERS];
	uint8_t addr[MAX_METERS][DLT645_ADDR_LEN];
	char line[128];
	int line_len;
	dlt645_stream rx;
} pconn;

static long long frames, errors, identified;
static int per_gateway, pipeline, hold, lenient;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One request (or, with --pipeline, the whole batch) for the connection. */
static void
send_next(pconn *c)
{
	uint8_t buf[2 * MAX_METERS * 20 + DLT645_MAX_WIRE];
	int n = 0;

	if (!c->identified)
		n = dlt645_build_read_address(buf, sizeof(buf), 4);
	else if (hold)
		return;
	else if (pipeline)
	{
		/* every meter of the connection: energy block and status word */
		for (int i = 0; i < c->nmeters; i++)
		{
			n += dlt645_build_read(buf + n, sizeof(buf) - (size_t) n, 4,
			                       c->addr[i], DLT645_DI_FORWARD_ACTIVE_BLOCK);
			n += dlt645_build_read(buf + n, sizeof(buf) - (size_t) n, 4,
			                       c->addr[i], DLT645_DI_STATUS_WORD_3);
		}
		c->outstanding = 2 * c->nmeters;
	}
	else
	{
		n = dlt645_build_read(buf, sizeof(buf), 4, c->addr[c->next],
		                      c->step == 0 ? DLT645_DI_FORWARD_ACTIVE_BLOCK
		                                   : DLT645_DI_STATUS_WORD_3);
		c->outstanding = 1;
	}
	if (send(c->fd, buf, (size_t) n, MSG_NOSIGNAL) != n)
		errors++;
}

static int
meter_index(const pconn *c, const uint8_t *addr)
{
	for (int i = 0; i < c->nmeters; i++)
		if (memcmp(c->addr[i], addr, DLT645_ADDR_LEN) == 0)
			return i;
	return -1;
}

static void
check_energy(pconn *c, int k, const dlt645_message *msg)
{
	dlt645_value v[DLT645_MAX_VALUES];
	int n = dlt645_message_values(msg, NULL, v, DLT645_MAX_VALUES, NULL, NULL);
	int64_t sum = 0;

	if (n < 1)
	{
		errors++;
		return;
	}
	for (int i = 1; i < n; i++)
		sum += v[i].num;
	if ((n > 1 && sum != v[0].num) || v[0].num < c->last_total[k])
	{
		fprintf(stderr, "bad energy reply: total %lld rates %lld last %lld\n",
		        (long long) v[0].num, (long long) sum,
		        (long long) c->last_total[k]);
		errors++;
	}
	c->last_total[k] = v[0].num;
}

static void
on_frame(pconn *c, const dlt645_frame *f)
{
	dlt645_message msg;
	int k;

	frames++;
	if (dlt645_message_parse(f, &msg, NULL) != DLT645_OK || msg.abnormal)
	{
		errors++;
		return;
	}
	if (!c->identified)
	{
		if (msg.func != DLT645_FN_READ_ADDRESS)
			return;
		memcpy(c->addr[0], msg.data_address, DLT645_ADDR_LEN);
		c->nmeters = 1;
		c->identified = 1;
		identified++;
		send_next(c);
		return;
	}
	if ((k = meter_index(c, msg.address)) < 0)
	{
		errors++;
		return;
	}
	if (msg.di == DLT645_DI_FORWARD_ACTIVE_BLOCK)
		check_energy(c, k, &msg);
	if (!pipeline && ++c->step == 2)
	{
		c->step = 0;
		c->next = (c->next + 1) % c->nmeters;
	}
	if (--c->outstanding <= 0)
		send_next(c);
}

/* "GW000003" with K meters per gateway: meters 2K+1 .. 3K. */
static void
on_register(pconn *c)
{
	const char *p = strstr(c->line, "\"gateway\":\"GW");
	long g;

	if (p == NULL || per_gateway <= 0)
		return;
	g = strtol(p + 13, NULL, 10);
	c->nmeters = per_gateway > MAX_METERS ? MAX_METERS : per_gateway;
	for (int i = 0; i < c->nmeters; i++)
	{
		char text[32];

		snprintf(text, sizeof(text), "%012ld",
		         ((g - 1) * per_gateway + i + 1) % 1000000000000L);
		dlt645_address_parse(text, c->addr[i], NULL);
	}
	c->identified = 1;
	identified++;
	send_next(c);
}

static void
on_data(pconn *c, const uint8_t *buf, size_t n)
{
	dlt645_frame f;
	dlt645_event ev;

	/* JSON lines (registration, heartbeats) come before or between frames */
	while (n > 0 && (c->line_len > 0 || buf[0] == '{'))
	{
		if (c->line_len < (int) sizeof(c->line) - 1)
			c->line[c->line_len++] = (char) buf[0];
		if (buf[0] == '\n')
		{
			c->line[c->line_len] = '\0';
			if (strstr(c->line, "register"))
				on_register(c);
			c->line_len = 0;
		}
		buf++;
		n--;
	}
	while ((ev = dlt645_stream_next(&c->rx, &buf, &n, &f, NULL)) !=
	       DLT645_NEED_MORE)
		if (ev == DLT645_FRAME)
			on_frame(c, &f);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in a;
	struct epoll_event ev, events[256];
	int ls, ep, one = 1, expect = 0, conns = 0;
	int64_t start = 0, end, seconds;
	uint8_t buf[65536];

	if (argc < 3)
	{
		fprintf(stderr, "usage: sim_poll PORT SECONDS [--per-gateway K] "
		                "[--expect N]\n");
		return 2;
	}
	seconds = atoi(argv[2]);
	for (int i = 3; i < argc; i++)
	{
		if (strcmp(argv[i], "--per-gateway") == 0 && i + 1 < argc)
			per_gateway = atoi(argv[++i]);
		else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
			expect = atoi(argv[++i]);
		else if (strcmp(argv[i], "--pipeline") == 0)
			pipeline = 1;
		else if (strcmp(argv[i], "--hold") == 0)
			hold = 1;
		else if (strcmp(argv[i], "--lenient") == 0)
			lenient = 1;
	}
	{
		struct rlimit rl;

		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t) atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *) &a, sizeof(a)) != 0 ||
	    listen(ls, 4096) != 0)
	{
		perror("listen");
		return 2;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	end = now_us() + 30 * 1000000LL; /* wait at most 30 s for a first one */
	while (now_us() < end)
	{
		int n = epoll_wait(ep, events, 256, 100);

		for (int i = 0; i < n; i++)
		{
			pconn *c = events[i].data.ptr;

			if (c == NULL)
			{
				int fd;

				/* drain the accept queue */
				while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0)
				{
					setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one,
					           sizeof(one));
					c = calloc(1, sizeof(pconn));
					c->fd = fd;
					dlt645_stream_init(&c->rx);
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
					if (conns++ == 0)
					{
						start = now_us();
						end = start + seconds * 1000000;
					}
					if (per_gateway <= 0)
						send_next(c);
				}
				continue;
			}
			ssize_t got = recv(c->fd, buf, sizeof(buf), 0);

			if (got <= 0)
			{
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				continue;
			}
			on_data(c, buf, (size_t) got);
		}
	}
	{
		double s = (double) (now_us() - start) / 1e6;

		printf(
		    "frames=%lld seconds=%.2f rate=%.0f connections=%d errors=%lld\n",
		    frames, s, s > 0 ? (double) frames / s : 0.0, conns, errors);
	}
	return errors > 0 || conns < expect ? 1 : 0;
}
