/*
 * meters.h
 *	  The meter and gateway map: loaded from PostgreSQL at start, on SIGHUP
 *	  and every --reload-interval, looked up by address, meter id and
 *	  gateway serial. Entries are never freed while the daemon runs (a
 *	  meter deleted from the database loses M_IN_DB and is no longer
 *	  polled), so connections may keep pointers to them.
 */
#ifndef INGEST_METERS_H
#define INGEST_METERS_H

#include <libpq-fe.h>

#include "ingest.h"
#include "pgsess.h"

extern meter **meters;
extern uint32_t n_meters;
extern gateway **gateways;
extern uint32_t n_gateways;

extern meter *meters_by_addr(const uint8_t addr[DLT645_ADDR_LEN]);
extern meter *meters_by_id(int64_t meter_id);
extern gateway *gateways_by_serial(const char *serial);
extern int32_t gateways_index(const gateway *g);

/* Meters behind a gateway (index into gateways). */
extern void gateways_members(int32_t gw, meter ***list, uint32_t *n);

/*
 * Applies the results of prepaid.ingest_meter_map() and
 * prepaid.ingest_gateway_map() (either may be NULL: unchanged). Returns
 * the number of meters in the database.
 */
extern uint32_t meters_apply(const PGresult *meter_rows,
                             const PGresult *gateway_rows);

/* Queues a reload on the session (coalesced). */
extern void meters_reload(pgsess *s);

#endif /* INGEST_METERS_H */
