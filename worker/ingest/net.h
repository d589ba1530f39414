/*
 * net.h
 *	  The meter-facing TCP side: the listening socket, one connection per
 *	  meter or gateway, identification (read-address, unsolicited reply
 *	  frames, gateway registration lines), one outstanding request per
 *	  socket with a timeout, and the work queue of the meters reachable
 *	  through each socket (commands before polls).
 */
#ifndef INGEST_NET_H
#define INGEST_NET_H

#include "ingest.h"

extern void net_listen(void);
extern void net_stop_listening(void);

/* The listening socket, or the meter sockets' set: handles at most a
 * burst of their events (the main loop calls it after its other events). */
extern void net_event(evsrc *ev, uint32_t events);

/* Puts a meter with work (a poll or a command) on its connection's queue
 * (urgent: at the front) and sends at once when the socket is free. */
extern void net_enqueue(meter *m, bool urgent);

/* The meter is no longer reachable here (removed, moved): its direct
 * connection is closed, or it leaves its gateway. */
extern void net_detach_meter(meter *m);

/* After a map reload: meters newly behind a connected gateway join it. */
extern void net_refresh_gateways(void);

/* Request, identification and idle timeouts; returns the next deadline. */
extern int64_t net_timers(int64_t now);

/* Frees connections closed during this loop turn. */
extern void net_reap(void);
extern void net_close_all(void);
extern uint32_t net_open_connections(void);

#endif /* INGEST_NET_H */
