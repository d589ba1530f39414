/*
 * relay.h
 *	  What the daemon knows of each meter's relay -- the status word 3 it
 *	  last read (a poll's read or a command's read-back) -- and the rule that
 *	  decides whether an energy poll (--poll energy) reads status word 3 too
 *	  or is one request/reply exchange only. A poll that does not read it
 *	  stores relay_open and status_words NULL.
 */
#ifndef INGEST_RELAY_H
#define INGEST_RELAY_H

#include "ingest.h"

/* meter.relay */
#define RELAY_UNKNOWN 0
#define RELAY_CLOSED  1
#define RELAY_OPEN    2

/* Status word 3 was read from the meter (poll or read-back). */
extern void relay_note(meter *m, int64_t sw3);

/* The state is no longer known (connected anew, a failed read). */
extern void relay_forget(meter *m);

/* A relay or keep-power command was claimed for the meter: the next poll
 * reads status word 3. */
extern void relay_command_claimed(meter *m);

/*
 * An energy poll's energy block arrived (total register energy_wh): does
 * the poll read status word 3 as well? Yes when the relay state is unknown
 * or open, when the register has not moved since the meter's previous
 * poll (no consumption: the relay may have opened), when a relay command
 * was claimed since the last read, and on every --status-every-th poll.
 */
extern bool relay_read_due(meter *m, int64_t energy_wh);

#endif /* INGEST_RELAY_H */
