/*
 * net.c
 *	  Meter and gateway connections (see net.h). Per connection the daemon
 *	  keeps one struct conn (about 500 bytes with the codec's stream parser;
 *	  reads go through one shared buffer; an output buffer and a JSON line
 *	  buffer exist only while needed), so idle connections cost little.
 *	  Timeouts use two intrusive lists kept in deadline order without
 *	  sorting: requests all share one timeout (append = sorted), and the
 *	  idle list is ordered by the last received byte.
 *
 *	  The meter sockets are in an epoll set of their own, itself one source
 *	  of the main loop's set: each loop turn handles the PostgreSQL
 *	  sessions and signals first and then at most METER_BURST meter
 *	  events, so a command's claim or a NOTIFY never waits behind
 *	  thousands of poll replies.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "command.h"
#include "hex.h"
#include "log.h"
#include "meters.h"
#include "poller.h"
#include "relay.h"
#include "report.h"

#define OUT_CAP        1024 /* unsent bytes a slow socket may hold */
#define JSON_CAP       255  /* longest registration/heartbeat line */
#define READ_BUF       65536
#define ACCEPT_BURST   512
#define MAX_TIMEOUTS   3 /* consecutive request timeouts close a socket */
#define FRAME_PREAMBLE 4
#define METER_BURST    256 /* meter socket events per loop turn */

static evsrc listen_ev = {EV_LISTEN};
static evsrc meters_ev = {EV_METERS};
static int listen_fd = -1;
static int meter_epfd = -1;
static uint8_t read_buf[READ_BUF];
static conn *t_head, *t_tail; /* requests in flight and ident waits */
static conn *i_head, *i_tail; /* every open connection by last_rx */
static conn *graveyard;       /* closed this turn (t_next reused) */
static uint32_t open_count;
static int64_t accept_resume_at; /* accepting paused (out of files) until */

static void conn_close(conn *c, const char *why);
static void conn_kick(conn *c);

uint32_t
net_open_connections(void)
{
	return open_count;
}

/* --- lists --------------------------------------------------------------- */

static void
t_unlink(conn *c)
{
	if (c->t_prev)
		c->t_prev->t_next = c->t_next;
	else if (t_head == c)
		t_head = c->t_next;
	else
		return; /* not linked */
	if (c->t_next)
		c->t_next->t_prev = c->t_prev;
	else
		t_tail = c->t_prev;
	c->t_prev = c->t_next = NULL;
}

/* Appends with a deadline; keeps order when deadlines are not monotonic
 * (ident waits vs request timeouts) by walking back from the tail. */
static void
t_link(conn *c, int64_t deadline)
{
	conn *after;

	t_unlink(c);
	after = t_tail;
	c->req_deadline = deadline;
	while (after && after->req_deadline > deadline)
		after = after->t_prev;
	c->t_prev = after;
	c->t_next = after ? after->t_next : t_head;
	if (c->t_next)
		c->t_next->t_prev = c;
	else
		t_tail = c;
	if (after)
		after->t_next = c;
	else
		t_head = c;
}

static void
i_unlink(conn *c)
{
	if (c->i_prev)
		c->i_prev->i_next = c->i_next;
	else
		i_head = c->i_next;
	if (c->i_next)
		c->i_next->i_prev = c->i_prev;
	else
		i_tail = c->i_prev;
	c->i_prev = c->i_next = NULL;
}

static void
i_touch(conn *c)
{
	c->last_rx = G.now_mono;
	if (i_tail == c)
		return;
	i_unlink(c);
	c->i_prev = i_tail;
	if (i_tail)
		i_tail->i_next = c;
	else
		i_head = c;
	i_tail = c;
}

/* --- output -------------------------------------------------------------- */

static void
set_events(conn *c, bool want_out)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP |
	                                   (want_out ? EPOLLOUT : 0),
	                         .data.ptr = &c->ev};

	epoll_ctl(meter_epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static bool
conn_write(conn *c, const uint8_t *data, size_t len)
{
	ssize_t w = 0;

	if (c->out_len == 0)
	{
		w = send(c->fd, data, len, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		{
			conn_close(c, strerror(errno));
			return false;
		}
		if (w < 0)
			w = 0;
		G.stats.bytes_out += (uint64_t) w;
		if ((size_t) w == len)
			return true;
	}
	if (c->out_len + (len - (size_t) w) > OUT_CAP)
	{
		conn_close(c, "peer does not read");
		return false;
	}
	if (c->out == NULL)
	{
		c->out = malloc(OUT_CAP);
		if (c->out == NULL)
		{
			conn_close(c, "out of memory");
			return false;
		}
	}
	memcpy(c->out + c->out_len, data + w, len - (size_t) w);
	c->out_len = (uint16_t) (c->out_len + len - (size_t) w);
	set_events(c, true);
	return true;
}

static void
conn_flush(conn *c)
{
	ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);

	if (w < 0)
	{
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			conn_close(c, strerror(errno));
		return;
	}
	G.stats.bytes_out += (uint64_t) w;
	memmove(c->out, c->out + w, c->out_len - (size_t) w);
	c->out_len = (uint16_t) (c->out_len - w);
	if (c->out_len == 0)
	{
		free(c->out);
		c->out = NULL;
		set_events(c, false);
	}
}

/* --- work queue and requests --------------------------------------------- */

static bool
meter_has_work(const meter *m)
{
	return m->poll != NULL || command_has_work(m);
}

static meter *
work_pop(conn *c)
{
	meter *m = c->work_head;

	if (m)
	{
		c->work_head = m->next_work;
		if (c->work_head == NULL)
			c->work_tail = NULL;
		m->next_work = NULL;
		m->flags &= (uint8_t) ~M_QUEUED;
	}
	return m;
}

static void
work_remove(conn *c, meter *m)
{
	meter **pp = &c->work_head, *prev = NULL;

	if (!(m->flags & M_QUEUED))
		return;
	while (*pp && *pp != m)
	{
		prev = *pp;
		pp = &(*pp)->next_work;
	}
	if (*pp)
	{
		*pp = m->next_work;
		if (c->work_tail == m)
			c->work_tail = prev;
	}
	m->next_work = NULL;
	m->flags &= (uint8_t) ~M_QUEUED;
}

void
net_enqueue(meter *m, bool urgent)
{
	conn *c = m->conn;

	if (c == NULL || c->state == CS_CLOSED)
		return;
	if (urgent && (m->flags & M_QUEUED) && c->work_head != m)
		work_remove(c, m); /* a command jumps the other meters' polls */
	if (!(m->flags & M_QUEUED))
	{
		m->flags |= M_QUEUED;
		m->next_work = NULL;
		if (urgent)
		{
			m->next_work = c->work_head;
			c->work_head = m;
			if (c->work_tail == NULL)
				c->work_tail = m;
		}
		else
		{
			if (c->work_tail)
				c->work_tail->next_work = m;
			else
				c->work_head = m;
			c->work_tail = m;
		}
	}
	conn_kick(c);
}

static void
send_request(conn *c, meter *m, uint8_t purpose, const uint8_t *frame, int len,
             uint8_t func, uint32_t di)
{
	c->req = purpose;
	c->req_meter = m;
	c->req_func = func;
	c->req_di = di;
	t_link(c, G.now_mono + (int64_t) G.opts.request_timeout_ms * 1000);
	G.stats.frames_out++;
	conn_write(c, frame, (size_t) len);
}

/* Sends the next request when the socket has none outstanding. */
static void
conn_kick(conn *c)
{
	uint8_t frame[DLT645_MAX_WIRE];

	while (c->state != CS_CLOSED && c->req == REQ_NONE &&
	       (c->state == CS_METER || c->state == CS_GATEWAY))
	{
		meter *m = work_pop(c);
		uint8_t func = 0;
		uint32_t di = 0;
		int len;

		if (m == NULL)
			return;
		len = command_request(m, frame, sizeof(frame), &func, &di);
		if (len > 0)
		{
			if (func == DLT645_FN_TIME_SYNC)
			{
				G.stats.frames_out++;
				if (!conn_write(c, frame, (size_t) len))
					return;
				command_sent_noreply(m);
				if (meter_has_work(m))
					net_enqueue(m, false);
				continue;
			}
			send_request(c, m, REQ_COMMAND, frame, len, func, di);
			return;
		}
		len = poller_request(m, frame, sizeof(frame), &func, &di);
		if (len > 0)
		{
			send_request(c, m, REQ_POLL, frame, len, func, di);
			return;
		}
	}
}

/* The outstanding request ended (reply, timeout): free the socket. */
static meter *
request_done(conn *c)
{
	meter *m = c->req_meter;

	c->req = REQ_NONE;
	c->req_meter = NULL;
	t_unlink(c);
	return m;
}

/* --- attaching meters and gateways ---------------------------------------- */

static void
meter_attach(meter *m, conn *c)
{
	if (m->conn == c)
		return;
	if (m->conn)
		net_detach_meter(m);
	m->conn = c;
	relay_forget(m); /* read status word 3 at the first poll */
	G.stats.meters_connected++;
	report_connection(m);
	command_claim_soon();
}

/* Unhooks a meter from its connection without closing the socket. */
static void
meter_unhook(meter *m)
{
	conn *c = m->conn;

	if (c == NULL)
		return;
	work_remove(c, m);
	if (c->req_meter == m)
	{
		request_done(c);
		conn_kick(c);
	}
	if (m->poll)
		poller_abort(m);
	command_disconnected(m);
	m->conn = NULL;
	G.stats.meters_connected--;
	report_connection(m);
}

void
net_detach_meter(meter *m)
{
	conn *c = m->conn;

	if (c == NULL)
		return;
	if (c->state == CS_METER && c->meter == m)
	{
		conn_close(c, "meter moved or removed");
		return;
	}
	meter_unhook(m);
}

static void
attach_direct(conn *c, meter *m)
{
	if (m->conn && m->conn != c && m->conn->state == CS_METER)
	{
		G.stats.connections_replaced++;
		conn_close(m->conn, "replaced by a newer connection of the meter");
	}
	else if (m->conn && m->conn != c)
		meter_unhook(m); /* was behind a gateway */
	c->state = CS_METER;
	c->meter = m;
	meter_attach(m, c);
	log_debug("meter %lld connected from %s:%u", (long long) m->meter_id,
	          inet_ntoa((struct in_addr){c->peer_ip}), ntohs(c->peer_port));
}

static void
attach_gateway(conn *c, gateway *g)
{
	int32_t gi = gateways_index(g);
	meter **list;
	uint32_t n;

	if (g->conn && g->conn != c)
	{
		G.stats.connections_replaced++;
		conn_close(g->conn, "replaced by a newer connection of the gateway");
	}
	c->state = CS_GATEWAY;
	c->gateway = gi;
	g->conn = c;
	G.stats.gateways_connected++;
	report_gateway(g);
	gateways_members(gi, &list, &n);
	for (uint32_t i = 0; i < n; i++)
		if (list[i]->conn == NULL ||
		    list[i]->conn->state != CS_METER) /* direct link wins */
			meter_attach(list[i], c);
	log_info("gateway %s connected (%u meters)", g->serial, n);
}

void
net_refresh_gateways(void)
{
	for (uint32_t g = 0; g < n_gateways; g++)
	{
		conn *c = gateways[g]->conn;
		meter **list;
		uint32_t n;

		if (c == NULL || c->state != CS_GATEWAY)
			continue;
		c->gateway = (int32_t) g; /* indexes are stable; kept in step */
		gateways_members((int32_t) g, &list, &n);
		for (uint32_t i = 0; i < n; i++)
			if (list[i]->conn == NULL)
				meter_attach(list[i], c);
	}
}

/* --- closing ------------------------------------------------------------- */

static void
conn_close(conn *c, const char *why)
{
	conn_state was = (conn_state) c->state;

	if (was == CS_CLOSED)
		return;
	/* closed first: nothing below may send on it or close it again */
	c->state = CS_CLOSED;
	log_debug("closing connection from %s:%u: %s",
	          inet_ntoa((struct in_addr){c->peer_ip}), ntohs(c->peer_port),
	          why);
	if (was == CS_METER && c->meter)
		meter_unhook(c->meter);
	else if (was == CS_GATEWAY && c->gateway >= 0)
	{
		gateway *g = gateways[c->gateway];
		meter **list;
		uint32_t n;

		gateways_members(c->gateway, &list, &n);
		for (uint32_t i = 0; i < n; i++)
			if (list[i]->conn == c)
				meter_unhook(list[i]);
		if (g->conn == c)
		{
			g->conn = NULL;
			G.stats.gateways_connected--;
			report_gateway(g);
		}
	}
	t_unlink(c);
	i_unlink(c);
	epoll_ctl(meter_epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	open_count--;
	G.stats.connections_open--;
	c->t_next = graveyard;
	graveyard = c;
}

void
net_reap(void)
{
	while (graveyard)
	{
		conn *c = graveyard;

		graveyard = c->t_next;
		free(c->out);
		free(c->json);
		free(c);
	}
}

void
net_close_all(void)
{
	while (i_head)
		conn_close(i_head, "shutting down");
	net_reap();
}

/* --- identification and frames -------------------------------------------- */

static void
format_peer(const conn *c, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s:%u", inet_ntoa((struct in_addr){c->peer_ip}),
	         ntohs(c->peer_port));
}

static void
identify_meter(conn *c, const uint8_t addr[DLT645_ADDR_LEN],
               const dlt645_frame *f)
{
	meter *m = meters_by_addr(addr);

	if (m == NULL)
	{
		char text[13], peer[64], detail[160];

		dlt645_address_format(addr, text);
		format_peer(c, peer, sizeof(peer));
		snprintf(detail, sizeof(detail), "no meter with address %s (from %s)",
		         text, peer);
		G.stats.rejected_unknown_meter++;
		report_quarantine("unknown_meter", detail, NULL, text, f->raw,
		                  (size_t) f->len + DLT645_OVERHEAD);
		log_warn("%s", detail);
		conn_close(c, "unknown meter");
		return;
	}
	attach_direct(c, m);
	report_seen(m);
	conn_kick(c);
}

static void
bad_frame(conn *c, const dlt645_error *err, const uint8_t *bytes, size_t len)
{
	char detail[224], peer[64], e[128];

	if (err->code == DLT645_E_CHECKSUM)
		G.stats.rejected_bad_checksum++;
	else
		G.stats.rejected_bad_frame++;
	dlt645_error_format(err, e, sizeof(e));
	format_peer(c, peer, sizeof(peer));
	snprintf(detail, sizeof(detail), "%s (from %s)", e, peer);
	report_quarantine("bad_frame", detail,
	                  c->state == CS_METER ? c->meter : NULL, NULL, bytes,
	                  len);
}

static void
on_frame(conn *c, const dlt645_frame *f)
{
	dlt645_message msg;
	dlt645_error err;
	meter *m;

	G.stats.frames_in++;
	if (!dlt645_is_reply(f->control))
	{
		G.stats.rejected_unexpected++;
		return;
	}
	if (dlt645_message_parse(f, &msg, &err) != DLT645_OK)
	{
		bad_frame(c, &err, f->raw, (size_t) f->len + DLT645_OVERHEAD);
		return;
	}
	if (c->state == CS_NEW)
	{
		request_done(c); /* read-address sent, or the wait for it */
		if (msg.func == DLT645_FN_READ_ADDRESS &&
		    (msg.fields & DLT645_HAS_DATA_ADDRESS))
			identify_meter(c, msg.data_address, f);
		else
			identify_meter(c, f->address, f);
		return;
	}
	m = c->state == CS_METER ? c->meter : meters_by_addr(f->address);
	if (m == NULL || m->conn != c)
	{
		G.stats.rejected_unexpected++;
		return;
	}
	report_seen(m);
	if (c->req == REQ_NONE || c->req_meter != m || msg.func != c->req_func ||
	    (!msg.abnormal && (msg.fields & DLT645_HAS_DI) && msg.di != c->req_di))
	{
		G.stats.rejected_unexpected++;
		return;
	}
	if (msg.abnormal)
		G.stats.abnormal_replies++;
	c->timeouts = 0;
	{
		uint8_t purpose = c->req;

		request_done(c);
		if (purpose == REQ_COMMAND)
			command_reply(m, &msg);
		else if (purpose == REQ_POLL)
			poller_reply(m, &msg);
	}
	if (c->state != CS_CLOSED && m->conn == c && meter_has_work(m))
		net_enqueue(m, command_has_work(m));
	else if (c->state != CS_CLOSED)
		conn_kick(c);
}

/* Extracts "key":"value" from a JSON line (flat objects only). */
static bool
json_string(const char *line, const char *key, char *out, size_t cap)
{
	char pat[40];
	const char *p, *end;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(line, pat);
	if (p == NULL)
		return false;
	p += strlen(pat);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p++ != ':')
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p++ != '"')
		return false;
	end = strchr(p, '"');
	if (end == NULL || (size_t) (end - p) >= cap || end == p)
		return false;
	memcpy(out, p, (size_t) (end - p));
	out[end - p] = '\0';
	return true;
}

static void
on_json_line(conn *c, char *line)
{
	char type[32], serial[128];
	gateway *g;

	if (!json_string(line, "type", type, sizeof(type)))
	{
		G.stats.rejected_bad_json++;
		return;
	}
	if (strcmp(type, "heartbeat") == 0)
		return;
	if (strcmp(type, "register") != 0 ||
	    !json_string(line, "gateway", serial, sizeof(serial)))
	{
		G.stats.rejected_bad_json++;
		return;
	}
	if (c->state == CS_GATEWAY)
		return; /* repeated registration */
	if (c->state == CS_METER)
	{
		G.stats.rejected_bad_json++;
		return;
	}
	if (c->req == REQ_IDENT || c->req == REQ_NONE)
		request_done(c);
	g = gateways_by_serial(serial);
	if (g == NULL)
	{
		char detail[260], peer[64];

		format_peer(c, peer, sizeof(peer));
		snprintf(detail, sizeof(detail), "no gateway with serial %s (from %s)",
		         serial, peer);
		G.stats.rejected_unknown_gateway++;
		report_quarantine("unknown_gateway", detail, NULL, NULL,
		                  (const uint8_t *) line, strlen(line));
		log_warn("%s", detail);
		conn_close(c, "unknown gateway");
		return;
	}
	attach_gateway(c, g);
}

/* Bytes of a JSON line; returns how many were used (up to the newline). */
static size_t
take_json(conn *c, const uint8_t *p, size_t n)
{
	const uint8_t *nl = memchr(p, '\n', n);
	size_t take = nl ? (size_t) (nl - p) + 1 : n;

	if (c->json == NULL)
	{
		c->json = malloc(JSON_CAP + 1);
		if (c->json == NULL)
		{
			conn_close(c, "out of memory");
			return n;
		}
		c->json_len = 0;
	}
	for (size_t i = 0; i < take; i++)
	{
		if (p[i] == '\n')
		{
			c->json[c->json_len] = '\0';
			c->in_json = 0;
			on_json_line(c, c->json);
			if (c->state != CS_CLOSED)
			{
				free(c->json);
				c->json = NULL;
			}
			return take;
		}
		if (c->json_len < JSON_CAP)
			c->json[c->json_len++] = (char) p[i];
	}
	return take;
}

static void
feed_stream(conn *c, const uint8_t *p, size_t n)
{
	dlt645_frame frame;
	dlt645_error err;
	dlt645_event ev;
	uint64_t garbage = c->stream.garbage;

	while (c->state != CS_CLOSED &&
	       (ev = dlt645_stream_next(&c->stream, &p, &n, &frame, &err)) !=
	           DLT645_NEED_MORE)
	{
		if (ev == DLT645_FRAME)
			on_frame(c, &frame);
		else
			bad_frame(c, &err, c->stream.last, c->stream.last_len);
	}
	G.stats.rejected_garbage_bytes += c->stream.garbage - garbage;
}

/* Splits input between JSON lines (a '{' between frames) and frames. */
static void
on_bytes(conn *c, const uint8_t *p, size_t n)
{
	while (n > 0 && c->state != CS_CLOSED)
	{
		const uint8_t *brace;
		size_t chunk;

		if (c->in_json)
		{
			size_t used = take_json(c, p, n);

			p += used;
			n -= used;
			continue;
		}
		brace = memchr(p, '{', n);
		chunk = brace ? (size_t) (brace - p) : n;
		if (chunk > 0)
			feed_stream(c, p, chunk);
		p += chunk;
		n -= chunk;
		if (n == 0 || c->state == CS_CLOSED)
			break;
		if (dlt645_stream_pending(&c->stream) == 0)
			c->in_json = 1;
		else
		{
			feed_stream(c, p, 1); /* a '{' inside a frame */
			p++;
			n--;
		}
	}
}

static void
conn_readable(conn *c)
{
	ssize_t r = recv(c->fd, read_buf, sizeof(read_buf), 0);

	if (r == 0)
	{
		conn_close(c, "closed by peer");
		return;
	}
	if (r < 0)
	{
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close(c, strerror(errno));
		return;
	}
	G.stats.bytes_in += (uint64_t) r;
	i_touch(c);
	on_bytes(c, read_buf, (size_t) r);
}

/* --- accepting ------------------------------------------------------------ */

static void
accept_all(void)
{
	for (int i = 0; i < ACCEPT_BURST; i++)
	{
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(listen_fd, (struct sockaddr *) &peer, &plen,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev;
		conn *c;
		int one = 1;

		if (fd < 0)
		{
			if (errno == EMFILE || errno == ENFILE)
			{
				/* the listening socket stays readable: stop watching it for a
				 * second instead of spinning on accept */
				struct epoll_event off = {.events = 0, .data.ptr = &listen_ev};

				log_warn("cannot accept: %s with %u connections open (raise "
				         "the open-file limit); accepting again in 1 s",
				         strerror(errno), open_count);
				epoll_ctl(G.epfd, EPOLL_CTL_MOD, listen_fd, &off);
				accept_resume_at = G.now_mono + 1000000;
			}
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			         errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (G.stopping)
		{
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(conn));
		if (c == NULL)
		{
			close(fd);
			log_error("out of memory accepting a connection");
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->ev.kind = EV_CONN;
		c->fd = fd;
		c->state = CS_NEW;
		c->gateway = -1;
		c->peer_ip = peer.sin_addr.s_addr;
		c->peer_port = peer.sin_port;
		dlt645_stream_init(&c->stream);
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = &c->ev;
		if (epoll_ctl(meter_epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		{
			close(fd);
			free(c);
			continue;
		}
		open_count++;
		G.stats.connections_open++;
		G.stats.connections_accepted++;
		i_touch(c);
		/* give the device a moment to speak first (gateway registration,
		 * unsolicited frame) before asking the line for its address */
		c->req = REQ_NONE;
		t_link(c, G.now_mono + (int64_t) G.opts.ident_wait_ms * 1000);
	}
}

void
net_listen(void)
{
	struct sockaddr_in sa;
	int one = 1;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_ev};
	struct epoll_event mev = {.events = EPOLLIN, .data.ptr = &meters_ev};

	meter_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (meter_epfd < 0 || epoll_ctl(G.epfd, EPOLL_CTL_ADD, meter_epfd, &mev))
	{
		log_error("epoll: %s", strerror(errno));
		exit(1);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t) G.opts.port);
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	if (G.opts.listen_host &&
	    inet_pton(AF_INET, G.opts.listen_host, &sa.sin_addr) != 1)
	{
		struct addrinfo hints = {.ai_family = AF_INET}, *res;

		if (getaddrinfo(G.opts.listen_host, NULL, &hints, &res) != 0)
		{
			log_error("--listen: cannot resolve \"%s\"", G.opts.listen_host);
			exit(1);
		}
		sa.sin_addr = ((struct sockaddr_in *) res->ai_addr)->sin_addr;
		freeaddrinfo(res);
	}
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 ||
	    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(listen_fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    listen(listen_fd, 4096) != 0)
	{
		log_error("cannot listen on port %d: %s", G.opts.port,
		          strerror(errno));
		exit(1);
	}
	epoll_ctl(G.epfd, EPOLL_CTL_ADD, listen_fd, &ev);
	log_info("listening for meters on %s:%d",
	         G.opts.listen_host ? G.opts.listen_host : "*", G.opts.port);
}

void
net_stop_listening(void)
{
	if (listen_fd >= 0)
	{
		epoll_ctl(G.epfd, EPOLL_CTL_DEL, listen_fd, NULL);
		close(listen_fd);
		listen_fd = -1;
	}
}

static void
conn_event(conn *c, uint32_t events)
{
	if (c->state == CS_CLOSED)
		return;
	if ((events & EPOLLOUT) && c->out_len)
		conn_flush(c);
	if (c->state != CS_CLOSED &&
	    (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
		conn_readable(c);
}

void
net_event(evsrc *ev, uint32_t events)
{
	struct epoll_event evs[METER_BURST];
	int n;

	(void) events;
	if (ev->kind == EV_LISTEN)
	{
		accept_all();
		return;
	}
	n = epoll_wait(meter_epfd, evs, METER_BURST, 0);
	for (int i = 0; i < n; i++)
		conn_event((conn *) evs[i].data.ptr, evs[i].events);
}

/* --- timers --------------------------------------------------------------- */

static void
request_timeout(conn *c)
{
	uint8_t frame[32];
	int len;
	uint8_t purpose = c->req;
	meter *m;

	if (c->state == CS_NEW && purpose == REQ_NONE)
	{
		/* the device stayed silent: ask the line for its address */
		len = dlt645_build_read_address(frame, sizeof(frame), FRAME_PREAMBLE);
		send_request(c, NULL, REQ_IDENT, frame, len, DLT645_FN_READ_ADDRESS,
		             0);
		return;
	}
	G.stats.request_timeouts++;
	m = request_done(c);
	if (purpose == REQ_IDENT)
	{
		conn_close(c, "no reply to read-address");
		return;
	}
	if (++c->timeouts >= MAX_TIMEOUTS && c->state == CS_METER)
	{
		conn_close(c, "meter does not answer");
		return;
	}
	if (m && purpose == REQ_COMMAND)
		command_timeout(m);
	else if (m && purpose == REQ_POLL)
		poller_abort(m);
	if (m && m->conn == c && meter_has_work(m))
		net_enqueue(m, command_has_work(m));
	else
		conn_kick(c);
}

int64_t
net_timers(int64_t now)
{
	int64_t idle_us = (int64_t) G.opts.idle_timeout_s * 1000000;

	if (accept_resume_at && now >= accept_resume_at && listen_fd >= 0)
	{
		struct epoll_event on = {.events = EPOLLIN, .data.ptr = &listen_ev};

		epoll_ctl(G.epfd, EPOLL_CTL_MOD, listen_fd, &on);
		accept_resume_at = 0;
	}
	while (t_head && t_head->req_deadline <= now)
		request_timeout(t_head);
	while (i_head && now - i_head->last_rx >= idle_us)
		conn_close(i_head, "idle timeout");
	{
		int64_t next = t_head ? t_head->req_deadline : INT64_MAX;

		if (i_head && i_head->last_rx + idle_us < next)
			next = i_head->last_rx + idle_us;
		if (accept_resume_at && accept_resume_at < next)
			next = accept_resume_at;
		return next;
	}
}
