/*
 * report.c
 *	  Presence, quarantine, counters, map reload and prune on the reports
 *	  session (see report.h). Changes are collected in memory and sent at
 *	  most once a second as one call each, so a burst of connections or a
 *	  steady stream of frames costs a few statements, not one per event.
 *	  A meter is reported as seen at most once a minute (meter.last_seen
 *	  is written no more often), so a park polled every few seconds does
 *	  not send every meter's id every second.
 */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "hex.h"
#include "log.h"
#include "meters.h"
#include "net.h"

#define FLUSH_US        1000000
#define PRUNE_US        (3600LL * 1000000)
#define BAD_FRAME_BURST 10 /* bad_frame samples per minute */
#define SEEN_EVERY_US   (60LL * 1000000)

typedef struct strbuf
{
	char *p;
	size_t len, cap;
} strbuf;

static pgsess *session;
static meter *presence_head; /* meters whose state or liveness changed */
static int64_t next_flush, next_stats, next_prune;
static strbuf quarantine_json; /* collected items */
static int n_quarantine;
static int bad_frame_tokens = BAD_FRAME_BURST;
static int64_t bad_frame_refill;

/* what the presence operation sends (built when it starts) */
static strbuf sql_connected, sql_disconnected, sql_seen, sql_gw_on, sql_gw_off,
    sending_quarantine;
static char stats_buf[8192];
static bool connected_added;

static void
sb_add(strbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		size_t cap = b->cap ? b->cap * 2 : 1024;
		char *grown;

		while (cap < b->len + n + 1)
			cap *= 2;
		grown = realloc(b->p, cap);
		if (grown == NULL)
		{
			log_error("out of memory in reports");
			exit(1);
		}
		b->p = grown;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_str(strbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_id(strbuf *b, int64_t id)
{
	char num[24];

	sb_add(b, b->len > 1 ? "," : "", b->len > 1 ? 1 : 0);
	sb_add(b, num,
	       (size_t) snprintf(num, sizeof(num), "%lld", (long long) id));
}

static void
sb_reset(strbuf *b, const char *start)
{
	b->len = 0;
	sb_str(b, start);
}

/* JSON string literal of arbitrary text. */
static void
sb_json_str(strbuf *b, const char *s)
{
	sb_add(b, "\"", 1);
	for (; *s; s++)
	{
		char esc[8];

		if (*s == '"' || *s == '\\')
		{
			esc[0] = '\\';
			esc[1] = *s;
			sb_add(b, esc, 2);
		}
		else if ((unsigned char) *s < 0x20)
			sb_add(b, esc,
			       (size_t) snprintf(esc, sizeof(esc), "\\u%04x",
			                         (unsigned char) *s));
		else
			sb_add(b, s, 1);
	}
	sb_add(b, "\"", 1);
}

/* --- collecting ------------------------------------------------------------- */

static void
presence_mark(meter *m, uint8_t flag)
{
	m->flags |= flag;
	if (!(m->flags & M_PRESENCE))
	{
		m->flags |= M_PRESENCE;
		m->next_presence = presence_head;
		presence_head = m;
	}
}

void
report_seen(meter *m)
{
	if ((m->flags & M_SEEN) ||
	    (m->seen_reported_us &&
	     G.now_mono - m->seen_reported_us < SEEN_EVERY_US))
		return;
	m->seen_reported_us = G.now_mono;
	G.stats.meters_seen_reported++;
	presence_mark(m, M_SEEN);
}

void
report_connection(meter *m)
{
	presence_mark(m, M_CONN_CHG);
}

void
report_gateway(gateway *g)
{
	g->changed = 1;
}

void
report_quarantine(const char *reason, const char *detail, const meter *m,
                  const char *address, const uint8_t *bytes, size_t len)
{
	char num[64];

	if (strcmp(reason, "bad_frame") == 0)
	{
		if (bad_frame_tokens <= 0)
			return;
		bad_frame_tokens--;
	}
	if (n_quarantine >= 1000)
		return; /* a flood: the counters still count */
	sb_add(&quarantine_json, n_quarantine ? ", " : "[", n_quarantine ? 2 : 1);
	sb_str(&quarantine_json, "{\"reason\": ");
	sb_json_str(&quarantine_json, reason);
	sb_str(&quarantine_json, ", \"detail\": ");
	sb_json_str(&quarantine_json, detail);
	if (m)
	{
		snprintf(num, sizeof(num),
		         ", \"meter_id\": %lld, \"property_id\": %lld",
		         (long long) m->meter_id, (long long) m->property_id);
		sb_str(&quarantine_json, num);
	}
	if (address)
	{
		sb_str(&quarantine_json, ", \"address\": ");
		sb_json_str(&quarantine_json, address);
	}
	if (bytes && len > 0)
	{
		char *hex = malloc(2 * len + 1);

		if (hex)
		{
			hex_encode(bytes, len, hex);
			sb_str(&quarantine_json, ", \"frame\": \"");
			sb_str(&quarantine_json, hex);
			sb_str(&quarantine_json, "\"");
			free(hex);
		}
	}
	sb_str(&quarantine_json, "}");
	n_quarantine++;
	G.stats.quarantined++;
}

/* --- the presence + quarantine operation ------------------------------------ */

static void
build_presence(void)
{
	sb_reset(&sql_connected, "{");
	sb_reset(&sql_disconnected, "{");
	sb_reset(&sql_seen, "{");
	sb_reset(&sql_gw_on, "{");
	sb_reset(&sql_gw_off, "{");
	connected_added = false;
	while (presence_head)
	{
		meter *m = presence_head;

		presence_head = m->next_presence;
		m->next_presence = NULL;
		if (m->flags & M_CONN_CHG)
		{
			uint8_t now = m->conn != NULL;

			if (now != m->presence_connected)
			{
				sb_id(now ? &sql_connected : &sql_disconnected, m->meter_id);
				m->presence_connected = now;
				connected_added |= now;
			}
		}
		if (m->flags & M_SEEN)
			sb_id(&sql_seen, m->meter_id);
		m->flags &= (uint8_t) ~(M_CONN_CHG | M_SEEN | M_PRESENCE);
	}
	for (uint32_t i = 0; i < n_gateways; i++)
	{
		gateway *g = gateways[i];

		if (g->conn)
			sb_id(&sql_gw_on, g->gateway_id); /* also refreshes last_seen */
		else if (g->changed && g->reported_online)
			sb_id(&sql_gw_off, g->gateway_id);
		g->reported_online = g->conn != NULL;
		g->changed = 0;
	}
	sb_str(&sql_connected, "}");
	sb_str(&sql_disconnected, "}");
	sb_str(&sql_seen, "}");
	sb_str(&sql_gw_on, "}");
	sb_str(&sql_gw_off, "}");
	sb_reset(&sending_quarantine, "");
	if (n_quarantine)
	{
		sb_str(&quarantine_json, "]");
		sb_add(&sending_quarantine, quarantine_json.p, quarantine_json.len);
		sb_reset(&quarantine_json, "");
		n_quarantine = 0;
	}
}

static bool
presence_step(pgsess *s, pgop *op, int n)
{
	(void) op;
	if (n == 0)
	{
		const char *p[6] = {G.opts.name, sql_connected.p, sql_disconnected.p,
		                    sql_seen.p,  sql_gw_on.p,     sql_gw_off.p};

		return pgsess_send_params(s,
		                          "SELECT prepaid.ingest_presence($1, $2, $3, "
		                          "$4, $5, $6)",
		                          6, p);
	}
	if (n == 1 && sending_quarantine.len > 0)
	{
		const char *p[2] = {G.opts.name, sending_quarantine.p};

		return pgsess_send_params(
		    s, "SELECT prepaid.ingest_quarantine($1, $2::jsonb)", 2, p);
	}
	return false;
}

static void
presence_done(pgsess *s, pgop *op, pgop_outcome outcome, const char *err)
{
	(void) s;
	(void) op;
	if (outcome != PGOP_OK)
		log_error("recording connections failed: %s", err);
	else if (connected_added)
		command_claim_soon(); /* their commands can be claimed now */
}

static pgop presence_op = {.step = presence_step, .done = presence_done};

/* --- counters, prune --------------------------------------------------------- */

static bool
stats_step(pgsess *s, pgop *op, int n)
{
	char pid[16];
	const char *p[3] = {G.opts.name, pid, stats_buf};

	(void) op;
	if (n > 0)
		return false;
	snprintf(pid, sizeof(pid), "%d", (int) getpid());
	stats_json(&G.stats, stats_buf, sizeof(stats_buf));
	return pgsess_send_params(
	    s, "SELECT prepaid.ingest_report($1, $2::integer, $3::jsonb)", 3, p);
}

static pgop stats_op = {.step = stats_step};

static bool
prune_step(pgsess *s, pgop *op, int n)
{
	(void) op;
	return n == 0 && pgsess_send(s, "SELECT prepaid.ingest_prune()");
}

static pgop prune_op = {.step = prune_step};

/* --- timers ------------------------------------------------------------------ */

static void
flush_presence(void)
{
	if (presence_op.queued)
		return;
	build_presence();
	pgsess_submit(session, &presence_op);
}

int64_t
report_timers(int64_t now)
{
	int64_t next;

	if (now >= bad_frame_refill)
	{
		bad_frame_tokens = BAD_FRAME_BURST;
		bad_frame_refill = now + 60LL * 1000000;
	}
	if (now >= next_flush && pgsess_ready(session))
	{
		if (presence_head || n_quarantine || n_gateways)
			flush_presence();
		next_flush = now + FLUSH_US;
	}
	if (now >= next_stats)
	{
		if (pgsess_ready(session) && !stats_op.queued)
			pgsess_submit(session, &stats_op);
		next_stats = now + (int64_t) G.opts.stats_interval_s * 1000000;
	}
	if (now >= next_prune)
	{
		if (pgsess_ready(session) && !prune_op.queued)
			pgsess_submit(session, &prune_op);
		next_prune = now + PRUNE_US;
	}
	next = next_flush < next_stats ? next_flush : next_stats;
	return next < next_prune ? next : next_prune;
}

void
report_flush_all(void)
{
	if (pgsess_ready(session))
	{
		flush_presence();
		if (!stats_op.queued)
			pgsess_submit(session, &stats_op);
	}
}

bool
report_idle(void)
{
	return pgsess_idle(session) && presence_head == NULL && n_quarantine == 0;
}

static void
on_ready(pgsess *s)
{
	(void) s;
	/* after a reconnect tell the database the whole picture again */
	for (uint32_t i = 0; i < n_meters; i++)
		if (meters[i]->conn || meters[i]->presence_connected)
		{
			meters[i]->presence_connected = !meters[i]->conn;
			presence_mark(meters[i], M_CONN_CHG);
		}
	next_flush = 0;
}

void
report_init(pgsess *s)
{
	session = s;
	pgsess_init(s, "reports", "SELECT 1", on_ready, NULL);
	next_prune = G.now_mono + 60LL * 1000000;
}
