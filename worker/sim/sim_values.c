/*
 * sim_values.c
 *	  What a simulated meter answers for each data identifier: energies
 *	  (current and previous settlement days, per rate), maximum demand,
 *	  instantaneous values, date and time, address, status words,
 *	  prepaid parameters, frozen data; and which parameters it lets a 0x14
 *	  write change. Values are built as exact dlt645_value elements and
 *	  encoded by the codec's DI registry, so every format (BCD digits,
 *	  decimals, sign bit, date layouts) is the codec's. A DI the meter does
 *	  not support gets SERR 02 (no such data).
 */
#include "sim.h"

#include <string.h>

#define NO_DATA (-1)

typedef struct vals
{
	dlt645_value v[DLT645_MAX_VALUES];
	int n;
} vals;

static void
put_num(vals *o, int64_t num, unsigned decimals)
{
	o->v[o->n++] = dlt645_number(num, decimals);
}

static void
put_time(vals *o, int64_t local_min, bool never)
{
	dlt645_value *v = &o->v[o->n++];

	memset(v, 0, sizeof(*v));
	sim_local_datetime(local_min * SIM_US_PER_MIN, &v->time);
	if (never)
		v->flags = DLT645_VALUE_NO_TIME;
}

/* Total and rates of a register set: element sel = 0 total, 1..n rate. */
static int
put_regs(vals *o, const sim_meter *m, const sim_regs *r, uint8_t d1)
{
	if (d1 == 0xFF)
	{
		put_num(o, r->total, 3);
		for (int i = 0; i < m->nrates; i++)
			put_num(o, r->rate[i], 3);
		return o->n;
	}
	if (d1 == 0)
		put_num(o, r->total, 3);
	else if (d1 <= m->nrates)
		put_num(o, r->rate[d1 - 1], 3);
	else
		return NO_DATA;
	return o->n;
}

static int
put_zero_regs(vals *o, const sim_meter *m, uint8_t d1)
{
	sim_regs zero;

	memset(&zero, 0, sizeof(zero));
	return put_regs(o, m, &zero, d1);
}

/* 00: energies. DI2 00 combined (= forward), 01 forward, 02 reverse. */
static int
energy(const sim_meter *m, uint8_t d2, uint8_t d1, uint8_t d0, vals *o)
{
	const sim_regs *r = &m->regs;

	if (d2 == 0x90)
	{
		int64_t cents = m->balance / 100000; /* 1e-7 yuan -> 0.01 */

		if (d1 != 0x02 || d0 > 1)
			return NO_DATA; /* money-type meter: no energy balance */
		put_num(o,
		        d0 == 0 ? (cents > 0 ? cents : 0) : (cents < 0 ? -cents : 0),
		        2);
		return o->n;
	}
	if (d2 > 0x02)
		return NO_DATA;
	if (d0 > 0)
	{
		const sim_snap *s = sim_ring_get(&m->months, m->month, SIM_MONTHS, d0);

		if (s == NULL)
			return NO_DATA;
		r = &s->regs;
	}
	return d2 == 0x02 ? put_zero_regs(o, m, d1) : put_regs(o, m, r, d1);
}

/* 01: maximum demand and its time (forward; reverse is always 0). */
static int
demand(const sim_meter *m, uint8_t d2, uint8_t d1, uint8_t d0, vals *o)
{
	int32_t dw = m->max_dw;
	int64_t at = m->max_at_min;

	if ((d2 != 0x01 && d2 != 0x02) || (d1 != 0 && d1 != 0xFF))
		return NO_DATA;
	if (d0 > 0)
	{
		const sim_snap *s = sim_ring_get(&m->months, m->month, SIM_MONTHS, d0);

		if (s == NULL)
			return NO_DATA;
		dw = s->max_dw;
		at = s->max_at_min;
	}
	if (d2 == 0x02)
		dw = 0;
	put_num(o, dw, 4);
	sim_local_datetime(at * SIM_US_PER_MIN, &o->v[0].time);
	o->v[0].time.weekday = DLT645_NO_WEEKDAY; /* YYMMDDhhmm */
	if (dw == 0)
		o->v[0].flags = DLT645_VALUE_NO_TIME;
	return o->n;
}

/* A phase family: d1 = first..3 one element, FF the block. */
static int
phases(const sim_meter *m, uint8_t d1, int first, const int32_t *per_phase,
       const int32_t *total, unsigned decimals, vals *o)
{
	int nph = m->phase == 3 ? 3 : 1;

	if (d1 == 0xFF)
	{
		if (first == 0)
			put_num(o, *total, decimals);
		for (int i = 0; i < nph; i++)
			put_num(o, per_phase[i], decimals);
		return o->n;
	}
	if (d1 == 0 && first == 0)
		put_num(o, *total, decimals);
	else if (d1 >= 1 && d1 <= nph)
		put_num(o, per_phase[d1 - 1], decimals);
	else
		return NO_DATA;
	return o->n;
}

/* 02: instantaneous values. */
static int
instant(const sim_meter *m, int64_t t, uint8_t d2, uint8_t d1, uint8_t d0,
        vals *o)
{
	sim_elec e;
	int32_t pf[4];

	if (d0 != 0 && d2 != 0x80)
		return NO_DATA;
	sim_meter_elec(m, t, &e);
	for (int i = 0; i < 4; i++)
		pf[i] = e.pf[i];
	switch (d2)
	{
		case 0x01:
			return phases(m, d1, 1, e.u_dv, NULL, 1, o);
		case 0x02:
			return phases(m, d1, 1, e.i_ma, NULL, 3, o);
		case 0x03:
			return phases(m, d1, 0, e.p_dw + 1, e.p_dw, 4, o);
		case 0x04:
			return phases(m, d1, 0, e.q_dw + 1, e.q_dw, 4, o);
		case 0x05:
			return phases(m, d1, 0, e.s_dw + 1, e.s_dw, 4, o);
		case 0x06:
			return phases(m, d1, 0, pf + 1, pf, 3, o);
		case 0x80:
			if (d1 != 0)
				return NO_DATA;
			switch (d0)
			{
				case 0x01:
					if (m->phase == 3)
						return NO_DATA;
					put_num(o, e.i_ma[0], 3);
					return o->n;
				case 0x02:
					put_num(o, e.freq_chz, 2);
					return o->n;
				case 0x03:
					put_num(o, e.p_dw[0], 4);
					return o->n;
				case 0x04:
					put_num(o, sim_meter_demand_dw(m, t), 4);
					return o->n;
				case 0x07:
					put_num(o, e.temp_dc, 1);
					return o->n;
				case 0x08:
				case 0x09:
					put_num(o, 360, 2);
					return o->n;
				case 0x0A:
					put_num(o, 0, 0);
					return o->n;
			}
			return NO_DATA;
	}
	return NO_DATA;
}

/* 04: parameters. */
static int
parameter(const sim_meter *m, int64_t t, uint8_t d2, uint8_t d1, uint8_t d0,
          vals *o)
{
	dlt645_value *v = &o->v[0];
	uint16_t sw[7];

	memset(v, 0, sizeof(*v));
	if (d2 == 0x05 && d1 == 0x01 && d0 >= 1 && d0 <= SIM_MAX_RATES)
	{
		put_num(o, m->price[d0 - 1], 4);
		return o->n;
	}
	if (d2 != 0x00)
		return NO_DATA;
	switch (d1)
	{
		case 0x01:
			if (d0 != 0x01 && d0 != 0x02 && d0 != 0x0C)
				return NO_DATA;
			sim_local_datetime(sim_meter_local_us(m, t), &v->time);
			if (d0 == 0x02)
				v->time.weekday = DLT645_NO_WEEKDAY;
			return o->n = 1;
		case 0x04:
			if (d0 != 0x01 && d0 != 0x02)
				return NO_DATA;
			memcpy(v->raw, m->addr, DLT645_ADDR_LEN);
			return o->n = 1;
		case 0x05:
			sim_meter_status(m, sw);
			if (d0 == 0xFF)
			{
				for (int i = 0; i < 7; i++)
					put_num(o, sw[i], 0);
				return o->n;
			}
			if (d0 < 1 || d0 > 7)
				return NO_DATA;
			put_num(o, sw[d0 - 1], 0);
			return o->n;
		case 0x06:
			if (d0 != 0x01)
				return NO_DATA;
			put_num(o, 0x05, 0); /* forward + reverse added */
			return o->n;
		case 0x07:
			if (d0 < 1 || d0 > 5)
				return NO_DATA;
			put_num(o, 0x08, 0); /* 2400 bps */
			return o->n;
		case 0x0B:
			if (d0 != 0x01)
				return NO_DATA;
			v->time.day = m->settle_day;
			v->time.hour = m->settle_hour;
			return o->n = 1;
		case 0x0F:
			if (d0 < 1 || d0 > 4)
				return NO_DATA;
			put_num(o, m->limit_energy[d0 - 1], 2);
			return o->n;
		case 0x10:
			if (d0 < 1 || d0 > 5)
				return NO_DATA;
			put_num(o, m->limit_amount[d0 - 1], 2);
			return o->n;
	}
	return NO_DATA;
}

/* 05: frozen data (06 daily, 01 instant). */
static int
frozen(const sim_meter *m, uint8_t d2, uint8_t d1, uint8_t d0, vals *o)
{
	const sim_snap *s;

	if (d2 == 0x06)
		s = sim_ring_get(&m->days, m->day, SIM_DAYS, d0);
	else if (d2 == 0x01)
		s = sim_ring_get(&m->instants, m->instant, SIM_INSTANTS, d0);
	else
		return NO_DATA;
	if (s == NULL)
		return NO_DATA;
	switch (d1)
	{
		case 0x00:
			put_time(o, s->at_min, false);
			o->v[0].time.weekday = DLT645_NO_WEEKDAY;
			return o->n;
		case 0x01:
			return put_regs(o, m, &s->regs, 0xFF);
		case 0x02:
			return put_zero_regs(o, m, 0xFF);
	}
	return NO_DATA;
}

/* 03: purchase records: this meter is recharged by the platform only. */
static int
purchases(uint8_t d2, uint8_t d1, uint8_t d0, vals *o)
{
	if (d2 != 0x33 || d0 != 0x01 || (d1 != 0x02 && d1 != 0x06))
		return NO_DATA;
	put_num(o, 0, d1 == 0x02 ? 0 : 2);
	return o->n;
}

static void
format_text(const dlt645_di_def *def, const vals *o, char *text, size_t cap)
{
	size_t len = 0;

	text[0] = '\0';
	for (int i = 0; i < o->n && len + 40 < cap; i++)
	{
		if (i > 0)
			text[len++] = ';';
		len +=
		    (size_t) dlt645_value_format(def, &o->v[i], text + len, cap - len);
	}
	text[len] = '\0';
}

int
sim_values_read(sim_ctx *ctx, sim_meter *m, uint32_t di, int64_t t,
                uint8_t *out, size_t cap, uint8_t *serr, char *text,
                size_t text_cap)
{
	const dlt645_di_def *def = dlt645_di_find(NULL, di);
	uint8_t d3 = (uint8_t) (di >> 24), d2 = (uint8_t) (di >> 16),
	        d1 = (uint8_t) (di >> 8), d0 = (uint8_t) di;
	vals o;
	int n = NO_DATA, len;

	(void) ctx;
	o.n = 0;
	if (def != NULL)
		switch (d3)
		{
			case 0x00:
				n = energy(m, d2, d1, d0, &o);
				break;
			case 0x01:
				n = demand(m, d2, d1, d0, &o);
				break;
			case 0x02:
				n = instant(m, t, d2, d1, d0, &o);
				break;
			case 0x03:
				n = purchases(d2, d1, d0, &o);
				break;
			case 0x04:
				n = parameter(m, t, d2, d1, d0, &o);
				break;
			case 0x05:
				n = frozen(m, d2, d1, d0, &o);
				break;
		}
	if (n <= 0)
	{
		*serr = DLT645_SERR_NO_DATA;
		return -1;
	}
	len = dlt645_values_encode(def, o.v, o.n, out, cap);
	if (len < 0)
	{
		*serr = DLT645_SERR_OTHER; /* e.g. a register beyond its digits */
		return -1;
	}
	if (text != NULL)
		format_text(def, &o, text, text_cap);
	return len;
}

/* Date (04 00 01 01), time (02) or both (0C) written: set the clock. */
static uint8_t
write_clock(sim_ctx *ctx, sim_meter *m, uint8_t d0, const dlt645_value *v,
            int64_t t)
{
	dlt645_datetime now;

	sim_local_datetime(sim_meter_local_us(m, t), &now);
	if (d0 == 0x01 || d0 == 0x0C)
	{
		now.year = v->time.year;
		now.month = v->time.month;
		now.day = v->time.day;
	}
	if (d0 == 0x02 || d0 == 0x0C)
	{
		now.hour = v->time.hour;
		now.minute = v->time.minute;
		now.second = v->time.second;
	}
	now.weekday = DLT645_NO_WEEKDAY;
	if (!dlt645_datetime_valid(&now))
		return DLT645_SERR_OTHER;
	sim_meter_set_clock(ctx, m, &now, t);
	return 0;
}

uint8_t
sim_values_write(sim_ctx *ctx, sim_meter *m, uint32_t di, const uint8_t *val,
                 size_t len, int64_t t)
{
	const dlt645_di_def *def = dlt645_di_find(NULL, di);
	uint8_t d2 = (uint8_t) (di >> 16), d1 = (uint8_t) (di >> 8),
	        d0 = (uint8_t) di;
	dlt645_value v;

	if (def == NULL || (di >> 24) != 0x04)
		return DLT645_SERR_NO_DATA;
	if (dlt645_values_decode(def, di, val, len, &v, 1, NULL) != 1)
		return DLT645_SERR_OTHER;
	if (d2 == 0x05 && d1 == 0x01 && d0 >= 1 && d0 <= SIM_MAX_RATES)
		m->price[d0 - 1] = (int32_t) v.num;
	else if (d2 != 0x00)
		return DLT645_SERR_NO_DATA;
	else if (d1 == 0x10 && d0 >= 1 && d0 <= 5)
		m->limit_amount[d0 - 1] = v.num;
	else if (d1 == 0x0F && d0 >= 1 && d0 <= 4)
		m->limit_energy[d0 - 1] = v.num;
	else if (d1 == 0x0B && d0 == 0x01)
	{
		if (v.time.day < 1 || v.time.day > 28 || v.time.hour > 23)
			return DLT645_SERR_OTHER;
		m->settle_day = v.time.day;
		m->settle_hour = v.time.hour;
		m->next_settle_min = INT64_MIN;
	}
	else if (d1 == 0x01 && (d0 == 0x01 || d0 == 0x02 || d0 == 0x0C))
		return write_clock(ctx, m, d0, &v, t);
	else
		return DLT645_SERR_NO_DATA;
	return 0;
}
