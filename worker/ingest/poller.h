/*
 * poller.h
 *	  The read schedule and the polls: every meter is read once per
 *	  meter.read_interval at a slot staggered by its id (simulated time);
 *	  a poll is the short sequence of reads of the --poll table whose
 *	  replies are assembled into one reading, spooled and batched.
 */
#ifndef INGEST_POLLER_H
#define INGEST_POLLER_H

#include "ingest.h"

/* Puts every meter of the map on the schedule (after a map load). */
extern void poller_schedule_all(void);

/* Starts the polls that are due; returns the next due instant. */
extern int64_t poller_run(int64_t now);

/* The request of the poll's current step into buf; 0 when none. */
extern int poller_request(meter *m, uint8_t *buf, size_t cap, uint8_t *func,
                          uint32_t *di);

/* The reply to the current step (normal or abnormal). */
extern void poller_reply(meter *m, const dlt645_message *msg);

/* The poll cannot go on (timeout, disconnect): abandoned, counted. */
extern void poller_abort(meter *m);

#endif /* INGEST_POLLER_H */
