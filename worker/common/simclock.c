/*
 * simclock.c
 *	  Accelerated time (see simclock.h).
 */
#include "simclock.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t
clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

int64_t
realtime_us(void)
{
	return clock_us(CLOCK_REALTIME);
}

int
simclock_parse_start(const char *text, int64_t *out_us)
{
	int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
	struct tm tm;
	char *end;

	if (strcmp(text, "now") == 0)
	{
		*out_us = realtime_us();
		return 0;
	}
	if (strncmp(text, "now-", 4) == 0)
	{
		long long v = strtoll(text + 4, &end, 10);
		long long mult = 1;

		if (end == text + 4 || v < 0)
			return -1;
		switch (*end)
		{
			case 'd':
				mult = 86400;
				end++;
				break;
			case 'h':
				mult = 3600;
				end++;
				break;
			case 'm':
				mult = 60;
				end++;
				break;
			case 's':
				end++;
				break;
			case '\0':
				break;
			default:
				return -1;
		}
		if (*end != '\0')
			return -1;
		*out_us = realtime_us() - (int64_t) (v * mult) * 1000000;
		return 0;
	}
	if (strchr(text, '-') == NULL)
	{
		long long v = strtoll(text, &end, 10);

		if (end == text || *end != '\0' || v < 0)
			return -1;
		*out_us = (int64_t) v * 1000000;
		return 0;
	}
	if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
		return -1;
	text += n;
	if (*text == 'T' || *text == ' ')
	{
		n = 0;
		if (sscanf(text + 1, "%2d:%2d%n", &h, &mi, &n) != 2)
			return -1;
		text += 1 + n;
		if (*text == ':')
		{
			n = 0;
			if (sscanf(text + 1, "%2d%n", &s, &n) != 1)
				return -1;
			text += 1 + n;
		}
	}
	if (*text == 'Z')
		text++;
	if (*text != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || s > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	*out_us = (int64_t) timegm(&tm) * 1000000;
	return 0;
}

void
simclock_init(simclock *c, int64_t start_us, int64_t scale)
{
	c->start_us = start_us;
	c->scale = scale < 1 ? 1 : scale;
	c->mono_start_us = mono_us();
}

int64_t
simclock_now(const simclock *c)
{
	return c->start_us + (mono_us() - c->mono_start_us) * c->scale;
}

int64_t
simclock_mono_at(const simclock *c, int64_t sim_us)
{
	return c->mono_start_us + (sim_us - c->start_us) / c->scale;
}

int
simclock_format(int64_t us, char *buf, size_t cap)
{
	time_t sec = (time_t) (us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
	long frac = (long) (us - (int64_t) sec * 1000000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	return snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00",
	                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	                tm.tm_min, tm.tm_sec, frac);
}

int
simclock_parse_anchored(const char *text, int64_t scale, int64_t *out_us)
{
	const char *at = strchr(text, '@');
	char head[64];
	char *end;
	double w;
	int64_t t, w_us;

	if (at == NULL)
		return simclock_parse_start(text, out_us);
	if ((size_t) (at - text) >= sizeof(head))
		return -1;
	memcpy(head, text, (size_t) (at - text));
	head[at - text] = '\0';
	if (simclock_parse_start(head, &t) != 0)
		return -1;
	w = strtod(at + 1, &end);
	if (end == at + 1 || *end != '\0' || w < 0)
		return -1;
	/* microsecond precision: a double holds Unix seconds to ~0.2 us */
	w_us = (int64_t) (w * 1000000.0 + 0.5);
	*out_us = t + (realtime_us() - w_us) * (scale < 1 ? 1 : scale);
	return 0;
}
