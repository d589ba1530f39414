/*
 * command.h
 *	  Meter commands (F2): claiming pending commands of the meters this
 *	  daemon holds (LISTEN prepaid_command, plus a safety-net poll),
 *	  encoding them as DL/T 645 requests, matching the replies (relay
 *	  commands are confirmed by reading status word 3 back) and recording
 *	  the outcome in batches.
 */
#ifndef INGEST_COMMAND_H
#define INGEST_COMMAND_H

#include "ingest.h"
#include "pgsess.h"

/* The commands session: LISTEN prepaid_command and its callbacks. */
extern void command_init(pgsess *s);

/* Claim now (a notification, a new connection, the safety net). */
extern void command_claim_soon(void);

/* Whether the meter has a command request to send now. */
extern bool command_has_work(const meter *m);

/* The request of the meter's current command; 0 when none. *func is
 * DLT645_FN_TIME_SYNC for a broadcast that expects no reply. */
extern int command_request(meter *m, uint8_t *buf, size_t cap, uint8_t *func,
                           uint32_t *di);

/* After a broadcast without reply was written. */
extern void command_sent_noreply(meter *m);

extern void command_reply(meter *m, const dlt645_message *msg);
extern void command_timeout(meter *m);

/* The meter's connection went away: its commands go back to the queue. */
extern void command_disconnected(meter *m);

/* Delayed read-backs and the safety-net claim; returns the next deadline. */
extern int64_t command_timers(int64_t now);

/* Nothing claimed and nothing waiting to be recorded. */
extern bool command_idle(void);

#endif /* INGEST_COMMAND_H */
