/*
 * stats.c
 *	  Counters and the command-latency histogram (see stats.h).
 */
#include "stats.h"

#include <stdio.h>

static int
lat_bucket(int64_t us)
{
	int64_t ms = us < 0 ? 0 : us / 1000;

	if (ms < 1000)
		return (int) ms;
	ms = 1000 + (ms - 1000) / 100;
	return ms >= LAT_BUCKETS ? LAT_BUCKETS - 1 : (int) ms;
}

static double
bucket_ms(int b)
{
	return b < 1000 ? b + 1.0 : 1000.0 + (b - 1000 + 1) * 100.0;
}

void
stats_latency_add(ingest_stats *s, int64_t us)
{
	s->lat[lat_bucket(us)]++;
	s->lat_count++;
	if (us > s->lat_max_us)
		s->lat_max_us = us;
}

double
stats_latency_ms(const ingest_stats *s, double pct)
{
	uint64_t want, seen = 0;

	if (s->lat_count == 0)
		return -1;
	want = (uint64_t) ((double) s->lat_count * pct / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	for (int b = 0; b < LAT_BUCKETS; b++)
	{
		seen += s->lat[b];
		if (seen >= want)
			return bucket_ms(b);
	}
	return bucket_ms(LAT_BUCKETS - 1);
}

#define APPEND(...)                                                           \
	do                                                                        \
	{                                                                         \
		if (n < cap)                                                          \
			n += (size_t) snprintf(buf + n, cap - n, __VA_ARGS__);            \
	} while (0)

size_t
stats_text(const ingest_stats *s, char *buf, size_t cap)
{
	size_t n = 0;

#define X(name, desc)                                                         \
	APPEND("%-28s %llu  # %s\n", #name, (unsigned long long) s->name, desc);
	INGEST_COUNTERS(X)
#undef X
	APPEND("%-28s %llu  # %s\n", "command_latency_count",
	       (unsigned long long) s->lat_count, "commands answered by meters");
	APPEND("%-28s %.0f  # %s\n", "command_latency_p50_ms",
	       stats_latency_ms(s, 50), "INSERT of the command -> meter reply");
	APPEND("%-28s %.0f  # %s\n", "command_latency_p99_ms",
	       stats_latency_ms(s, 99), "(histogram bucket upper bound)");
	APPEND("%-28s %.1f\n", "command_latency_max_ms", s->lat_max_us / 1000.0);
	return n < cap ? n : cap - 1;
}

size_t
stats_json(const ingest_stats *s, char *buf, size_t cap)
{
	size_t n = 0;

	APPEND("{");
#define X(name, desc)                                                         \
	APPEND("\"%s\": %llu, ", #name, (unsigned long long) s->name);
	INGEST_COUNTERS(X)
#undef X
	APPEND("\"command_latency_count\": %llu, \"command_latency_p50_ms\": "
	       "%.0f, \"command_latency_p99_ms\": %.0f, "
	       "\"command_latency_max_ms\": %.1f}",
	       (unsigned long long) s->lat_count, stats_latency_ms(s, 50),
	       stats_latency_ms(s, 99), s->lat_max_us / 1000.0);
	return n < cap ? n : cap - 1;
}
