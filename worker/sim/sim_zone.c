/*
 * sim_zone.c
 *	  Time zones and civil dates for the meter clocks. Each zone named by the
 *	  fleet (property.time_zone, tariff.time_zone) becomes a table of UTC
 *	  offset transitions, built once at start-up from the system's tz data
 *	  (localtime_r under TZ=<zone>, probed every 6 hours and bisected to the
 *	  second) over a window around the simulated start. After that, offsets
 *	  are a table lookup: no TZ switching while the fleet runs.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define PROBE_S   (6 * 3600)
#define BEFORE_S  (400LL * 86400)
#define AFTER_S   (40LL * 366 * 86400)
#define MAX_ZONES 64

typedef struct zone
{
	char *name;
	int n;          /* transitions */
	int64_t *at_us; /* instant of each transition (UTC) */
	int32_t *off_s; /* offset from it on */
	int32_t off0_s; /* offset before the first transition */
} zone;

static zone zones[MAX_ZONES];
static int nzones;

int64_t
sim_days_from_civil(int y, int m, int d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy =
	    (153 * (unsigned) (m > 2 ? m - 3 : m + 9) + 2) / 5 + (unsigned) d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t) doe - 719468;
}

void
sim_civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned) (z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) ((int64_t) yoe + era * 400 + (*m <= 2));
}

void
sim_local_datetime(int64_t local_us, dlt645_datetime *t)
{
	int64_t s = sim_floor_div(local_us, 1000000);
	int64_t days = sim_floor_div(s, 86400);
	int64_t sod = s - days * 86400;
	int y, m, d;

	sim_civil_from_days(days, &y, &m, &d);
	t->year = (uint16_t) y;
	t->month = (uint8_t) m;
	t->day = (uint8_t) d;
	t->hour = (uint8_t) (sod / 3600);
	t->minute = (uint8_t) (sod / 60 % 60);
	t->second = (uint8_t) (sod % 60);
	t->weekday = (uint8_t) ((days % 7 + 11) % 7); /* 1970-01-01: Thursday */
}

int64_t
sim_datetime_local_us(const dlt645_datetime *t)
{
	int64_t days = sim_days_from_civil(t->year, t->month, t->day);

	return ((days * 86400) + t->hour * 3600 + t->minute * 60 + t->second) *
	       1000000LL;
}

/* Offset (seconds east of UTC) of the current TZ at a Unix time. */
static int32_t
probe(int64_t s)
{
	time_t tt = (time_t) s;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return (int32_t) tm.tm_gmtoff;
}

static bool
zone_file_exists(const char *name)
{
	char path[512];

	if (strcmp(name, "UTC") == 0 || strcmp(name, "GMT") == 0)
		return true;
	if (name[0] == '/' || strstr(name, "..") != NULL)
		return false;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
	return access(path, R_OK) == 0;
}

static void
zone_build(zone *z, int64_t around_s)
{
	const char *old = getenv("TZ");
	char *saved = old ? strdup(old) : NULL;
	int cap = 16;
	int64_t s, lo_s = around_s - BEFORE_S, hi_s = around_s + AFTER_S;
	int32_t prev;

	z->at_us = malloc(sizeof(int64_t) * cap);
	z->off_s = malloc(sizeof(int32_t) * cap);
	z->n = 0;
	setenv("TZ", z->name, 1);
	tzset();
	prev = z->off0_s = probe(lo_s);
	for (s = lo_s + PROBE_S; s <= hi_s; s += PROBE_S)
	{
		int32_t cur = probe(s);
		int64_t a = s - PROBE_S, b = s;

		if (cur == prev)
			continue;
		/* offset(a) == prev, offset(b) == cur: bisect to the second */
		while (b - a > 1)
		{
			int64_t mid = a + (b - a) / 2;

			if (probe(mid) == prev)
				a = mid;
			else
				b = mid;
		}
		if (z->n == cap)
		{
			cap *= 2;
			z->at_us = realloc(z->at_us, sizeof(int64_t) * cap);
			z->off_s = realloc(z->off_s, sizeof(int32_t) * cap);
		}
		z->at_us[z->n] = b * 1000000;
		z->off_s[z->n] = cur;
		z->n++;
		prev = cur;
	}
	if (saved)
	{
		setenv("TZ", saved, 1);
		free(saved);
	}
	else
		unsetenv("TZ");
	tzset();
}

int
sim_zone_get(const char *name, int64_t around_us)
{
	zone *z;

	if (name == NULL || *name == '\0')
		name = "UTC";
	for (int i = 0; i < nzones; i++)
		if (strcmp(zones[i].name, name) == 0)
			return i;
	if (!zone_file_exists(name))
	{
		log_warn("unknown time zone \"%s\": using UTC", name);
		return sim_zone_get("UTC", around_us);
	}
	if (nzones == MAX_ZONES)
	{
		log_warn("more than %d time zones: \"%s\" uses UTC", MAX_ZONES, name);
		return sim_zone_get("UTC", around_us);
	}
	z = &zones[nzones];
	z->name = strdup(name);
	zone_build(z, sim_floor_div(around_us, 1000000));
	return nzones++;
}

int32_t
sim_zone_offset(int zi, int64_t utc_us, int64_t *until_us)
{
	const zone *z = &zones[zi];
	int lo = 0, hi = z->n; /* first transition after utc_us */

	while (lo < hi)
	{
		int mid = (lo + hi) / 2;

		if (z->at_us[mid] <= utc_us)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (until_us)
		*until_us = lo < z->n ? z->at_us[lo] : SIM_NEVER;
	return lo == 0 ? z->off0_s : z->off_s[lo - 1];
}

int64_t
sim_zone_to_utc(int zi, int64_t local_us)
{
	int64_t utc =
	    local_us - (int64_t) sim_zone_offset(zi, local_us, NULL) * 1000000;

	return local_us - (int64_t) sim_zone_offset(zi, utc, NULL) * 1000000;
}

const char *
sim_zone_name(int zi)
{
	return zones[zi].name;
}

void
sim_zone_free_all(void)
{
	for (int i = 0; i < nzones; i++)
	{
		free(zones[i].name);
		free(zones[i].at_us);
		free(zones[i].off_s);
	}
	nzones = 0;
}
