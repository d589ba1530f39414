/*
 * sim_net.c
 *	  The simulator's sockets: one non-blocking TCP client connection per
 *	  direct meter and per gateway, all in one epoll set. Connects are
 *	  paced (--connect-rate, at most --max-connecting in flight) so tens of
 *	  thousands of devices do not overflow the daemon's accept queue; a
 *	  closed connection comes back after --reconnect ms, doubling up to 60 s
 *	  while the peer keeps closing it quickly. A gateway registers with its
 *	  JSON line and sends heartbeats when idle. Replies are appended to the
 *	  connection's fixed output buffer and written once per read batch (or
 *	  later, when a slow-reply fault holds them); no allocation per frame.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define MAX_EVENTS        512
#define RECV_BUF          65536
#define CONNECT_TIMEOUT   (10 * 1000000LL)
#define QUICK_CLOSE_US    (5 * 1000000LL)
#define MAX_BACKOFF_MS    60000
#define STEADY_BACKOFF_MS 1000

static struct sockaddr_in peer;
static uint8_t rbuf[RECV_BUF];

static void conn_close(sim_ctx *ctx, int ci, const char *why, bool fault);

static void
queue_push(sim_ctx *ctx, int ci)
{
	sim_conn *c = &ctx->conns[ci];

	c->state = SIM_CONN_QUEUED;
	c->next_queued = -1;
	if (ctx->queue_tail >= 0)
		ctx->conns[ctx->queue_tail].next_queued = ci;
	else
		ctx->queue_head = ci;
	ctx->queue_tail = ci;
}

static int
queue_pop(sim_ctx *ctx)
{
	int ci = ctx->queue_head;

	if (ci >= 0)
	{
		ctx->queue_head = ctx->conns[ci].next_queued;
		if (ctx->queue_head < 0)
			ctx->queue_tail = -1;
	}
	return ci;
}

static void
set_events(sim_ctx *ctx, int ci, bool want_out)
{
	struct epoll_event ev;

	if (ctx->conns[ci].epoll_out == want_out)
		return;
	ctx->conns[ci].epoll_out = want_out;
	ev.events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0);
	ev.data.u32 = (uint32_t) ci;
	epoll_ctl(ctx->epfd, EPOLL_CTL_MOD, ctx->conns[ci].fd, &ev);
}

/* Arms the connection's one timer for its next duty. */
static void
rearm(sim_ctx *ctx, int ci)
{
	sim_conn *c = &ctx->conns[ci];
	int64_t at = SIM_NEVER;

	if (c->state == SIM_CONN_CONNECTING)
		at = c->up_since + CONNECT_TIMEOUT;
	else if (c->state == SIM_CONN_UP)
	{
		if (c->hold_until > 0)
			at = c->hold_until;
		if (c->is_gateway && ctx->o.heartbeat_s > 0 && !ctx->o.idle)
		{
			int64_t hb = c->last_tx + (int64_t) ctx->o.heartbeat_s * 1000000;

			at = hb < at ? hb : at;
		}
	}
	else if (c->state == SIM_CONN_WAIT)
		at = c->timer_at;
	if (at != c->timer_at || c->heap_pos < 0)
		sim_timer_set(ctx, ci, at);
}

static void
flush(sim_ctx *ctx, int ci)
{
	sim_conn *c = &ctx->conns[ci];
	bool pending;

	if (c->state != SIM_CONN_UP)
		return;
	if (c->hold_until > 0)
	{
		if (mono_us() < c->hold_until)
			return;
		c->hold_until = 0;
		rearm(ctx, ci);
	}
	while (c->out_off < c->out_len)
	{
		ssize_t n = send(c->fd, c->out + c->out_off,
		                 (size_t) (c->out_len - c->out_off),
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(ctx, ci, strerror(errno), false);
			return;
		}
		c->out_off = (uint16_t) (c->out_off + n);
		ctx->st.bytes_out += (uint64_t) n;
		c->last_tx = mono_us();
	}
	pending = c->out_off < c->out_len;
	if (!pending)
	{
		c->out_off = c->out_len = 0;
		if (c->want_close)
		{
			conn_close(ctx, ci, "fault: disconnect", true);
			return;
		}
	}
	set_events(ctx, ci, pending);
}

int
sim_net_send(sim_ctx *ctx, int ci, const uint8_t *bytes, size_t len)
{
	sim_conn *c = &ctx->conns[ci];

	if (c->state != SIM_CONN_UP)
		return -1;
	if (c->out_off > 0 && c->out_len + len > SIM_OUT_CAP)
	{
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len = (uint16_t) (c->out_len - c->out_off);
		c->out_off = 0;
	}
	if (c->out_len + len > SIM_OUT_CAP)
	{
		ctx->st.tx_overflow++;
		return -1;
	}
	memcpy(c->out + c->out_len, bytes, len);
	c->out_len = (uint16_t) (c->out_len + len);
	return 0;
}

void
sim_net_hold(sim_ctx *ctx, int ci, int64_t until)
{
	ctx->conns[ci].hold_until = until;
	rearm(ctx, ci);
}

void
sim_net_close_after_send(sim_ctx *ctx, int ci)
{
	ctx->conns[ci].want_close = 1;
}

static void
send_text(sim_ctx *ctx, int ci, const char *text)
{
	sim_net_send(ctx, ci, (const uint8_t *) text, strlen(text));
}

static void
on_up(sim_ctx *ctx, int ci)
{
	sim_conn *c = &ctx->conns[ci];
	int64_t now = mono_us();

	c->state = SIM_CONN_UP;
	c->epoll_out = 1; /* registered for the connect */
	set_events(ctx, ci, false);
	c->up_since = now;
	c->last_tx = now;
	c->out_off = c->out_len = 0;
	c->hold_until = 0;
	c->want_close = 0;
	dlt645_stream_init(&c->rx);
	ctx->connecting--;
	ctx->up++;
	ctx->st.connects++;
	if (!c->ever_up)
	{
		c->ever_up = 1;
		ctx->ever_up++;
	}
	if (c->is_gateway)
	{
		const sim_gateway *g = &ctx->gateways[c->owner];
		char line[160];

		snprintf(
		    line, sizeof(line),
		    "{\"type\":\"register\",\"gateway\":\"%s\",\"imei\":\"%s\"}\n",
		    g->serial, g->imei);
		send_text(ctx, ci, line);
	}
	else if (ctx->o.announce)
	{
		uint8_t frame[DLT645_MAX_WIRE];
		int n = sim_proto_announce(ctx, &ctx->meters[c->owner], frame,
		                           sizeof(frame));

		if (n > 0)
			sim_net_send(ctx, ci, frame, (size_t) n);
	}
	flush(ctx, ci);
	if (c->state == SIM_CONN_UP)
		rearm(ctx, ci);
}

static void
conn_close(sim_ctx *ctx, int ci, const char *why, bool fault)
{
	sim_conn *c = &ctx->conns[ci];
	int64_t now = mono_us();
	uint64_t jitter;
	const char *name = c->is_gateway ? ctx->gateways[c->owner].serial
	                                 : ctx->meters[c->owner].addr_text;

	if (c->fd >= 0)
	{
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	if (c->state == SIM_CONN_UP)
	{
		ctx->up--;
		ctx->st.disconnects++;
		ctx->st.garbage_in += c->rx.garbage;
		log_debug("%s: connection closed: %s", name, why);
		if (fault || now - c->up_since >= QUICK_CLOSE_US)
			c->backoff_ms = (uint32_t) ctx->o.reconnect_ms;
		else
			c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2
			                              : (uint32_t) ctx->o.reconnect_ms;
	}
	else
	{
		if (c->state == SIM_CONN_CONNECTING)
			ctx->connecting--;
		ctx->st.connect_failures++;
		log_debug("%s: connect failed: %s", name, why);
		c->backoff_ms =
		    c->backoff_ms ? c->backoff_ms * 2 : (uint32_t) ctx->o.reconnect_ms;
	}
	if (c->backoff_ms > MAX_BACKOFF_MS)
		c->backoff_ms = MAX_BACKOFF_MS;
	if (c->backoff_ms < 1)
		c->backoff_ms = 1;
	c->state = SIM_CONN_WAIT;
	c->out_off = c->out_len = 0;
	c->hold_until = 0;
	c->want_close = 0;
	jitter =
	    sim_mix((uint64_t) now ^ (uint64_t) ci) % (c->backoff_ms / 10 + 1);
	sim_timer_set(ctx, ci,
	              now + ((int64_t) c->backoff_ms + (int64_t) jitter) * 1000);
}

static void
start_connect(sim_ctx *ctx, int ci)
{
	sim_conn *c = &ctx->conns[ci];
	struct epoll_event ev;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	c->state = SIM_CONN_CONNECTING;
	c->up_since = mono_us();
	ctx->connecting++;
	if (fd < 0)
	{
		conn_close(ctx, ci, strerror(errno), false);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	ev.events = EPOLLOUT | EPOLLRDHUP;
	ev.data.u32 = (uint32_t) ci;
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
	{
		conn_close(ctx, ci, strerror(errno), false);
		return;
	}
	if (connect(fd, (struct sockaddr *) &peer, sizeof(peer)) == 0)
		on_up(ctx, ci);
	else if (errno == EINPROGRESS)
		rearm(ctx, ci);
	else
		conn_close(ctx, ci, strerror(errno), false);
}

static void
on_readable(sim_ctx *ctx, int ci)
{
	sim_conn *c = &ctx->conns[ci];

	for (int round = 0; round < 4 && c->state == SIM_CONN_UP; round++)
	{
		ssize_t got = recv(c->fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		const uint8_t *p = rbuf;
		size_t n;
		dlt645_frame frame;
		dlt645_event ev;

		if (got == 0)
		{
			conn_close(ctx, ci, "closed by the daemon", false);
			return;
		}
		if (got < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(ctx, ci, strerror(errno), false);
			break;
		}
		ctx->st.bytes_in += (uint64_t) got;
		n = (size_t) got;
		while ((ev = dlt645_stream_next(&c->rx, &p, &n, &frame, NULL)) !=
		       DLT645_NEED_MORE)
		{
			if (ev == DLT645_FRAME)
				sim_proto_frame(ctx, ci, &frame);
			else
				ctx->st.bad_frames_in++;
		}
		if ((size_t) got < sizeof(rbuf))
			break;
	}
	if (c->state == SIM_CONN_UP && c->out_len > c->out_off)
		flush(ctx, ci);
}

static void
on_event(sim_ctx *ctx, int ci, uint32_t events)
{
	sim_conn *c = &ctx->conns[ci];

	if (c->state == SIM_CONN_CONNECTING)
	{
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0 || (events & (EPOLLERR | EPOLLHUP)))
			conn_close(ctx, ci, strerror(err ? err : ECONNREFUSED), false);
		else if (events & EPOLLOUT)
			on_up(ctx, ci);
		return;
	}
	if (c->state != SIM_CONN_UP)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		on_readable(ctx, ci);
	if (c->state == SIM_CONN_UP && (events & EPOLLOUT))
		flush(ctx, ci);
}

static void
on_timer(sim_ctx *ctx, int ci, int64_t now)
{
	sim_conn *c = &ctx->conns[ci];

	switch (c->state)
	{
		case SIM_CONN_WAIT:
			queue_push(ctx, ci);
			break;
		case SIM_CONN_CONNECTING:
			conn_close(ctx, ci, "connect timed out", false);
			break;
		case SIM_CONN_UP:
			if (c->hold_until > 0 && now >= c->hold_until)
				flush(ctx, ci);
			if (c->state == SIM_CONN_UP && c->is_gateway &&
			    ctx->o.heartbeat_s > 0 && !ctx->o.idle &&
			    now - c->last_tx >= (int64_t) ctx->o.heartbeat_s * 1000000 &&
			    c->out_len == 0)
			{
				send_text(ctx, ci, "{\"type\":\"heartbeat\"}\n");
				ctx->st.heartbeats++;
				flush(ctx, ci);
			}
			if (c->state == SIM_CONN_UP)
				rearm(ctx, ci);
			break;
	}
}

/* Opens queued connections as the pace and the in-flight limit allow. */
static void
pace_connects(sim_ctx *ctx, int64_t now)
{
	int64_t burst = ctx->o.connect_rate / 20 + 1;

	ctx->pace_tokens += (now - ctx->pace_start) * ctx->o.connect_rate;
	ctx->pace_start = now;
	if (ctx->pace_tokens > burst * 1000000)
		ctx->pace_tokens = burst * 1000000;
	while (ctx->queue_head >= 0 && ctx->pace_tokens >= 1000000 &&
	       ctx->connecting < ctx->o.max_connecting)
	{
		ctx->pace_tokens -= 1000000;
		start_connect(ctx, queue_pop(ctx));
	}
}

int
sim_net_init(sim_ctx *ctx)
{
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_port = htons((uint16_t) ctx->o.port);
	if (inet_pton(AF_INET, ctx->o.host, &peer.sin_addr) != 1)
	{
		log_error("--host must be an IPv4 address, not \"%s\"", ctx->o.host);
		return -1;
	}
	ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ctx->epfd < 0)
	{
		log_error("epoll_create1: %s", strerror(errno));
		return -1;
	}
	ctx->queue_head = ctx->queue_tail = -1;
	for (int i = 0; i < ctx->nconns; i++)
		queue_push(ctx, i);
	ctx->pace_start = mono_us();
	ctx->pace_tokens = 1000000;
	return 0;
}

static void
progress(sim_ctx *ctx, int64_t now, int64_t *last, uint64_t *last_frames)
{
	char simt[40];
	int64_t dt = now - *last;

	if (ctx->o.stats_s <= 0 || dt < (int64_t) ctx->o.stats_s * 1000000)
		return;
	simclock_format(sim_now(ctx), simt, sizeof(simt));
	log_info("sim %.19s: %d/%d connections up, frames in %llu (%llu/s), "
	         "out %llu, errors %llu, relay ops %llu, faults %llu",
	         simt, ctx->up, ctx->nconns,
	         (unsigned long long) ctx->st.frames_in,
	         (unsigned long long) ((ctx->st.frames_in - *last_frames) *
	                               1000000 / (uint64_t) dt),
	         (unsigned long long) ctx->st.frames_out,
	         (unsigned long long) ctx->st.errors,
	         (unsigned long long) ctx->st.relay_ops,
	         (unsigned long long) ctx->st.faults);
	*last = now;
	*last_frames = ctx->st.frames_in;
}

static void
check_ready(sim_ctx *ctx)
{
	FILE *fp;

	if (ctx->all_up_reported || ctx->ever_up < ctx->nconns)
		return;
	ctx->all_up_reported = true;
	log_info("all %d connections established", ctx->nconns);
	if (ctx->o.ready_file && (fp = fopen(ctx->o.ready_file, "w")) != NULL)
	{
		fprintf(fp, "%d\n", ctx->nconns);
		fclose(fp);
	}
}

int
sim_net_run(sim_ctx *ctx, volatile sig_atomic_t *stop)
{
	struct epoll_event events[MAX_EVENTS];
	int64_t last_stats = mono_us(), end = SIM_NEVER;
	uint64_t last_frames = 0;

	if (ctx->o.duration_ms > 0)
		end = ctx->mono_start + ctx->o.duration_ms * 1000;
	while (!*stop)
	{
		int64_t now = mono_us(), next = sim_timer_next(ctx), wait_us;
		int n, ci;

		pace_connects(ctx, now);
		wait_us = 100000;
		if (next != SIM_NEVER && next - now < wait_us)
			wait_us = next - now;
		if (ctx->queue_head >= 0 && ctx->connecting < ctx->o.max_connecting &&
		    wait_us > 1000)
			wait_us = 1000;
		if (wait_us < 0)
			wait_us = 0;
		n = epoll_wait(ctx->epfd, events, MAX_EVENTS,
		               (int) ((wait_us + 999) / 1000));
		if (n < 0 && errno != EINTR)
		{
			log_error("epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++)
			on_event(ctx, (int) events[i].data.u32, events[i].events);
		now = mono_us();
		while ((ci = sim_timer_due(ctx, now)) >= 0)
			on_timer(ctx, ci, now);
		sim_truth_flush(ctx, false);
		check_ready(ctx);
		progress(ctx, now, &last_stats, &last_frames);
		if (now >= end)
			break;
	}
	return 0;
}

void
sim_net_close_all(sim_ctx *ctx)
{
	for (int i = 0; i < ctx->nconns; i++)
	{
		sim_conn *c = &ctx->conns[i];

		if (c->state == SIM_CONN_UP)
		{
			flush(ctx, i);
			ctx->st.garbage_in += c->rx.garbage;
		}
		if (c->fd >= 0)
		{
			close(c->fd);
			c->fd = -1;
		}
	}
	if (ctx->epfd >= 0)
		close(ctx->epfd);
	ctx->epfd = -1;
}
