/*
 * report.h
 *	  What the daemon tells the database besides readings, batched on the
 *	  reports session: meter connections (prepaid.meter_connection), meter
 *	  last_seen and gateway online state, quarantined frames, counters
 *	  (prepaid.ingest_stats), the meter map reload and the hourly prune.
 */
#ifndef INGEST_REPORT_H
#define INGEST_REPORT_H

#include "ingest.h"
#include "pgsess.h"

extern void report_init(pgsess *s);

/* A frame arrived from the meter. */
extern void report_seen(meter *m);

/* The meter's reachability changed (m->conn set or cleared). */
extern void report_connection(meter *m);

/* A gateway connected or went away. */
extern void report_gateway(gateway *g);

/*
 * A rejected frame or connection: reason unknown_meter, unknown_gateway or
 * bad_frame; address (text) or NULL; the bytes (frame or line) or NULL.
 * bad_frame samples are rate-limited.
 */
extern void report_quarantine(const char *reason, const char *detail,
                              const meter *m, const char *address,
                              const uint8_t *bytes, size_t len);

/* Flushes what is due; returns the next deadline. */
extern int64_t report_timers(int64_t now);

/* Sends everything now (drain). */
extern void report_flush_all(void);
extern bool report_idle(void);

#endif /* INGEST_REPORT_H */
