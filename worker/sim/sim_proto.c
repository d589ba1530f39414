/*
 * sim_proto.c
 *	  The DL/T 645-2007 slave side: a request frame from the daemon is routed
 *	  to the meter(s) it addresses on that connection (the direct meter, or
 *	  the meters behind a gateway; wildcard AA and broadcast 99 addresses as
 *	  the standard says), handled per function code, and the reply -- after
 *	  fault injection -- is queued on the connection and written to the
 *	  truth file.
 */
#include "sim.h"

#include <string.h>

#include "log.h"

#define VALUE_CAP 200
#define TEXT_CAP  600

/* What a handled request produced, for emit(). */
typedef struct reply
{
	uint8_t frame[DLT645_MAX_WIRE];
	int len; /* 0: nothing to send */
	const char *event;
	char di[9];
	char value[TEXT_CAP];
} reply;

static bool
password_ok(const sim_ctx *ctx, const dlt645_message *msg)
{
	return (msg->fields & DLT645_HAS_PASSWORD) &&
	       memcmp(msg->password, ctx->o.password, 4) == 0;
}

static void
set_serr(reply *r, uint8_t serr)
{
	snprintf(r->value, sizeof(r->value), "serr=%02X", serr);
}

/* An L = 0 acknowledgement, or the abnormal reply with serr. */
static void
ack_or_error(reply *r, const sim_meter *m, uint8_t func, uint8_t serr)
{
	if (serr == 0)
	{
		r->len = dlt645_build_ack(r->frame, sizeof(r->frame), m->preamble,
		                          m->addr, func);
		strcpy(r->value, "ok");
	}
	else
	{
		r->len = dlt645_build_error_reply(r->frame, sizeof(r->frame),
		                                  m->preamble, m->addr, func, serr);
		set_serr(r, serr);
	}
}

static void
handle_read(sim_ctx *ctx, sim_meter *m, const dlt645_message *msg, int64_t t,
            reply *r)
{
	uint8_t val[VALUE_CAP], serr = 0;
	int n;

	dlt645_di_format(msg->di, r->di);
	n = sim_values_read(ctx, m, msg->di, t, val, sizeof(val), &serr,
	                    ctx->truth ? r->value : NULL, sizeof(r->value));
	if (n >= 0)
	{
		r->event = "read";
		r->len =
		    dlt645_build_read_reply(r->frame, sizeof(r->frame), m->preamble,
		                            m->addr, msg->di, val, (size_t) n, false);
		return;
	}
	r->event = "error";
	ctx->st.errors++;
	r->len = dlt645_build_error_reply(r->frame, sizeof(r->frame), m->preamble,
	                                  m->addr, DLT645_FN_READ, serr);
	set_serr(r, serr);
}

static void
handle(sim_ctx *ctx, sim_meter *m, const dlt645_message *msg, int64_t t,
       reply *r)
{
	uint8_t serr = 0;

	switch (msg->func)
	{
		case DLT645_FN_READ:
			if (msg->fields & DLT645_HAS_DI)
				handle_read(ctx, m, msg, t, r);
			return;
		case DLT645_FN_READ_ADDRESS:
			r->event = "address";
			r->len = dlt645_build_address_reply(r->frame, sizeof(r->frame),
			                                    m->preamble, m->addr);
			strcpy(r->value, m->addr_text);
			return;
		case DLT645_FN_WRITE:
			r->event = "write";
			dlt645_di_format(msg->di, r->di);
			serr = password_ok(ctx, msg)
			           ? sim_values_write(ctx, m, msg->di, msg->value,
			                              msg->value_len, t)
			           : DLT645_SERR_UNAUTHORIZED;
			break;
		case DLT645_FN_CONTROL:
			r->event = "control";
			snprintf(r->di, sizeof(r->di), "%02X", msg->n1);
			if (!password_ok(ctx, msg) || !(msg->fields & DLT645_HAS_CONTROL))
				serr = DLT645_SERR_UNAUTHORIZED;
			else
				serr = sim_meter_control(
				    ctx, m, msg->n1, msg->n2,
				    (msg->fields & DLT645_HAS_TIME) ? &msg->time : NULL, t);
			break;
		case DLT645_FN_FREEZE:
			r->event = "freeze";
			serr = sim_meter_freeze(ctx, m, &msg->freeze, t);
			break;
		case DLT645_FN_READ_FOLLOW:
			r->event = "error";
			serr = DLT645_SERR_NO_DATA; /* replies always fit one frame */
			break;
		case DLT645_FN_BAUD_RATE:
			r->event = "error";
			serr = DLT645_SERR_BAUD_FIXED;
			break;
		case DLT645_FN_PASSWORD:
		case DLT645_FN_DEMAND_CLEAR:
		case DLT645_FN_METER_CLEAR:
		case DLT645_FN_EVENT_CLEAR:
			r->event = "error";
			serr = DLT645_SERR_UNAUTHORIZED;
			break;
		case DLT645_FN_SECURITY:
		case DLT645_FN_OUTPUT:
			r->event = "error";
			serr = DLT645_SERR_OTHER; /* no ESAM, no terminal output */
			break;
		default:
			/* time sync addressed to one meter, write address, unknown
			 * functions: a meter stays silent */
			return;
	}
	if (serr != 0)
		ctx->st.errors++;
	ack_or_error(r, m, msg->func, serr);
}

static int
fault_text(uint32_t hit, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (uint32_t bit = 1; bit < (1u << SIM_NFAULTS); bit <<= 1)
		if (hit & bit)
			len += (size_t) snprintf(buf + len, cap - len, "%s%s",
			                         len ? "+" : "", sim_fault_name(bit));
	return (int) len;
}

/* Sends a reply through the fault injection; writes its truth line. */
static void
emit(sim_ctx *ctx, int ci, sim_meter *m, reply *r, int64_t t)
{
	sim_conn *c = &ctx->conns[ci];
	uint8_t wire[SIM_OUT_CAP];
	uint32_t hit = sim_faults_roll(ctx, m);
	size_t n = 0, start;
	bool sent = false;
	char fault[96];

	if (c->last_len == 0)
		hit &= ~(uint32_t) SIM_F_REPLAY; /* nothing to replay yet */
	ctx->st.replies++;
	if (hit & SIM_F_SILENCE)
		hit = SIM_F_SILENCE;
	if (hit)
		ctx->st.faults++;
	if (!(hit & SIM_F_SILENCE))
	{
		if (hit & SIM_F_REPLAY)
		{
			memcpy(wire, c->last, c->last_len);
			n = c->last_len;
		}
		if (hit & SIM_F_GARBAGE)
		{
			int k = 1 + (int) (sim_rand(&m->rng) %
			                   (uint64_t) (ctx->faults.garbage_max > 0
			                                   ? ctx->faults.garbage_max
			                                   : 16));

			for (int i = 0; i < k; i++)
			{
				uint8_t b = (uint8_t) sim_rand(&m->rng);

				wire[n++] = b == DLT645_START ? 0x00 : b;
			}
		}
		start = n;
		memcpy(wire + n, r->frame, (size_t) r->len);
		n += (size_t) r->len;
		memcpy(c->last, r->frame, (size_t) r->len);
		c->last_len = (uint16_t) r->len;
		if (hit & SIM_F_BAD_CHECKSUM)
			wire[start + (size_t) r->len - 2] ^= 0x5A;
		if (hit & SIM_F_DUPLICATE)
		{
			memcpy(wire + n, wire + start, (size_t) r->len);
			n += (size_t) r->len;
		}
		sent = sim_net_send(ctx, ci, wire, n) == 0;
		if (sent)
			ctx->st.frames_out += 1 + ((hit & SIM_F_DUPLICATE) != 0) +
			                      ((hit & SIM_F_REPLAY) != 0);
		if (hit & SIM_F_SLOW)
			sim_net_hold(ctx, ci, mono_us() + ctx->faults.slow_ms * 1000);
		if (hit & SIM_F_DISCONNECT)
			sim_net_close_after_send(ctx, ci);
	}
	if (ctx->truth)
	{
		int len = fault_text(hit, fault, sizeof(fault));

		if (!sent && !(hit & SIM_F_SILENCE))
			snprintf(fault + len, sizeof(fault) - (size_t) len, "%sunsent",
			         len ? "+" : "");
		sim_truth_line(ctx, m, t, r->event, r->di, r->value, fault);
	}
}

static void
answer(sim_ctx *ctx, int ci, sim_meter *m, const dlt645_message *msg)
{
	int64_t t = sim_now(ctx);
	reply r;

	r.len = 0;
	r.event = "";
	r.di[0] = '\0';
	r.value[0] = '\0';
	sim_meter_advance(ctx, m, t);
	handle(ctx, m, msg, t, &r);
	if (r.len > 0)
		emit(ctx, ci, m, &r, t);
}

/* Broadcast time sync or freeze: every meter on the connection, no reply. */
static void
broadcast(sim_ctx *ctx, int ci, const dlt645_message *msg)
{
	const sim_conn *c = &ctx->conns[ci];
	int first = c->is_gateway ? ctx->gateways[c->owner].first : 0;
	int count = c->is_gateway ? ctx->gateways[c->owner].count : 1;
	int64_t t = sim_now(ctx);

	for (int i = 0; i < count; i++)
	{
		sim_meter *m =
		    &ctx->meters[c->is_gateway ? ctx->gw_meters[first + i] : c->owner];
		char text[32];
		dlt645_datetime now;

		sim_meter_advance(ctx, m, t);
		if (msg->func == DLT645_FN_TIME_SYNC &&
		    (msg->fields & DLT645_HAS_TIME))
		{
			sim_meter_set_clock(ctx, m, &msg->time, t);
			sim_local_datetime(sim_meter_local_us(m, t), &now);
			dlt645_datetime_format(
			    &now, DLT645_DT_DATE | DLT645_DT_HM | DLT645_DT_SECONDS, text,
			    sizeof(text));
			sim_truth_line(ctx, m, t, "time_sync", "", text, "");
		}
		else if (msg->func == DLT645_FN_FREEZE)
		{
			uint8_t serr = sim_meter_freeze(ctx, m, &msg->freeze, t);

			sim_truth_line(ctx, m, t, "freeze", "", serr ? "serr" : "ok", "");
		}
	}
}

static bool
has_wildcard(const uint8_t a[DLT645_ADDR_LEN])
{
	for (int i = 0; i < DLT645_ADDR_LEN; i++)
		if (a[i] == 0xAA)
			return true;
	return false;
}

void
sim_proto_frame(sim_ctx *ctx, int ci, const dlt645_frame *f)
{
	sim_conn *c = &ctx->conns[ci];
	dlt645_message msg;
	sim_meter *m = NULL;

	ctx->st.frames_in++;
	if (dlt645_message_parse(f, &msg, NULL) != DLT645_OK || msg.reply)
	{
		ctx->st.bad_frames_in++;
		return;
	}
	if (dlt645_address_is_broadcast(msg.address))
	{
		if (msg.func == DLT645_FN_TIME_SYNC || msg.func == DLT645_FN_FREEZE)
			broadcast(ctx, ci, &msg);
		return;
	}
	if (!c->is_gateway)
	{
		m = &ctx->meters[c->owner];
		if (!dlt645_address_matches(msg.address, m->addr))
			m = NULL;
	}
	else if (!has_wildcard(msg.address))
	{
		m = sim_fleet_find(ctx, msg.address);
		if (m != NULL && m->gateway != c->owner)
			m = NULL;
	}
	else
	{
		/* every meter behind the gateway that matches answers: more than
		 * one collide on the radio and nothing intelligible arrives */
		const sim_gateway *g = &ctx->gateways[c->owner];
		int hits = 0;

		for (int i = 0; i < g->count; i++)
		{
			sim_meter *x = &ctx->meters[ctx->gw_meters[g->first + i]];

			if (dlt645_address_matches(msg.address, x->addr))
			{
				m = x;
				hits++;
			}
		}
		if (hits > 1)
		{
			ctx->st.collisions++;
			return;
		}
	}
	if (m == NULL)
	{
		ctx->st.no_target++;
		log_debug("no meter %02X%02X%02X%02X%02X%02X on connection %d",
		          msg.address[5], msg.address[4], msg.address[3],
		          msg.address[2], msg.address[1], msg.address[0], ci);
		return;
	}
	answer(ctx, ci, m, &msg);
}

int
sim_proto_announce(sim_ctx *ctx, sim_meter *m, uint8_t *out, size_t cap)
{
	int len = dlt645_build_address_reply(out, cap, m->preamble, m->addr);
	int64_t t = sim_now(ctx);

	if (len > 0 && ctx->truth)
	{
		sim_meter_advance(ctx, m, t); /* the truth line states the registers */
		sim_truth_line(ctx, m, t, "address", "", m->addr_text, "");
	}
	return len;
}
