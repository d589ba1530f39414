/*
 * sim_profile.c
 *	  Load profiles: how much power a meter draws in each 15-minute window,
 *	  by kind (dormitory evening peak, office working hours, factory shifts,
 *	  shared areas lit at night), weekday or weekend, with deterministic
 *	  day-to-day and window-to-window variation derived from the seed and
 *	  the meter address. Integer tables (per mille of the meter's peak load)
 *	  interpolated between hours; everything reproducible: the same seed,
 *	  address and local time always give the same watts.
 */
#include "sim.h"

#include <string.h>

static const char *const kind_names[SIM_NKINDS] = {"dormitory", "office",
                                                   "factory", "shared"};

/* Hourly load, per mille of the peak: [kind/variant][weekend][hour]. */
enum
{
	T_DORM,
	T_OFFICE,
	T_FACTORY1,
	T_FACTORY2,
	T_FACTORY3,
	T_SHARED,
	T_COUNT
};

static const int16_t hourly[T_COUNT][2][24] = {
    [T_DORM] = {{120, 100, 90,  90,  90,  110, 250, 400, 250,  120, 120, 120,
                 200, 200, 120, 120, 120, 300, 600, 850, 1000, 950, 800, 400},
                {150, 120, 100, 90,  90,  100, 150, 250, 350, 380, 400, 420,
                 450, 450, 400, 380, 400, 450, 650, 850, 950, 950, 800, 450}},
    [T_OFFICE] = {{80,   80,  80,  80,  80,  80,  90,   150,
                   500,  950, 950, 950, 700, 850, 1000, 1000,
                   1000, 800, 450, 250, 100, 100, 100,  80},
                  {80,  80,  80,  80,  80,  80,  80, 90, 110, 150, 150, 150,
                   150, 150, 150, 150, 120, 100, 90, 80, 80,  80,  80,  80}},
    /* one shift 08-17 */
    [T_FACTORY1] = {{120, 120,  120,  120,  120, 120, 150,  400,
                     950, 1000, 1000, 1000, 700, 950, 1000, 1000,
                     950, 600,  200,  150,  120, 120, 120,  120},
                    {120, 120, 120, 120, 120, 120, 120, 150,
                     300, 350, 350, 350, 300, 300, 300, 300,
                     250, 150, 120, 120, 120, 120, 120, 120}},
    /* two shifts 08-24 */
    [T_FACTORY2] = {{250,  200,  200,  200,  200, 200,  250,  600,
                     1000, 1000, 1000, 1000, 800, 1000, 1000, 1000,
                     950,  900,  950,  950,  950, 900,  850,  700},
                    {200, 200, 200, 200, 200, 200, 200, 300,
                     550, 600, 600, 600, 500, 550, 550, 550,
                     500, 450, 400, 400, 350, 300, 250, 200}},
    /* three shifts, around the clock */
    [T_FACTORY3] = {{850,  850,  850,  850,  850, 850,  800,  900,
                     1000, 1000, 1000, 1000, 900, 1000, 1000, 1000,
                     950,  900,  950,  950,  950, 900,  900,  850},
                    {700, 700, 700, 700, 700, 700, 700, 750,
                     800, 800, 800, 800, 750, 800, 800, 800,
                     800, 750, 750, 750, 750, 700, 700, 700}},
    [T_SHARED] = {{600, 600, 600, 600,  600,  500,  400, 350,
                   300, 300, 300, 300,  300,  300,  300, 300,
                   300, 400, 800, 1000, 1000, 1000, 900, 700},
                  {600, 600, 600, 600,  600,  500,  400, 350,
                   300, 300, 300, 300,  300,  300,  300, 300,
                   300, 400, 800, 1000, 1000, 1000, 900, 700}},
};

/* Peak load range (primary side, W) and power factor range by kind. */
static const struct
{
	int32_t lo_w, hi_w;
	int16_t pf_lo, pf_hi;
} kind_ranges[SIM_NKINDS] = {
    [SIM_DORMITORY] = {1500, 4000, 930, 990},
    [SIM_OFFICE] = {4000, 15000, 880, 960},
    [SIM_FACTORY] = {20000, 120000, 800, 920},
    [SIM_SHARED] = {500, 3000, 900, 980},
};

const char *
sim_kind_name(int kind)
{
	return kind >= 0 && kind < SIM_NKINDS ? kind_names[kind] : "office";
}

int
sim_kind_parse(const char *name)
{
	for (int i = 0; i < SIM_NKINDS; i++)
		if (strcmp(name, kind_names[i]) == 0)
			return i;
	return -1;
}

/* splitmix64's finaliser: a good 64-bit mix. */
uint64_t
sim_mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

uint64_t
sim_hash_addr(uint64_t seed, const uint8_t addr[6], uint64_t salt)
{
	uint64_t a = 0;

	for (int i = 0; i < 6; i++)
		a = a << 8 | addr[i];
	return sim_mix(sim_mix(seed ^ a) ^ sim_mix(salt));
}

int32_t
sim_noise(uint64_t seed, uint64_t salt, int64_t n, int32_t range)
{
	uint64_t h =
	    sim_mix(seed ^ sim_mix(salt * 0x100000001B3ULL ^ (uint64_t) n));

	if (range <= 0)
		return 0;
	return (int32_t) (h % (uint64_t) (2 * range + 1)) - range;
}

void
sim_profile_setup(sim_meter *m)
{
	uint64_t h = sim_hash_addr(m->seed, m->addr, 0x5EED);
	int64_t span, primary, secondary, amps, ratio;
	int k = m->kind < SIM_NKINDS ? m->kind : SIM_OFFICE;

	span = kind_ranges[k].hi_w - kind_ranges[k].lo_w;
	primary = kind_ranges[k].lo_w + (int64_t) (h % (uint64_t) (span + 1));
	if (k == SIM_OFFICE && m->phase == 3)
		primary *= 2;
	if (k == SIM_FACTORY && m->phase == 1)
		primary /= 8; /* a small workshop on one phase */
	ratio = (int64_t) m->pt * m->ct;
	secondary = primary / (ratio > 0 ? ratio : 1);
	amps = m->phase == 1 ? 60 : (m->ct > 1 ? 6 : 80);
	m->max_w = (int32_t) ((int64_t) m->v_nom_dv * amps * m->phase / 10);
	if (secondary > (int64_t) m->max_w * 9 / 10)
		secondary = (int64_t) m->max_w * 9 / 10;
	m->base_w = (int32_t) (secondary > 1 ? secondary : 1);
	h = sim_mix(h);
	m->pf_base = (int16_t) (kind_ranges[k].pf_lo +
	                        (int) (h % (uint64_t) (kind_ranges[k].pf_hi -
	                                               kind_ranges[k].pf_lo + 1)));
	h = sim_mix(h);
	m->shifts = (uint8_t) (1 + h % 3);
	if (m->phase == 1)
	{
		m->share[0] = 1000;
		m->share[1] = m->share[2] = 0;
	}
	else
	{
		m->share[0] = (uint16_t) (333 + sim_noise(m->seed, h, 1, 40));
		m->share[1] = (uint16_t) (333 + sim_noise(m->seed, h, 2, 40));
		m->share[2] = (uint16_t) (1000 - m->share[0] - m->share[1]);
	}
}

static int
table_of(const sim_meter *m)
{
	switch (m->kind)
	{
		case SIM_DORMITORY:
			return T_DORM;
		case SIM_FACTORY:
			return m->shifts == 1 ? T_FACTORY1
			                      : (m->shifts == 2 ? T_FACTORY2 : T_FACTORY3);
		case SIM_SHARED:
			return T_SHARED;
		default:
			return T_OFFICE;
	}
}

int32_t
sim_profile_load_w(sim_meter *m, int64_t local_min)
{
	int64_t day = sim_floor_div(local_min, 1440);
	int mod = (int) (local_min - day * 1440);
	int hour = mod / 60, minute = mod % 60;
	int wd0 = (int) ((day % 7 + 11) % 7); /* 0 = Sunday */
	int weekend = wd0 == 0 || wd0 == 6;
	const int16_t *tab = hourly[table_of(m)][weekend];
	int64_t a = tab[hour], b = tab[(hour + 1) % 24];
	/* value at the middle of the window */
	int64_t val = a + (b - a) * (2 * minute + SIM_BLOCK_MIN) / 120;
	int64_t winf =
	    1000 + sim_noise(m->seed, 12, local_min / SIM_BLOCK_MIN, 80);
	int64_t w;

	if (day != m->day_n || m->day_f == 0)
	{
		m->day_n = day;
		m->day_f = 1000 + sim_noise(m->seed, 11, day, 100);
	}
	if (m->kind == SIM_FACTORY && wd0 == 0)
		val = val * 6 / 10; /* Sunday: below the Saturday table */
	w = (int64_t) m->base_w * val * m->day_f / 1000 * winf / 1000000;
	if (w > m->max_w)
		w = m->max_w;
	return (int32_t) (w > 0 ? w : 0);
}
