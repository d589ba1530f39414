/*
 * command.c
 *	  Meter commands (see command.h).
 *
 *	  Claiming: prepaid.ingest_claim_commands() on the commands session
 *	  after each NOTIFY prepaid_command, each new connection and every
 *	  --command-poll ms; claims are coalesced (one in flight, one more
 *	  queued). Each claimed command joins its meter's FIFO and the meter
 *	  goes to the front of its socket's queue.
 *
 *	  Per command, phases:
 *	    CHECK     a relay/keep-power command sent before (attempts > 1):
 *	              read status word 3 first; already in the wanted state ->
 *	              acknowledged without sending it again
 *	    SEND      the command frame; its normal reply is the meter's
 *	              acknowledgement (latency measured here)
 *	    READBACK  0x1C commands: read status word 3 (relay state bit 4,
 *	              keep-power bit 12); up to 3 reads 1 s apart until the state
 *	              matches; also after a lost reply (the command may have run)
 *	  Outcomes (acknowledged / failed / retry) are recorded in batches with
 *	  prepaid.ingest_command_results().
 */
#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "meters.h"
#include "net.h"
#include "relay.h"

#define READBACK_TRIES    3
#define READBACK_DELAY_US 1000000

typedef enum cmd_kind
{
	K_RELAY_OPEN,
	K_RELAY_CLOSE,
	K_RELAY_PERMIT_CLOSE,
	K_KEEP_POWER_ON,
	K_KEEP_POWER_OFF,
	K_TIME_SYNC,
	K_READ_FROZEN,
	K_READ,
	K_WRITE,
	K_UNSUPPORTED
} cmd_kind;

typedef enum cmd_phase
{
	P_CHECK,
	P_SEND,
	P_READBACK
} cmd_phase;

struct command
{
	command *next;
	int64_t command_id;
	int64_t created_us; /* realtime, from the database clock */
	int64_t not_before; /* monotonic: next read-back */
	int64_t ack_us;     /* INSERT of the command -> the meter's reply */
	int64_t claimed_us; /* INSERT -> the claim reached the daemon */
	int64_t sent_us;    /* INSERT -> the command frame was written */
	int attempts;
	int tz_offset_s;
	uint32_t di;
	uint8_t kind;
	uint8_t phase;
	uint8_t reads;
	bool acked;     /* the meter acknowledged the command frame */
	bool timed_out; /* read-back after a lost reply */
	bool has_di;
	char value[48];
	char name[24];
};

static pgsess *session;
static bool claim_queued, claim_again;
static int64_t next_safety_claim;
static meter *timer_meters[64];
static int n_timer_meters;

/* results waiting to be recorded, and the array being recorded */
static char *pending_json, *sending_json;
static size_t pending_len, pending_cap;
static int pending_n;
static int in_flight; /* commands claimed and not yet finished */

/* --- recording results ------------------------------------------------------- */

static void results_flush(void);

static void
json_append(const char *s, size_t n)
{
	if (pending_len + n + 2 > pending_cap)
	{
		size_t cap = pending_cap ? pending_cap * 2 : 4096;
		char *grown;

		while (cap < pending_len + n + 2)
			cap *= 2;
		grown = realloc(pending_json, cap);
		if (grown == NULL)
		{
			log_error("out of memory recording command results");
			exit(1);
		}
		pending_json = grown;
		pending_cap = cap;
	}
	memcpy(pending_json + pending_len, s, n);
	pending_len += n;
	pending_json[pending_len] = '\0';
}

/* status: acknowledged, failed or retry; reply: a JSON object or NULL. */
static void
record(meter *m, command *c, const char *status, const char *reply,
       const char *error, int relay_open)
{
	char head[512];
	int n;

	n = snprintf(
	    head, sizeof(head),
	    "%s{\"command_id\": %lld, \"status\": \"%s\", \"relay_actual\": "
	    "%s, \"error\": ",
	    pending_n ? ", " : "[", (long long) c->command_id, status,
	    relay_open < 0 ? "null" : (relay_open ? "\"open\"" : "\"closed\""));
	json_append(head, (size_t) n);
	if (error)
	{
		json_append("\"", 1);
		json_append(error, strlen(error)); /* our own text: no quotes */
		json_append("\"", 1);
	}
	else
		json_append("null", 4);
	json_append(", \"reply\": ", 11);
	if (c->ack_us > 0)
	{
		/* the reply object gains "ack_ms": the latency to the meter's
		 * acknowledgement (also in the histogram) */
		size_t len = reply ? strlen(reply) : 0;

		if (len > 2)
			json_append(reply, len - 1);
		n = snprintf(head, sizeof(head),
		             "%s\"ack_ms\": %.3f, \"claimed_ms\": %.3f, \"sent_ms\": "
		             "%.3f}",
		             len > 2 ? ", " : "{", c->ack_us / 1000.0,
		             c->claimed_us / 1000.0, c->sent_us / 1000.0);
		json_append(head, (size_t) n);
	}
	else
		json_append(reply ? reply : "null", strlen(reply ? reply : "null"));
	json_append("}", 1);
	pending_n++;
	if (strcmp(status, "acknowledged") == 0)
		G.stats.commands_acknowledged++;
	else if (strcmp(status, "failed") == 0)
		G.stats.commands_failed++;
	else
		G.stats.commands_retried++;
	log_debug("command %lld (%s) for meter %lld: %s%s%s",
	          (long long) c->command_id, c->name, (long long) m->meter_id,
	          status, error ? ": " : "", error ? error : "");
	/* the command leaves the meter's queue */
	if (m->cmds == c)
		m->cmds = c->next;
	free(c);
	in_flight--;
	results_flush();
}

static bool
results_step(pgsess *s, pgop *op, int n)
{
	const char *params[2] = {G.opts.name, sending_json};

	(void) op;
	if (n > 0)
		return false;
	return pgsess_send_params(
	    s, "SELECT prepaid.ingest_command_results($1, $2::jsonb)", 2, params);
}

static void
results_done(pgsess *s, pgop *op, pgop_outcome outcome, const char *err)
{
	(void) s;
	(void) op;
	if (outcome != PGOP_OK)
		log_error("recording command results failed: %s", err);
	free(sending_json);
	sending_json = NULL;
	results_flush();
}

static pgop results_op = {.step = results_step, .done = results_done};

static void
results_flush(void)
{
	if (pending_n == 0 || sending_json != NULL)
		return;
	json_append("]", 1);
	sending_json = pending_json;
	pending_json = NULL;
	pending_len = pending_cap = 0;
	pending_n = 0;
	pgsess_submit(session, &results_op);
}

bool
command_idle(void)
{
	return in_flight == 0 && pending_n == 0 && sending_json == NULL;
}

/* --- claiming ------------------------------------------------------------- */

static const struct
{
	const char *name;
	cmd_kind kind;
} kinds[] = {{"relay_open", K_RELAY_OPEN},
             {"relay_close", K_RELAY_CLOSE},
             {"relay_permit_close", K_RELAY_PERMIT_CLOSE},
             {"keep_power_on", K_KEEP_POWER_ON},
             {"keep_power_off", K_KEEP_POWER_OFF},
             {"time_sync", K_TIME_SYNC},
             {"read_frozen", K_READ_FROZEN},
             {"read_daily_frozen", K_READ_FROZEN},
             {"read", K_READ},
             {"write_price", K_WRITE},
             {"write_threshold", K_WRITE}};

static bool
is_control(const command *c)
{
	return c->kind <= K_KEEP_POWER_OFF;
}

static void
take_claimed(const PGresult *res)
{
	for (int i = 0; i < PQntuples(res); i++)
	{
		int64_t meter_id = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		meter *m = meters_by_id(meter_id);
		command *c = calloc(1, sizeof(command));
		command **tail;

		if (c == NULL)
		{
			log_error("out of memory taking a command");
			exit(1);
		}
		G.stats.commands_claimed++;
		in_flight++;
		c->command_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		snprintf(c->name, sizeof(c->name), "%s", PQgetvalue(res, i, 3));
		c->kind = K_UNSUPPORTED;
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (strcmp(kinds[k].name, c->name) == 0)
				c->kind = (uint8_t) kinds[k].kind;
		c->attempts = atoi(PQgetvalue(res, i, 4));
		c->has_di =
		    !PQgetisnull(res, i, 5) &&
		    dlt645_di_parse(PQgetvalue(res, i, 5), &c->di, NULL) == DLT645_OK;
		snprintf(c->value, sizeof(c->value), "%s", PQgetvalue(res, i, 6));
		c->tz_offset_s = atoi(PQgetvalue(res, i, 7));
		c->created_us = strtoll(PQgetvalue(res, i, 8), NULL, 10);
		c->claimed_us = realtime_us() - c->created_us;
		c->phase = (is_control(c) && c->attempts > 1) ? P_CHECK : P_SEND;
		if (m == NULL || m->conn == NULL)
		{
			meter fake = {0};

			fake.meter_id = meter_id;
			fake.cmds = c;
			record(&fake, c, "retry", NULL,
			       "meter not connected to this daemon", -1);
			continue;
		}
		for (tail = &m->cmds; *tail; tail = &(*tail)->next)
			;
		*tail = c;
		if (is_control(c))
			relay_command_claimed(m);
		net_enqueue(m, true);
	}
}

static bool
claim_step(pgsess *s, pgop *op, int n)
{
	const char *params[1] = {G.opts.name};

	(void) op;
	if (n > 0)
		return false;
	claim_again = false;
	return pgsess_send_params(
	    s, "SELECT * FROM prepaid.ingest_claim_commands($1, 1000)", 1, params);
}

static void
claim_result(pgsess *s, pgop *op, int n, const PGresult *res)
{
	(void) s;
	(void) op;
	(void) n;
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		take_claimed(res);
}

static void
claim_done(pgsess *s, pgop *op, pgop_outcome outcome, const char *err)
{
	(void) s;
	(void) op;
	claim_queued = false;
	if (outcome != PGOP_OK)
		log_error("claiming commands failed: %s", err);
	if (claim_again)
		command_claim_soon();
}

static pgop claim_op = {
    .step = claim_step, .result = claim_result, .done = claim_done};

void
command_claim_soon(void)
{
	if (session == NULL || G.stopping)
		return;
	if (claim_queued)
	{
		claim_again = true;
		return;
	}
	claim_queued = true;
	next_safety_claim = G.now_mono + (int64_t) G.opts.command_poll_ms * 1000;
	pgsess_submit(session, &claim_op);
}

static void
on_notify(pgsess *s, const PGnotify *n)
{
	(void) s;
	(void) n;
	command_claim_soon();
}

static void
on_ready(pgsess *s)
{
	(void) s;
	if (claim_queued)
		return; /* the queued claim runs now */
	command_claim_soon();
	results_flush();
}

void
command_init(pgsess *s)
{
	session = s;
	pgsess_init(s, "commands", "LISTEN prepaid_command", on_ready, on_notify);
	next_safety_claim = G.now_mono;
}

/* --- encoding -------------------------------------------------------------- */

static uint8_t
control_n1(const command *c)
{
	switch (c->kind)
	{
		case K_RELAY_OPEN:
			return DLT645_N1_TRIP;
		case K_RELAY_CLOSE:
			return DLT645_N1_CLOSE;
		case K_RELAY_PERMIT_CLOSE:
			return DLT645_N1_PERMIT_CLOSE;
		case K_KEEP_POWER_ON:
			return DLT645_N1_KEEP_POWER_ON;
		default:
			return DLT645_N1_KEEP_POWER_OFF;
	}
}

/* The meter's local clock now, plus offset seconds. */
static void
meter_local_time(const command *c, int64_t plus_s, dlt645_datetime *t)
{
	time_t sec =
	    (time_t) (simclock_now(&G.clock) / 1000000 + c->tz_offset_s + plus_s);
	struct tm tm;

	gmtime_r(&sec, &tm);
	t->year = (uint16_t) (tm.tm_year + 1900);
	t->month = (uint8_t) (tm.tm_mon + 1);
	t->day = (uint8_t) tm.tm_mday;
	t->hour = (uint8_t) tm.tm_hour;
	t->minute = (uint8_t) tm.tm_min;
	t->second = (uint8_t) tm.tm_sec;
	t->weekday = (uint8_t) tm.tm_wday;
}

/*
 * How long a control command stays valid on the meter (N3..N8): an hour of
 * the meter's clock, or twice the request timeout when the clock runs
 * faster than that (accelerated time), so a command is never refused as
 * expired for having waited one request on its socket.
 */
static int64_t
valid_for_s(void)
{
	int64_t s =
	    (int64_t) G.opts.request_timeout_ms * 2 / 1000 * G.opts.time_scale;

	return s > 3600 ? s : 3600;
}

/* "123.45" -> (12345, 2). */
static bool
parse_decimal(const char *s, dlt645_value *v)
{
	int64_t num = 0;
	unsigned dec = 0;
	bool neg = false, point = false, digits = false;

	if (*s == '-')
	{
		neg = true;
		s++;
	}
	for (; *s; s++)
	{
		if (*s == '.' && !point)
			point = true;
		else if (*s >= '0' && *s <= '9')
		{
			if (num > (INT64_MAX - 9) / 10 || dec >= 18)
				return false;
			num = num * 10 + (*s - '0');
			dec += point;
			digits = true;
		}
		else
			return false;
	}
	if (!digits)
		return false;
	*v = dlt645_number(neg ? -num : num, dec);
	return true;
}

static int
build_write(meter *m, command *c, uint8_t *buf, size_t cap, const char **why)
{
	const dlt645_di_def *def = c->has_di ? dlt645_di_find(NULL, c->di) : NULL;
	uint8_t value[64];
	dlt645_value v;
	int len;

	if (def == NULL)
	{
		*why = "no known DI for this write (payload di, tariff or threshold)";
		return -1;
	}
	if (!parse_decimal(c->value, &v))
	{
		*why = "payload value is not a decimal number";
		return -1;
	}
	len = dlt645_values_encode(def, &v, 1, value, sizeof(value));
	if (len < 0)
	{
		*why = dlt645_strerror((dlt645_status) -len);
		return -1;
	}
	return dlt645_build_write(buf, cap, 4, m->addr, c->di, G.opts.password,
	                          G.opts.operator_code, value, (size_t) len);
}

bool
command_has_work(const meter *m)
{
	const command *c = m->cmds;

	return c != NULL && (c->not_before == 0 || c->not_before <= G.now_mono);
}

int
command_request(meter *m, uint8_t *buf, size_t cap, uint8_t *func,
                uint32_t *di)
{
	command *c = m->cmds;
	const char *why = NULL;
	int len;

	while (c != NULL && command_has_work(m))
	{
		c->not_before = 0;
		if (c->phase == P_CHECK || c->phase == P_READBACK)
		{
			*func = DLT645_FN_READ;
			*di = DLT645_DI_STATUS_WORD_3;
			return dlt645_build_read(buf, cap, 4, m->addr, *di);
		}
		if (c->sent_us == 0)
			c->sent_us = realtime_us() - c->created_us;
		switch (c->kind)
		{
			case K_RELAY_OPEN:
			case K_RELAY_CLOSE:
			case K_RELAY_PERMIT_CLOSE:
			case K_KEEP_POWER_ON:
			case K_KEEP_POWER_OFF:
			{
				dlt645_datetime until;

				meter_local_time(c, valid_for_s(), &until);
				*func = DLT645_FN_CONTROL;
				*di = 0;
				return dlt645_build_control(
				    buf, cap, 4, m->addr, G.opts.password,
				    G.opts.operator_code, control_n1(c), 0, &until);
			}
			case K_TIME_SYNC:
			{
				dlt645_datetime now;

				meter_local_time(c, 0, &now);
				*func = DLT645_FN_TIME_SYNC;
				*di = 0;
				return dlt645_build_time_sync(buf, cap, 4, &now);
			}
			case K_READ_FROZEN:
			case K_READ:
				if (!c->has_di)
				{
					why = "payload has no valid di";
					break;
				}
				*func = DLT645_FN_READ;
				*di = c->di;
				return dlt645_build_read(buf, cap, 4, m->addr, c->di);
			case K_WRITE:
				len = build_write(m, c, buf, cap, &why);
				if (len > 0)
				{
					*func = DLT645_FN_WRITE;
					*di = 0;
					return len;
				}
				break;
			default:
				why = "command kind not supported by prepaid-ingest";
				break;
		}
		record(m, c, "failed", NULL, why ? why : "cannot encode", -1);
		c = m->cmds;
	}
	return 0;
}

/* The meter acknowledged the command (or its effect was confirmed). */
static void
acknowledged(command *c)
{
	c->ack_us = realtime_us() - c->created_us;
	if (c->ack_us < 1)
		c->ack_us = 1;
	stats_latency_add(&G.stats, c->ack_us);
}

void
command_sent_noreply(meter *m)
{
	command *c = m->cmds;

	if (c == NULL)
		return;
	acknowledged(c);
	record(m, c, "acknowledged", "{\"broadcast\": true}", NULL, -1);
}

/* --- replies ---------------------------------------------------------------- */

/* Does status word 3 show what the command asked for? -1: no target. */
static int
state_matches(const command *c, int64_t sw3)
{
	bool open = (sw3 & DLT645_SW3_RELAY_OPEN) != 0;
	bool keep = (sw3 & DLT645_SW3_KEEP_POWER) != 0;

	switch (c->kind)
	{
		case K_RELAY_OPEN:
			return open;
		case K_RELAY_CLOSE:
			return !open;
		case K_KEEP_POWER_ON:
			return keep;
		case K_KEEP_POWER_OFF:
			return !keep;
		default:
			return -1;
	}
}

static void
serr_text(const dlt645_message *msg, char *buf, size_t cap)
{
	size_t n =
	    (size_t) snprintf(buf, cap, "meter refused (SERR %02X", msg->serr);

	for (unsigned bit = 0; bit < 8u * msg->serr_len && n < cap; bit++)
		if (msg->serr & (1u << bit))
		{
			const char *name =
			    dlt645_serr_bit_name(msg->func, msg->serr_len, bit);

			n += (size_t) snprintf(buf + n, cap - n, " %s",
			                       name ? name : "reserved");
		}
	if (n < cap)
		snprintf(buf + n, cap - n, ")");
}

static void
delay_readback(meter *m, command *c)
{
	c->not_before = G.now_mono + READBACK_DELAY_US;
	if (n_timer_meters < (int) (sizeof(timer_meters) / sizeof(meter *)))
		timer_meters[n_timer_meters++] = m;
	else
		c->not_before = 0; /* too many waiting: read back at once */
}

static void
readback_reply(meter *m, command *c, const dlt645_message *msg)
{
	dlt645_value v;
	int n = msg->abnormal
	            ? -1
	            : dlt645_message_values(msg, NULL, &v, 1, NULL, NULL);
	char reply[160];
	int match;
	bool open;

	if (n < 1)
	{
		if (c->phase == P_CHECK)
		{
			c->phase = P_SEND; /* unknown state: send it */
			return;
		}
		record(m, c, c->acked ? "acknowledged" : "retry",
		       c->acked ? "{\"readback\": \"failed\"}" : NULL,
		       c->acked ? NULL : "status word 3 could not be read back", -1);
		return;
	}
	open = (v.num & DLT645_SW3_RELAY_OPEN) != 0;
	relay_note(m, v.num);
	m->flags |= M_SW3_DUE; /* the next poll reads it for its reading */
	match = state_matches(c, v.num);
	snprintf(reply, sizeof(reply),
	         "{\"status_word_3\": %lld, \"relay_open\": %s, \"keep_power\": "
	         "%s, \"readbacks\": %u%s}",
	         (long long) v.num, open ? "true" : "false",
	         (v.num & DLT645_SW3_KEEP_POWER) ? "true" : "false", c->reads + 1,
	         c->phase == P_CHECK ? ", \"already\": true" : "");
	c->reads++;
	if (c->phase == P_CHECK)
	{
		if (match == 1)
			record(m, c, "acknowledged", reply, NULL, open);
		else
			c->phase = P_SEND;
		return;
	}
	if (match != 0)
	{
		/* a timed-out command that did run counts from now */
		if (c->timed_out)
			acknowledged(c);
		record(m, c, "acknowledged", reply, NULL, open);
	}
	else if (c->reads < READBACK_TRIES)
		delay_readback(m, c);
	else if (c->acked)
	{
		char err[96];

		snprintf(err, sizeof(err),
		         "meter acknowledged but status word 3 is %lld after %d reads",
		         (long long) v.num, c->reads);
		record(m, c, "failed", reply, err, open);
	}
	else
		record(m, c, "retry", reply, "no reply, and the state did not change",
		       open);
}

static void
read_reply(meter *m, command *c, const dlt645_message *msg)
{
	dlt645_value vals[DLT645_MAX_VALUES];
	const dlt645_di_def *def = NULL;
	int n =
	    dlt645_message_values(msg, NULL, vals, DLT645_MAX_VALUES, &def, NULL);
	char reply[4096], di[9];
	size_t len;

	dlt645_di_format(c->di, di);
	if (n < 1)
	{
		record(m, c, "failed", NULL, "reply values could not be decoded", -1);
		return;
	}
	len = (size_t) snprintf(reply, sizeof(reply), "{\"di\": \"%s\"", di);
	if (c->kind == K_READ_FROZEN)
	{
		int64_t wh;

		if (vals[0].flags & DLT645_VALUE_ABSENT ||
		    dlt645_rescale(vals[0].num, vals[0].decimals, 3, &wh) != DLT645_OK)
		{
			record(m, c, "failed", NULL, "frozen energy not available", -1);
			return;
		}
		len += (size_t) snprintf(reply + len, sizeof(reply) - len,
		                         ", \"energy_wh\": %lld, \"rate_wh\": [",
		                         (long long) wh);
		for (int i = 1; i < n && i <= 8; i++)
		{
			if (vals[i].flags & DLT645_VALUE_ABSENT ||
			    dlt645_rescale(vals[i].num, vals[i].decimals, 3, &wh) !=
			        DLT645_OK)
				break;
			len +=
			    (size_t) snprintf(reply + len, sizeof(reply) - len, "%s%lld",
			                      i > 1 ? ", " : "", (long long) wh);
		}
		len += (size_t) snprintf(reply + len, sizeof(reply) - len, "]");
	}
	else
	{
		len += (size_t) snprintf(reply + len, sizeof(reply) - len,
		                         ", \"values\": {");
		for (int i = 0; i < n && len < sizeof(reply) - 200; i++)
		{
			char key[96], text[64];

			dlt645_value_key(def, vals[i].sel, NULL, key, sizeof(key));
			dlt645_value_format(def, &vals[i], text, sizeof(text));
			len += (size_t) snprintf(reply + len, sizeof(reply) - len,
			                         "%s\"%s\": \"%s\"", i ? ", " : "", key,
			                         text);
		}
		len += (size_t) snprintf(reply + len, sizeof(reply) - len, "}");
	}
	snprintf(reply + len, sizeof(reply) - len, "}");
	record(m, c, "acknowledged", reply, NULL, -1);
}

void
command_reply(meter *m, const dlt645_message *msg)
{
	command *c = m->cmds;
	char err[160];

	if (c == NULL)
		return;
	if (c->phase == P_CHECK || c->phase == P_READBACK)
	{
		readback_reply(m, c, msg);
		return;
	}
	acknowledged(c);
	if (msg->abnormal)
	{
		serr_text(msg, err, sizeof(err));
		record(m, c, "failed", NULL, err, -1);
		return;
	}
	if (is_control(c))
	{
		c->acked = true;
		c->phase = P_READBACK;
		c->reads = 0;
		return;
	}
	if (c->kind == K_WRITE)
		record(m, c, "acknowledged", "{}", NULL, -1);
	else
		read_reply(m, c, msg);
}

void
command_timeout(meter *m)
{
	command *c = m->cmds;

	if (c == NULL)
		return;
	if (c->phase == P_CHECK)
	{
		c->phase = P_SEND;
		return;
	}
	if (c->phase == P_SEND && is_control(c))
	{
		/* the reply was lost: the command may have run; look first */
		c->timed_out = true;
		c->phase = P_READBACK;
		c->reads = 0;
		return;
	}
	record(m, c, c->acked ? "acknowledged" : "retry",
	       c->acked ? "{\"readback\": \"timeout\"}" : NULL,
	       c->acked ? NULL : "no reply from the meter", -1);
}

void
command_disconnected(meter *m)
{
	while (m->cmds)
	{
		command *c = m->cmds;

		if (c->acked)
			record(m, c, "acknowledged", "{\"readback\": \"disconnected\"}",
			       NULL, -1);
		else
			record(m, c, "retry", NULL, "meter disconnected", -1);
	}
}

int64_t
command_timers(int64_t now)
{
	int64_t next = next_safety_claim;
	int keep = 0;

	if (now >= next_safety_claim && !G.stopping)
	{
		command_claim_soon();
		next_safety_claim = now + (int64_t) G.opts.command_poll_ms * 1000;
		next = next_safety_claim;
	}
	for (int i = 0; i < n_timer_meters; i++)
	{
		meter *m = timer_meters[i];
		command *c = m->cmds;

		if (c == NULL || c->not_before == 0)
			continue;
		if (c->not_before <= now)
		{
			if (m->conn)
				net_enqueue(m, true);
			continue;
		}
		if (c->not_before < next)
			next = c->not_before;
		timer_meters[keep++] = m;
	}
	n_timer_meters = keep;
	return next;
}
