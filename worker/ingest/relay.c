/*
 * relay.c
 *	  The relay state known per meter and when an energy poll reads status
 *	  word 3 (see relay.h).
 *
 *	  Reading it on every poll costs a second exchange per reading, which
 *	  on loopback TCP is most of the daemon's CPU (docs/ingest.md). Skipping
 *	  it loses nothing the platform acts on: a relay that opens stops the
 *	  register (no current flows), so a poll whose register did not move
 *	  reads the status word; an open relay is read on every poll until it
 *	  closes; a closed relay whose register keeps moving is confirmed every
 *	  --status-every polls. So relay_open is never NULL while the relay is
 *	  open, except on the one poll whose interval it opened in (the
 *	  register still moved before it opened).
 */
#include "relay.h"

#include "dlt645.h"

#define NO_ENERGY (-1)

void
relay_note(meter *m, int64_t sw3)
{
	m->relay = (sw3 & DLT645_SW3_RELAY_OPEN) ? RELAY_OPEN : RELAY_CLOSED;
	m->polls_since_sw3 = 0;
	m->flags &= (uint8_t) ~M_SW3_DUE;
}

void
relay_forget(meter *m)
{
	m->relay = RELAY_UNKNOWN;
	m->last_energy_wh = NO_ENERGY;
}

void
relay_command_claimed(meter *m)
{
	m->flags |= M_SW3_DUE;
}

bool
relay_read_due(meter *m, int64_t energy_wh)
{
	bool moved =
	    m->last_energy_wh != NO_ENERGY && energy_wh != m->last_energy_wh;

	m->last_energy_wh = energy_wh;
	if (m->polls_since_sw3 < UINT8_MAX)
		m->polls_since_sw3++;
	return m->relay != RELAY_CLOSED || !moved || (m->flags & M_SW3_DUE) ||
	       m->polls_since_sw3 >= G.opts.status_every;
}
