/*
 * simclock.h
 *	  Accelerated ("simulated") time shared by prepaid-ingest and prepaid-sim:
 *	  simulated time = T + (wall - start) x N, options --time-start T and
 *	  --time-scale N. Wall time is measured on CLOCK_MONOTONIC, so a clock
 *	  step on the host does not move simulated time. All times are
 *	  microseconds; simulated time is microseconds since the Unix epoch (UTC).
 */
#ifndef WORKER_SIMCLOCK_H
#define WORKER_SIMCLOCK_H

#include <stddef.h>
#include <stdint.h>

typedef struct simclock
{
	int64_t start_us;      /* T: simulated time at start */
	int64_t scale;         /* N >= 1 */
	int64_t mono_start_us; /* CLOCK_MONOTONIC at start */
} simclock;

/* CLOCK_MONOTONIC and CLOCK_REALTIME in microseconds. */
extern int64_t mono_us(void);
extern int64_t realtime_us(void);

/*
 * Parses --time-start: "now", "now-<n>[smhd]" (e.g. "now-30d"), Unix
 * seconds ("1764000000"), or UTC "YYYY-MM-DD[Thh:mm[:ss]][Z]" (a space
 * may replace the T). Returns 0, or -1 if the text is not understood.
 */
extern int simclock_parse_start(const char *text, int64_t *out_us);

/*
 * --time-start with an optional anchor: "T@W", W the Unix time (seconds,
 * decimals allowed) at which simulated time equals T, gives the start
 * T + (now - W) x scale, so two programs started at different moments agree
 * on simulated time. Without "@W" the same as simclock_parse_start.
 */
extern int simclock_parse_anchored(const char *text, int64_t scale,
                                   int64_t *out_us);

/* Starts the clock now: simulated time T at this instant, running N x. */
extern void simclock_init(simclock *c, int64_t start_us, int64_t scale);

/* Simulated time now. */
extern int64_t simclock_now(const simclock *c);

/* The CLOCK_MONOTONIC instant (us) at which simulated time reaches t. */
extern int64_t simclock_mono_at(const simclock *c, int64_t sim_us);

/*
 * "2026-11-25 10:00:00.123456+00" (UTC, microseconds, PostgreSQL
 * timestamptz input). Returns the length; cap 32 suffices.
 */
extern int simclock_format(int64_t us, char *buf, size_t cap);

#endif /* WORKER_SIMCLOCK_H */
