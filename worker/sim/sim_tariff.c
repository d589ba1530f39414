/*
 * sim_tariff.c
 *	  Tariffs compiled for the meter model: each tariff version becomes one
 *	  day plan per (season, day type) -- the TOU period of every minute of
 *	  the day and the minute it next changes -- plus its holidays and the
 *	  register each period accumulates in (tariff_version.registers: the
 *	  period of T1..Tn). The loaders (database, CSV) fill versions with
 *	  sim_version_init / _fill / _finish; the meter asks sim_tariff_plan for
 *	  the plan of a local day.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

static const char *const period_names[SIM_NPERIODS] = {"sharp", "peak", "flat",
                                                       "valley", "deep"};

int
sim_period_parse(const char *name)
{
	for (int i = 0; i < SIM_NPERIODS; i++)
		if (strcmp(name, period_names[i]) == 0)
			return i;
	return -1;
}

const char *
sim_period_name(int period)
{
	return period >= 0 && period < SIM_NPERIODS ? period_names[period] : "";
}

void
sim_version_init(sim_version *v, int nseasons, int ndaytypes)
{
	memset(v, 0, sizeof(*v));
	v->from_us = INT64_MIN;
	v->to_us = SIM_NEVER;
	v->nseasons = nseasons;
	v->ndaytypes = ndaytypes;
	v->seasons = calloc((size_t) nseasons, sizeof(sim_season));
	v->plans = malloc(sizeof(sim_plan) * (size_t) (nseasons * ndaytypes));
	for (int i = 0; i < nseasons * ndaytypes; i++)
		memset(v->plans[i].period, SIM_NO_PERIOD, 1440);
	for (int i = 0; i < nseasons; i++)
	{
		v->seasons[i].from_md = 101;
		v->seasons[i].to_md = 1231;
	}
	for (int p = 0; p < SIM_NPERIODS; p++)
		v->reg_of_period[p] = -1;
}

void
sim_version_fill(sim_version *v, int season, int daytype, int from_min,
                 int to_min, int period)
{
	sim_plan *p;

	if (season < 0 || season >= v->nseasons || daytype < 0 ||
	    daytype >= v->ndaytypes)
		return;
	p = &v->plans[season * v->ndaytypes + daytype];
	if (from_min < 0)
		from_min = 0;
	if (to_min > 1440)
		to_min = 1440;
	for (int m = from_min; m < to_min; m++)
		p->period[m] = (uint8_t) period;
}

static void
plan_finish(sim_plan *p)
{
	uint16_t next = 1440;

	for (int m = 1439; m >= 0; m--)
	{
		p->next[m] = next;
		if (m > 0 && p->period[m - 1] != p->period[m])
			next = (uint16_t) m;
	}
}

void
sim_version_finish(sim_version *v)
{
	for (int i = 0; i < v->nseasons * v->ndaytypes; i++)
		plan_finish(&v->plans[i]);
	for (int p = 0; p < SIM_NPERIODS; p++)
		v->reg_of_period[p] = -1;
	for (int r = v->nregs - 1; r >= 0; r--)
		if (v->reg_period[r] < SIM_NPERIODS)
			v->reg_of_period[v->reg_period[r]] = (int8_t) r;
}

void
sim_tariff_free(sim_tariff *t)
{
	for (int i = 0; i < t->nversions; i++)
	{
		free(t->versions[i].seasons);
		free(t->versions[i].plans);
		free(t->versions[i].holiday_day);
		free(t->versions[i].holiday_type);
	}
	free(t->versions);
	t->versions = NULL;
	t->nversions = 0;
}

const sim_plan *
sim_flat_plan(void)
{
	static sim_plan flat;
	static bool ready;

	if (!ready)
	{
		memset(flat.period, SIM_FLAT, sizeof(flat.period));
		plan_finish(&flat);
		ready = true;
	}
	return &flat;
}

static bool
season_covers(const sim_season *s, int md)
{
	if (s->from_md <= s->to_md)
		return md >= s->from_md && md <= s->to_md;
	return md >= s->from_md || md <= s->to_md;
}

static int
day_type_of(const sim_version *v, int64_t day)
{
	int lo = 0, hi = v->nholidays - 1;
	int wd0 = (int) ((day % 7 + 11) % 7); /* 0 = Sunday */

	while (lo <= hi)
	{
		int mid = (lo + hi) / 2;

		if (v->holiday_day[mid] == day)
			return v->holiday_type[mid];
		if (v->holiday_day[mid] < day)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return v->daytype_of_wd[wd0 == 0 ? 6 : wd0 - 1];
}

const sim_plan *
sim_tariff_plan(const sim_tariff *t, int64_t clock_us, int64_t local_day,
                const sim_version **ver, int64_t *until_us)
{
	const sim_version *v = NULL;
	int y, m, d, md, season = -1;

	*ver = NULL;
	*until_us = SIM_NEVER;
	if (t == NULL || t->nversions == 0)
		return sim_flat_plan();
	for (int i = t->nversions - 1; i >= 0; i--)
		if (t->versions[i].from_us <= clock_us)
		{
			v = &t->versions[i];
			break;
		}
	if (v == NULL)
	{
		/* before the first version: use it (the meter was programmed) */
		v = &t->versions[0];
		*until_us = v->from_us;
	}
	else if (clock_us >= v->to_us)
		return sim_flat_plan();
	else
		*until_us = v->to_us;
	*ver = v;
	sim_civil_from_days(local_day, &y, &m, &d);
	md = m * 100 + d;
	for (int s = 0; s < v->nseasons; s++)
		if (season_covers(&v->seasons[s], md))
		{
			season = s;
			break;
		}
	if (season < 0)
		season = 0;
	return &v->plans[season * v->ndaytypes + day_type_of(v, local_day)];
}
