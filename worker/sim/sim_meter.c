/*
 * sim_meter.c
 *	  The meter model. A meter's state is integrated lazily up to the moment
 *	  it is asked something: simulated time is cut into segments at every
 *	  15-minute demand window, TOU period change, daily freeze, monthly
 *	  settlement, tariff version end and time-zone transition (all by the
 *	  meter's own clock); within a segment the load is constant, so energy is
 *	  exact: watts x microseconds accumulate in an integer remainder and the
 *	  registers advance by whole 0.01 kWh quanta (10 Wh), the total and the
 *	  register of the period in force together, so T1..Tn always sum to the
 *	  total. Demand is the sliding 15-minute average, the monthly maximum is
 *	  taken at each window end, freezes copy the registers at their instant.
 *	  Relay commands (0x1C), time sync (0x08) and freeze commands (0x16)
 *	  change the state here; the tenant's button press after a permit-close
 *	  and a timed restore are pending actions applied at their simulated
 *	  instant.
 */
#include "sim.h"

#include <string.h>

#define US_PER_S 1000000LL
#define MIN_US   SIM_US_PER_MIN
#define BLOCK_MS (SIM_BLOCK_US / 1000)

static int64_t
min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Local minute of the next daily freeze strictly after lmin. */
static int64_t
next_daily(const sim_meter *m, int64_t lmin)
{
	int64_t day = sim_floor_div(lmin, 1440);
	int64_t at = day * 1440 + m->daily_min;

	return at > lmin ? at : at + 1440;
}

/* Local minute of the next monthly settlement strictly after lmin. */
static int64_t
next_settle(const sim_meter *m, int64_t lmin)
{
	int y, mo, d;
	int sd = m->settle_day < 1 ? 1 : (m->settle_day > 28 ? 28 : m->settle_day);

	sim_civil_from_days(sim_floor_div(lmin, 1440), &y, &mo, &d);
	for (int i = 0; i < 2; i++)
	{
		int64_t at =
		    sim_days_from_civil(y, mo, sd) * 1440 + m->settle_hour * 60;

		if (at > lmin)
			return at;
		if (++mo > 12)
		{
			mo = 1;
			y++;
		}
	}
	return sim_days_from_civil(y, mo, sd) * 1440 + m->settle_hour * 60;
}

static void
ring_push(sim_ring *r, sim_snap *arr, int size, const sim_snap *s)
{
	arr[r->head] = *s;
	r->head = (uint8_t) ((r->head + 1) % size);
	if (r->n < size)
		r->n++;
}

const sim_snap *
sim_ring_get(const sim_ring *r, const sim_snap *arr, int size, int k)
{
	if (k < 1 || k > r->n)
		return NULL;
	return &arr[(r->head - k + size) % size];
}

static void
snapshot(const sim_meter *m, int64_t at_min, sim_snap *s)
{
	memset(s, 0, sizeof(*s));
	s->at_min = at_min;
	s->regs = m->regs;
}

/* Load now drawn through the relay (W), phase faults applied. */
static int64_t
effective_w(const sim_meter *m)
{
	int64_t w = m->block_w;

	if (m->relay_open)
		return 0;
	if ((m->faults & SIM_F_PHASE_LOSS) && m->phase == 3)
		w = w * (1000 - m->share[m->lost_phase]) / 1000;
	return w;
}

/* r + wh modulo the register modulus (r < modulus, wh small). */
static int64_t
wrap_add(const sim_meter *m, int64_t r, int64_t wh)
{
	r += wh;
	while (r >= m->modulus)
		r -= m->modulus;
	return r;
}

static void
add_energy(sim_meter *m, int reg, int64_t wh)
{
	m->regs.total = wrap_add(m, m->regs.total, wh);
	if (reg >= 0)
		m->regs.rate[reg] = wrap_add(m, m->regs.rate[reg], wh);
	m->balance -= wh * m->price[reg < 0 ? 0 : reg];
}

static void
accumulate(sim_meter *m, int reg, int64_t dt)
{
	int64_t e = effective_w(m) * dt;

	if (e <= 0)
		return;
	m->block_wus += e;
	m->frac += e;
	if (m->frac >= SIM_QUANTUM_WUS)
	{
		int64_t q = m->frac / SIM_QUANTUM_WUS;

		m->frac -= q * SIM_QUANTUM_WUS;
		add_energy(m, reg, q * SIM_QUANTUM_WH);
	}
}

/* Starts the demand window beginning at local minute bmin. */
static void
window_start(sim_meter *m, int64_t bmin)
{
	m->block_min = bmin;
	m->block_w = sim_profile_load_w(m, bmin);
}

/* The window ending at local minute end_min is complete. */
static void
window_close(sim_meter *m, int64_t end_min)
{
	int32_t dw = (int32_t) (m->block_wus * 10 / SIM_BLOCK_US);

	if (dw > m->max_dw)
	{
		m->max_dw = dw;
		m->max_at_min = end_min;
	}
	m->prev_wus = m->block_wus;
	m->block_wus = 0;
	window_start(m, end_min);
}

static void
daily_freeze(sim_meter *m, int64_t at_min)
{
	sim_snap s;

	snapshot(m, at_min, &s);
	ring_push(&m->days, m->day, SIM_DAYS, &s);
}

static void
month_freeze(sim_meter *m, int64_t at_min)
{
	sim_snap s;

	snapshot(m, at_min, &s);
	s.max_dw = m->max_dw;
	s.max_at_min = m->max_at_min;
	ring_push(&m->months, m->month, SIM_MONTHS, &s);
	m->max_dw = 0;
	m->max_at_min = 0;
}

/* Register of the period in force (-1: none), and when that may change
 * (meter clock). The tariff's zone is usually the site's: then the site
 * offset (and its validity) is reused. */
static int
period_register(sim_ctx *ctx, sim_meter *m, int64_t c, int64_t site_off_us,
                int64_t site_until, int64_t *until)
{
	const sim_tariff *tar = m->tariff >= 0 ? &ctx->tariffs[m->tariff] : NULL;
	int64_t zuntil = site_until, off_us = site_off_us, tmin, tday;
	int mod, period;

	if (tar && tar->zone != m->zone)
		off_us = (int64_t) sim_zone_offset(tar->zone, c, &zuntil) * US_PER_S;
	tmin = sim_floor_div(c + off_us, MIN_US);
	tday = sim_floor_div(tmin, 1440);
	if (m->plan == NULL || tday != m->plan_day || c >= m->plan_until_us)
	{
		m->plan = sim_tariff_plan(tar, c, tday, &m->ver, &m->plan_until_us);
		m->plan_day = tday;
	}
	mod = (int) (tmin - tday * 1440);
	period = m->plan->period[mod];
	*until = min64(min64(zuntil, m->plan_until_us),
	               (tday * 1440 + m->plan->next[mod]) * MIN_US - off_us);
	if (m->ver == NULL || period >= SIM_NPERIODS)
		return -1;
	period = m->ver->reg_of_period[period];
	return period < m->nrates ? period : -1;
}

/* The site zone's offset (us) at meter clock c, and until when it holds. */
static int64_t
site_offset(sim_meter *m, int64_t c, int64_t *until)
{
	if (c < m->z_from || c >= m->z_until)
	{
		m->z_off =
		    (int64_t) sim_zone_offset(m->zone, c, &m->z_until) * US_PER_S;
		m->z_from = c;
	}
	*until = m->z_until;
	return m->z_off;
}

/* Forgets what depends on the clock running forward (after a jump). */
static void
clock_jumped(sim_meter *m)
{
	m->z_from = m->z_until = 0;
	m->next_daily_min = m->next_settle_min = INT64_MIN;
	m->plan = NULL;
}

/* Integrates the meter from m->t_us to t1 (simulated). */
static void
integrate(sim_ctx *ctx, sim_meter *m, int64_t t1)
{
	while (m->t_us < t1)
	{
		int64_t c = m->t_us + m->skew_us; /* meter clock, UTC */
		int64_t zuntil, tuntil, lmin, bmin, end, cut_block, cut_daily,
		    cut_settle;
		int64_t off_us = site_offset(m, c, &zuntil);
		int reg;

		lmin = sim_floor_div(c + off_us, MIN_US);
		bmin = sim_floor_div(lmin, SIM_BLOCK_MIN) * SIM_BLOCK_MIN;
		if (bmin != m->block_min)
			window_start(m, bmin);
		if (lmin >= m->next_daily_min)
			m->next_daily_min = next_daily(m, lmin);
		if (lmin >= m->next_settle_min)
			m->next_settle_min = next_settle(m, lmin);
		cut_block = (bmin + SIM_BLOCK_MIN) * MIN_US - off_us;
		cut_daily = m->next_daily_min * MIN_US - off_us;
		cut_settle = m->next_settle_min * MIN_US - off_us;
		reg = period_register(ctx, m, c, off_us, zuntil, &tuntil);
		end = min64(t1 + m->skew_us, min64(cut_block, cut_daily));
		end = min64(end, min64(cut_settle, min64(tuntil, zuntil)));
		accumulate(m, reg, end - c);
		m->t_us = end - m->skew_us;
		if (end == cut_block)
			window_close(m, bmin + SIM_BLOCK_MIN);
		if (end == cut_daily)
			daily_freeze(m, m->next_daily_min);
		if (end == cut_settle)
			month_freeze(m, m->next_settle_min);
	}
}

static void
apply_pending(sim_ctx *ctx, sim_meter *m)
{
	int64_t at = m->pending_at;

	m->pending = SIM_PENDING_NONE;
	m->pending_at = SIM_NEVER;
	if (!m->relay_open)
		return;
	m->relay_open = 0;
	m->cmd_open = 0;
	ctx->st.relay_ops++;
	sim_truth_line(ctx, m, at, "relay", "", "closed", "");
}

void
sim_meter_advance(sim_ctx *ctx, sim_meter *m, int64_t t)
{
	if (m->pending != SIM_PENDING_NONE && m->pending_at <= t)
	{
		if (m->pending_at > m->t_us)
			integrate(ctx, m, m->pending_at);
		apply_pending(ctx, m);
	}
	integrate(ctx, m, t);
}

int64_t
sim_meter_local_us(const sim_meter *m, int64_t t)
{
	int64_t c = t + m->skew_us;

	return c + (int64_t) sim_zone_offset(m->zone, c, NULL) * US_PER_S;
}

void
sim_meter_start(sim_meter *m, int64_t t, bool history)
{
	int64_t lmin = sim_floor_div(sim_meter_local_us(m, t), MIN_US);
	int64_t start = t, smin, prev_s;
	bool freeze_at_start;
	int y, mo, d;

	m->pending = SIM_PENDING_NONE;
	m->pending_at = SIM_NEVER;
	clock_jumped(m);
	if (m->daily_min < 0 || m->daily_min >= 1440)
		m->daily_min = 0;
	if (m->settle_day == 0)
		m->settle_day = 1;
	if (history)
	{
		/* start at the last settlement instant and run up to t, so the
		 * month and daily freezes since then exist */
		sim_civil_from_days(sim_floor_div(lmin, 1440), &y, &mo, &d);
		if (--mo == 0)
		{
			mo = 12;
			y--;
		}
		prev_s = next_settle(m, sim_days_from_civil(y, mo, 1) * 1440 - 1);
		while (next_settle(m, prev_s) <= lmin)
			prev_s = next_settle(m, prev_s);
		smin = prev_s;
		start = sim_zone_to_utc(m->zone, smin * MIN_US) - m->skew_us;
		if (start > t || start < t - 40LL * 86400 * US_PER_S)
			start = t;
	}
	freeze_at_start = start < t;
	if (m->regs_at != INT64_MIN && m->regs_at > start)
	{
		/* the registers are known later than that: start there */
		start = m->regs_at < t ? m->regs_at : t;
		freeze_at_start = false;
	}
	m->t_us = start;
	lmin = sim_floor_div(sim_meter_local_us(m, start), MIN_US);
	window_start(m, sim_floor_div(lmin, SIM_BLOCK_MIN) * SIM_BLOCK_MIN);
	m->prev_wus =
	    m->relay_open
	        ? 0
	        : (int64_t) sim_profile_load_w(m, m->block_min - SIM_BLOCK_MIN) *
	              SIM_BLOCK_US;
	m->block_wus = 0;
	if (freeze_at_start)
	{
		month_freeze(m, lmin);
		if (lmin - sim_floor_div(lmin, 1440) * 1440 == m->daily_min)
			daily_freeze(m, lmin);
	}
	/* the time since `start` is integrated by the first sim_meter_advance:
	 * the same result, paid when the meter is first asked something */
}

int32_t
sim_meter_demand_dw(const sim_meter *m, int64_t t)
{
	int64_t e_ms = (sim_meter_local_us(m, t) - m->block_min * MIN_US) / 1000;
	int64_t wus;

	if (e_ms < 0)
		e_ms = 0;
	if (e_ms > BLOCK_MS)
		e_ms = BLOCK_MS;
	wus = m->block_wus +
	      m->prev_wus / 1000 * (BLOCK_MS - e_ms) / BLOCK_MS * 1000;
	return (int32_t) (wus * 10 / SIM_BLOCK_US);
}

static int64_t
isqrt64(int64_t v)
{
	int64_t r, x;

	if (v <= 0)
		return 0;
	r = v;
	x = (r + 1) / 2;
	while (x < r)
	{
		r = x;
		x = (r + v / r) / 2;
	}
	return r;
}

static int32_t
clamp32(int64_t v, int64_t lo, int64_t hi)
{
	return (int32_t) (v < lo ? lo : (v > hi ? hi : v));
}

void
sim_meter_elec(const sim_meter *m, int64_t t, sim_elec *e)
{
	int64_t nb = m->block_min / SIM_BLOCK_MIN;
	int64_t total_dw = effective_w(m) * 10, left = total_dw, sum_share = 0;
	int64_t s_total = 0, q_total = 0, p_total = 0;
	int nph = m->phase == 3 ? 3 : 1, last = -1;
	bool lost[3] = {false, false, false};

	(void) t;
	memset(e, 0, sizeof(*e));
	if ((m->faults & SIM_F_PHASE_LOSS) && m->phase == 3)
		lost[m->lost_phase] = true;
	for (int i = 0; i < nph; i++)
		if (!lost[i])
		{
			sum_share += m->share[i];
			last = i;
		}
	for (int i = 0; i < nph; i++)
	{
		int64_t u, pf, p, cur, s, q;

		u = (int64_t) m->v_nom_dv *
		    (1000 + sim_noise(m->seed, 20 + (uint64_t) i, nb, 25)) / 1000;
		if (m->faults & SIM_F_UNDERVOLTAGE)
			u = (int64_t) m->v_nom_dv *
			    (780 + sim_noise(m->seed, 23 + (uint64_t) i, nb, 10)) / 1000;
		if (lost[i])
			u = 0;
		pf =
		    clamp32(m->pf_base + sim_noise(m->seed, 30 + (uint64_t) i, nb, 15),
		            500, 1000);
		if (lost[i] || sum_share == 0)
			p = 0;
		else if (last == i)
			p = left;
		else
			p = total_dw * m->share[i] / sum_share;
		left -= p;
		if (p > 0 && u > 0)
		{
			cur = (p * 1000000 + u * pf / 2) / (u * pf);
			s = (u * cur + 500) / 1000;
			if (s < p)
				s = p;
			q = isqrt64(s * s - p * p);
		}
		else
		{
			cur = s = q = 0;
			pf = 1000;
		}
		e->u_dv[i] = (int32_t) u;
		e->i_ma[i] = clamp32(cur, 0, 799999);
		e->p_dw[i + 1] = clamp32(p, 0, 799999);
		e->q_dw[i + 1] = clamp32(q, 0, 799999);
		e->s_dw[i + 1] = clamp32(s, 0, 799999);
		e->pf[i + 1] = (int16_t) pf;
		p_total += p;
		s_total += s;
		q_total += q;
	}
	e->p_dw[0] = clamp32(p_total, 0, 799999);
	e->q_dw[0] = clamp32(q_total, 0, 799999);
	e->s_dw[0] = clamp32(s_total, 0, 799999);
	e->pf[0] =
	    (int16_t) (s_total > 0 ? (p_total * 1000 + s_total / 2) / s_total
	                           : 1000);
	/* one grid: every meter sees the same frequency in a window */
	e->freq_chz = (int16_t) (5000 + sim_noise(0xF4E9, 40, nb, 5));
	e->temp_dc =
	    (int16_t) (250 + p_total / 2000 + sim_noise(m->seed, 41, nb / 4, 20));
}

void
sim_meter_status(const sim_meter *m, uint16_t sw[7])
{
	memset(sw, 0, sizeof(uint16_t) * 7);
	sw[2] = (uint16_t) ((m->relay_open ? DLT645_SW3_RELAY_OPEN : 0) |
	                    (m->cmd_open ? DLT645_SW3_RELAY_CMD_OPEN : 0) |
	                    (m->alarm ? DLT645_SW3_PRETRIP_ALARM : 0) |
	                    (m->prepaid ? 0x0200 : 0) |
	                    (m->keep_power ? DLT645_SW3_KEEP_POWER : 0));
	for (int i = 0; i < (m->phase == 3 ? 3 : 1); i++)
	{
		if ((m->faults & SIM_F_PHASE_LOSS) && m->phase == 3 &&
		    m->lost_phase == i)
			sw[3 + i] |= 0x0001 | 0x0080; /* loss of voltage, phase break */
		else if (m->faults & SIM_F_UNDERVOLTAGE)
			sw[3 + i] |= 0x0002;
	}
}

uint8_t
sim_meter_control(sim_ctx *ctx, sim_meter *m, uint8_t n1, uint8_t n2,
                  const dlt645_datetime *until, int64_t t)
{
	bool was_open = m->relay_open;

	if (until == NULL || !dlt645_datetime_valid(until) ||
	    sim_datetime_local_us(until) < sim_meter_local_us(m, t))
		return DLT645_SERR_UNAUTHORIZED; /* execution time invalid */
	switch (n1)
	{
		case DLT645_N1_TRIP:
		case DLT645_N1_TRIP_RESTORE_1:
		case DLT645_N1_TRIP_RESTORE_2:
			if (m->keep_power)
				return DLT645_SERR_OTHER;
			if (n1 != DLT645_N1_TRIP && n2 == 0)
				return DLT645_SERR_OTHER;
			m->relay_open = 1;
			m->cmd_open = 1;
			m->pending = SIM_PENDING_NONE;
			m->pending_at = SIM_NEVER;
			if (n1 != DLT645_N1_TRIP)
			{
				m->pending = SIM_PENDING_RESTORE;
				m->pending_at = t + (int64_t) n2 * 5 * MIN_US;
			}
			break;
		case DLT645_N1_PERMIT_CLOSE:
			m->cmd_open = 0;
			if (m->relay_open && ctx->o.button_delay_us >= 0)
			{
				m->pending = SIM_PENDING_BUTTON;
				m->pending_at = t + ctx->o.button_delay_us;
			}
			break;
		case DLT645_N1_CLOSE:
			m->relay_open = 0;
			m->cmd_open = 0;
			m->pending = SIM_PENDING_NONE;
			m->pending_at = SIM_NEVER;
			break;
		case DLT645_N1_ALARM_ON:
			m->alarm = 1;
			break;
		case DLT645_N1_ALARM_OFF:
			m->alarm = 0;
			break;
		case DLT645_N1_KEEP_POWER_ON:
			m->keep_power = 1;
			break;
		case DLT645_N1_KEEP_POWER_OFF:
			m->keep_power = 0;
			break;
		default:
			return DLT645_SERR_OTHER;
	}
	if (was_open != m->relay_open)
		ctx->st.relay_ops++;
	return 0;
}

void
sim_meter_set_clock(sim_ctx *ctx, sim_meter *m, const dlt645_datetime *dt,
                    int64_t t)
{
	int64_t old_lmin = sim_floor_div(sim_meter_local_us(m, t), MIN_US);
	int64_t new_local = sim_datetime_local_us(dt);
	int64_t new_lmin = sim_floor_div(new_local, MIN_US);
	int64_t at;

	(void) ctx;
	/* a jump forward over a freeze instant freezes at the jump */
	at = next_settle(m, old_lmin);
	if (at <= new_lmin)
	{
		while (next_settle(m, at) <= new_lmin)
			at = next_settle(m, at);
		month_freeze(m, at);
	}
	at = next_daily(m, old_lmin);
	if (at <= new_lmin)
		daily_freeze(m, new_lmin - (new_lmin - at) % 1440);
	m->skew_us = sim_zone_to_utc(m->zone, new_local) - t;
	clock_jumped(m);
	window_start(m, sim_floor_div(new_lmin, SIM_BLOCK_MIN) * SIM_BLOCK_MIN);
}

uint8_t
sim_meter_freeze(sim_ctx *ctx, sim_meter *m, const dlt645_freeze *f, int64_t t)
{
	const char *kind = dlt645_freeze_kind(f);
	sim_snap s;

	(void) ctx;
	if (kind == NULL)
		return DLT645_SERR_OTHER;
	if (strcmp(kind, "instant") == 0)
	{
		snapshot(m, sim_floor_div(sim_meter_local_us(m, t), MIN_US), &s);
		ring_push(&m->instants, m->instant, SIM_INSTANTS, &s);
	}
	else if (strcmp(kind, "daily") == 0)
	{
		m->daily_min = (int16_t) (f->hour * 60 + f->minute);
		m->next_daily_min = INT64_MIN;
	}
	else if (strcmp(kind, "monthly") == 0)
	{
		if (f->day < 1 || f->day > 28)
			return DLT645_SERR_OTHER;
		m->settle_day = f->day;
		m->settle_hour = f->hour;
		m->next_settle_min = INT64_MIN;
	}
	else if (strcmp(kind, "hourly") != 0)
		return DLT645_SERR_OTHER;
	return 0;
}
