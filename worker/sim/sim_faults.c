/*
 * sim_faults.c
 *	  Fault injection. The --faults spec is a comma-separated list of
 *	    name[:param][~rate][@target]
 *	  name    phase_loss, undervoltage, silence, bad_checksum, garbage, slow,
 *	          disconnect, duplicate, replay (meter faults), unknown_meter,
 *	          unknown_gateway (extra devices that are not in the fleet)
 *	  param   slow: delay in ms (2000); garbage: most bytes (16);
 *	          phase_loss: a, b or c (default: per meter); unknown_*: count (1)
 *	  rate    share of the meter's replies affected (default 100%)
 *	  target  meters affected: a share ("5%" or "0.05") chosen
 *	          deterministically from the seed, or addresses joined by "+";
 *	          default every meter
 *	Which meters have which faults is decided once (sim_faults_assign);
 *	which replies are hit is decided per reply from the meter's own
 *	pseudo-random sequence (sim_faults_roll), so a run is reproducible.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define PPM 1000000u

static const struct
{
	const char *name;
	uint32_t bit;
	int64_t param; /* default */
} fault_names[] = {
    {"phase_loss", SIM_F_PHASE_LOSS, -1},
    {"undervoltage", SIM_F_UNDERVOLTAGE, 0},
    {"silence", SIM_F_SILENCE, 0},
    {"bad_checksum", SIM_F_BAD_CHECKSUM, 0},
    {"garbage", SIM_F_GARBAGE, 16},
    {"slow", SIM_F_SLOW, 2000},
    {"disconnect", SIM_F_DISCONNECT, 0},
    {"duplicate", SIM_F_DUPLICATE, 0},
    {"replay", SIM_F_REPLAY, 0},
};

#define NNAMES ((int) (sizeof(fault_names) / sizeof(fault_names[0])))

static int
bit_index(uint32_t bit)
{
	int i = 0;

	while (bit > 1)
	{
		bit >>= 1;
		i++;
	}
	return i;
}

const char *
sim_fault_name(uint32_t bit)
{
	for (int i = 0; i < NNAMES; i++)
		if (fault_names[i].bit == bit)
			return fault_names[i].name;
	return "";
}

uint64_t
sim_rand(uint64_t *state)
{
	*state += 0x9E3779B97F4A7C15ULL;
	return sim_mix(*state);
}

/* "5%", "0.05", "1" -> parts per million; -1 if malformed. */
static int64_t
parse_share(const char *s, const char *end)
{
	int64_t whole = 0, frac = 0, scale = 1;
	bool percent = end > s && end[-1] == '%';
	const char *p = s;

	if (percent)
		end--;
	if (p == end)
		return -1;
	while (p < end && *p >= '0' && *p <= '9')
		whole = whole * 10 + (*p++ - '0');
	if (p < end && *p == '.')
		for (p++; p < end && *p >= '0' && *p <= '9' && scale < PPM; p++)
		{
			frac = frac * 10 + (*p - '0');
			scale *= 10;
		}
	if (p != end || whole > 100)
		return -1;
	frac = frac * PPM / scale + whole * PPM;
	if (percent)
		frac /= 100;
	return frac > PPM ? -1 : frac;
}

static int
parse_targets(const char *s, const char *end, sim_fault_rule *r, char *err,
              size_t cap)
{
	int n = 1;

	for (const char *p = s; p < end; p++)
		n += *p == '+';
	r->addr = calloc((size_t) n, sizeof(*r->addr));
	r->naddr = 0;
	while (s < end)
	{
		const char *e = memchr(s, '+', (size_t) (end - s));
		char text[16];

		if (e == NULL)
			e = end;
		if (e - s != 12)
		{
			snprintf(err, cap,
			         "target \"%.*s\" is not a share or a "
			         "12-digit address",
			         (int) (e - s), s);
			return -1;
		}
		memcpy(text, s, 12);
		text[12] = '\0';
		if (dlt645_address_parse(text, r->addr[r->naddr], NULL) != DLT645_OK)
		{
			snprintf(err, cap, "bad address \"%s\"", text);
			return -1;
		}
		r->naddr++;
		s = e + 1;
	}
	return 0;
}

static int
parse_item(const char *s, const char *end, sim_faults *f, char *err,
           size_t cap)
{
	const char *at = memchr(s, '@', (size_t) (end - s));
	const char *name_end = s, *rate, *colon;
	sim_fault_rule rule;
	int64_t param = 0, rate_ppm = PPM;
	bool has_param = false;
	int k = -1;

	memset(&rule, 0, sizeof(rule));
	if (at == NULL)
		at = end;
	rate = memchr(s, '~', (size_t) (at - s));
	colon = memchr(s, ':', (size_t) ((rate ? rate : at) - s));
	name_end = colon ? colon : (rate ? rate : at);
	if (colon)
	{
		const char *pe = rate ? rate : at;
		char *stop;

		has_param = true;
		if (pe - colon == 2 && colon[1] >= 'a' && colon[1] <= 'c')
			param = colon[1] - 'a';
		else
		{
			param = strtoll(colon + 1, &stop, 10);
			if (stop != pe || param < 0)
			{
				snprintf(err, cap, "bad parameter in \"%.*s\"",
				         (int) (end - s), s);
				return -1;
			}
		}
	}
	if (rate && (rate_ppm = parse_share(rate + 1, at)) < 0)
	{
		snprintf(err, cap, "bad rate in \"%.*s\"", (int) (end - s), s);
		return -1;
	}
	if ((name_end - s == 13 && strncmp(s, "unknown_meter", 13) == 0) ||
	    (name_end - s == 15 && strncmp(s, "unknown_gateway", 15) == 0))
	{
		int *count =
		    name_end - s == 13 ? &f->unknown_meters : &f->unknown_gateways;

		*count = has_param ? (int) param : 1;
		return 0;
	}
	for (int i = 0; i < NNAMES; i++)
		if ((size_t) (name_end - s) == strlen(fault_names[i].name) &&
		    strncmp(s, fault_names[i].name, (size_t) (name_end - s)) == 0)
			k = i;
	if (k < 0)
	{
		snprintf(err, cap, "unknown fault \"%.*s\"", (int) (name_end - s), s);
		return -1;
	}
	rule.bit = fault_names[k].bit;
	rule.param = has_param ? param : fault_names[k].param;
	rule.rate_ppm = (uint32_t) rate_ppm;
	rule.ppm = PPM;
	if (at < end)
	{
		int64_t share = parse_share(at + 1, end);

		if (share >= 0)
			rule.ppm = (uint32_t) share;
		else if (parse_targets(at + 1, end, &rule, err, cap) != 0)
		{
			free(rule.addr);
			return -1;
		}
	}
	for (int i = 0; i < f->nrules; i++)
		if (f->rules[i].bit == rule.bit)
		{
			free(f->rules[i].addr);
			f->rules[i] = rule;
			return 0;
		}
	f->rules[f->nrules++] = rule;
	return 0;
}

int
sim_faults_parse(const char *spec, sim_faults *f, char *err, size_t cap)
{
	const char *s = spec;

	memset(f, 0, sizeof(*f));
	while (s && *s)
	{
		const char *e = strchr(s, ',');

		if (e == NULL)
			e = s + strlen(s);
		if (e > s && parse_item(s, e, f, err, cap) != 0)
			return -1;
		s = *e ? e + 1 : e;
	}
	for (int i = 0; i < f->nrules; i++)
	{
		const sim_fault_rule *r = &f->rules[i];

		f->rate_ppm[bit_index(r->bit)] = r->rate_ppm;
		if (r->bit == SIM_F_SLOW)
			f->slow_ms = r->param;
		if (r->bit == SIM_F_GARBAGE)
			f->garbage_max = r->param > 0 ? (int) r->param : 1;
	}
	return 0;
}

void
sim_faults_free(sim_faults *f)
{
	for (int i = 0; i < f->nrules; i++)
		free(f->rules[i].addr);
	f->nrules = 0;
}

static bool
selected(const sim_ctx *ctx, const sim_fault_rule *r, const sim_meter *m)
{
	if (r->naddr > 0)
	{
		for (int i = 0; i < r->naddr; i++)
			if (memcmp(r->addr[i], m->addr, DLT645_ADDR_LEN) == 0)
				return true;
		return false;
	}
	return sim_hash_addr(ctx->o.seed, m->addr, 0xFA000000u | r->bit) % PPM <
	       r->ppm;
}

void
sim_faults_assign(sim_ctx *ctx)
{
	for (int i = 0; i < ctx->nmeters; i++)
	{
		sim_meter *m = &ctx->meters[i];

		m->faults = 0;
		m->rng = sim_hash_addr(ctx->o.seed, m->addr, 0xFA17);
		for (int k = 0; k < ctx->faults.nrules; k++)
		{
			const sim_fault_rule *r = &ctx->faults.rules[k];

			if (!selected(ctx, r, m))
				continue;
			if (r->bit == SIM_F_PHASE_LOSS)
			{
				if (m->phase != 3)
					continue;
				m->lost_phase = (uint8_t) (r->param >= 0 && r->param < 3
				                               ? r->param
				                               : (int64_t) (m->rng % 3));
			}
			m->faults |= r->bit;
		}
	}
}

uint32_t
sim_faults_roll(sim_ctx *ctx, sim_meter *m)
{
	const uint32_t per_reply = SIM_F_SILENCE | SIM_F_BAD_CHECKSUM |
	                           SIM_F_GARBAGE | SIM_F_SLOW | SIM_F_DISCONNECT |
	                           SIM_F_DUPLICATE | SIM_F_REPLAY;
	uint32_t active = m->faults & per_reply, hit = 0;

	while (active)
	{
		uint32_t bit = active & (~active + 1);

		active &= ~bit;
		if (sim_rand(&m->rng) % PPM < ctx->faults.rate_ppm[bit_index(bit)])
			hit |= bit;
	}
	return hit;
}
