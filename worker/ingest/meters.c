/*
 * meters.c
 *	  The meter and gateway map (see meters.h): pointer arrays, chained
 *	  hash tables by address, meter id and gateway serial, and gateway
 *	  member lists, rebuilt after each load.
 */
#include "meters.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net.h"
#include "poller.h"
#include "relay.h"

meter **meters;
uint32_t n_meters;
gateway **gateways;
uint32_t n_gateways;

static uint32_t *addr_buckets, *id_buckets, *serial_buckets;
static uint32_t meter_mask, gw_mask;
static meter ***gw_members;
static uint32_t *gw_member_count;

static uint32_t
hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static uint32_t
hash_id(int64_t id)
{
	uint64_t x = (uint64_t) id * 0x9E3779B97F4A7C15ull;

	return (uint32_t) (x >> 32);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
	{
		log_error("out of memory (%zu x %zu bytes)", n, size);
		exit(1);
	}
	return p;
}

meter *
meters_by_addr(const uint8_t addr[DLT645_ADDR_LEN])
{
	uint32_t i;

	if (!addr_buckets)
		return NULL;
	for (i = addr_buckets[hash_bytes(addr, DLT645_ADDR_LEN) & meter_mask]; i;
	     i = meters[i - 1]->addr_next)
	{
		meter *m = meters[i - 1];

		if (memcmp(m->addr, addr, DLT645_ADDR_LEN) == 0 &&
		    (m->flags & M_IN_DB))
			return m;
	}
	return NULL;
}

meter *
meters_by_id(int64_t meter_id)
{
	uint32_t i;

	if (!id_buckets)
		return NULL;
	for (i = id_buckets[hash_id(meter_id) & meter_mask]; i;
	     i = meters[i - 1]->id_next)
		if (meters[i - 1]->meter_id == meter_id)
			return meters[i - 1];
	return NULL;
}

gateway *
gateways_by_serial(const char *serial)
{
	uint32_t i;

	if (!serial_buckets)
		return NULL;
	for (i = serial_buckets[hash_bytes(serial, strlen(serial)) & gw_mask]; i;
	     i = gateways[i - 1]->serial_next)
		if (strcmp(gateways[i - 1]->serial, serial) == 0)
			return gateways[i - 1];
	return NULL;
}

int32_t
gateways_index(const gateway *g)
{
	for (uint32_t i = 0; i < n_gateways; i++)
		if (gateways[i] == g)
			return (int32_t) i;
	return -1;
}

void
gateways_members(int32_t gw, meter ***list, uint32_t *n)
{
	if (gw < 0 || (uint32_t) gw >= n_gateways || !gw_members)
	{
		*list = NULL;
		*n = 0;
		return;
	}
	*list = gw_members[gw];
	*n = gw_member_count[gw];
}

static uint32_t
table_mask(uint32_t n)
{
	uint32_t size = 16;

	while (size < n * 2)
		size <<= 1;
	return size - 1;
}

static void
rebuild_meter_index(void)
{
	free(addr_buckets);
	free(id_buckets);
	meter_mask = table_mask(n_meters);
	addr_buckets = xcalloc(meter_mask + 1, sizeof(uint32_t));
	id_buckets = xcalloc(meter_mask + 1, sizeof(uint32_t));
	for (uint32_t i = 0; i < n_meters; i++)
	{
		meter *m = meters[i];
		uint32_t a = hash_bytes(m->addr, DLT645_ADDR_LEN) & meter_mask;
		uint32_t d = hash_id(m->meter_id) & meter_mask;

		m->addr_next = addr_buckets[a];
		addr_buckets[a] = i + 1;
		m->id_next = id_buckets[d];
		id_buckets[d] = i + 1;
	}
}

static void
rebuild_gateway_index(void)
{
	free(serial_buckets);
	gw_mask = table_mask(n_gateways);
	serial_buckets = xcalloc(gw_mask + 1, sizeof(uint32_t));
	for (uint32_t i = 0; i < n_gateways; i++)
	{
		gateway *g = gateways[i];
		uint32_t h = hash_bytes(g->serial, strlen(g->serial)) & gw_mask;

		g->serial_next = serial_buckets[h];
		serial_buckets[h] = i + 1;
	}
}

/* Index of the gateway with this id, -1 (few gateways: a linear scan). */
static int32_t
gateway_by_id(int64_t id)
{
	for (uint32_t g = 0; g < n_gateways; g++)
		if (gateways[g]->gateway_id == id)
			return (int32_t) g;
	return -1;
}

static void
rebuild_members(void)
{
	uint32_t *fill;

	if (gw_members)
		for (uint32_t i = 0; i < n_gateways; i++)
			free(gw_members[i]);
	free(gw_members);
	free(gw_member_count);
	gw_members = xcalloc(n_gateways, sizeof(meter **));
	gw_member_count = xcalloc(n_gateways, sizeof(uint32_t));
	fill = xcalloc(n_gateways, sizeof(uint32_t));
	for (uint32_t i = 0; i < n_meters; i++)
	{
		int32_t g = meters[i]->gateway_id && (meters[i]->flags & M_IN_DB)
		                ? gateway_by_id(meters[i]->gateway_id)
		                : -1;

		if (g >= 0)
			gw_member_count[g]++;
	}
	for (uint32_t g = 0; g < n_gateways; g++)
		gw_members[g] = xcalloc(gw_member_count[g], sizeof(meter *));
	for (uint32_t i = 0; i < n_meters; i++)
	{
		int32_t g = meters[i]->gateway_id && (meters[i]->flags & M_IN_DB)
		                ? gateway_by_id(meters[i]->gateway_id)
		                : -1;

		if (g >= 0)
			gw_members[g][fill[g]++] = meters[i];
	}
	free(fill);
}

static int64_t
field_i64(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col)
	           ? 0
	           : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void
apply_gateways(const PGresult *r)
{
	int rows = PQntuples(r);

	for (int i = 0; i < rows; i++)
	{
		const char *serial = PQgetvalue(r, i, 2);
		gateway *g = gateways_by_serial(serial);

		if (g == NULL)
		{
			gateway **grown =
			    realloc(gateways, sizeof(gateway *) * (n_gateways + 1));

			if (grown == NULL)
			{
				log_error("out of memory loading gateways");
				exit(1);
			}
			gateways = grown;
			g = xcalloc(1, sizeof(gateway));
			g->serial = strdup(serial);
			gateways[n_gateways++] = g;
		}
		g->gateway_id = field_i64(r, i, 0);
		g->property_id = field_i64(r, i, 1);
	}
	rebuild_gateway_index();
}

static void
apply_meters(const PGresult *r)
{
	int rows = PQntuples(r);
	meter **grown;

	for (uint32_t i = 0; i < n_meters; i++)
		meters[i]->flags &= (uint8_t) ~M_IN_DB;
	grown =
	    realloc(meters, sizeof(meter *) * (n_meters + (uint32_t) rows + 1));
	if (grown == NULL)
	{
		log_error("out of memory loading %d meters", rows);
		exit(1);
	}
	meters = grown;
	for (int i = 0; i < rows; i++)
	{
		int64_t id = field_i64(r, i, 0);
		meter *m = meters_by_id(id);
		uint8_t addr[DLT645_ADDR_LEN];
		bool moved;

		if (dlt645_address_parse(PQgetvalue(r, i, 2), addr, NULL) != DLT645_OK)
		{
			log_warn("meter %lld has an invalid address \"%s\"; ignored",
			         (long long) id, PQgetvalue(r, i, 2));
			continue;
		}
		if (m == NULL)
		{
			m = xcalloc(1, sizeof(meter));
			m->meter_id = id;
			m->heap_pos = -1;
			relay_forget(m);
			m->index = n_meters;
			meters[n_meters++] = m;
		}
		moved = memcmp(m->addr, addr, sizeof(addr)) != 0 ||
		        m->gateway_id != field_i64(r, i, 3);
		if (moved && m->conn)
			net_detach_meter(m); /* address or gateway changed */
		memcpy(m->addr, addr, sizeof(addr));
		m->property_id = field_i64(r, i, 1);
		m->gateway_id = field_i64(r, i, 3);
		m->interval_us = field_i64(r, i, 4) * 1000000;
		m->rate_registers = (uint8_t) field_i64(r, i, 5);
		m->phase = (uint8_t) field_i64(r, i, 6);
		m->flags |= M_IN_DB;
	}
	rebuild_meter_index();
	for (uint32_t i = 0; i < n_meters; i++)
		if (!(meters[i]->flags & M_IN_DB) && meters[i]->conn)
			net_detach_meter(meters[i]);
}

uint32_t
meters_apply(const PGresult *meter_rows, const PGresult *gateway_rows)
{
	uint32_t in_db = 0;

	if (gateway_rows)
		apply_gateways(gateway_rows);
	if (meter_rows)
		apply_meters(meter_rows);
	rebuild_members();
	for (uint32_t i = 0; i < n_meters; i++)
		if (meters[i]->flags & M_IN_DB)
			in_db++;
	return in_db;
}

/* --- reload operation ------------------------------------------------- */

static PGresult *reload_meters, *reload_gateways;

static bool
reload_step(pgsess *s, pgop *op, int n)
{
	(void) op;
	if (n == 0)
		return pgsess_send(s, "SELECT * FROM prepaid.ingest_gateway_map()");
	if (n == 1)
		return pgsess_send(s, "SELECT * FROM prepaid.ingest_meter_map()");
	return false;
}

static void
reload_result(pgsess *s, pgop *op, int n, const PGresult *res)
{
	(void) s;
	(void) op;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return;
	if (n == 0)
	{
		PQclear(reload_gateways);
		reload_gateways =
		    PQcopyResult(res, PG_COPYRES_TUPLES | PG_COPYRES_ATTRS);
	}
	else
	{
		PQclear(reload_meters);
		reload_meters =
		    PQcopyResult(res, PG_COPYRES_TUPLES | PG_COPYRES_ATTRS);
	}
}

static void
reload_done(pgsess *s, pgop *op, pgop_outcome outcome, const char *err)
{
	(void) s;
	(void) op;
	if (outcome == PGOP_OK && reload_meters && reload_gateways)
	{
		uint32_t n = meters_apply(reload_meters, reload_gateways);

		log_info("meter map reloaded: %u meters, %u gateways", n, n_gateways);
		poller_schedule_all();
		net_refresh_gateways();
	}
	else
		log_warn("meter map reload failed: %s", err);
	PQclear(reload_meters);
	PQclear(reload_gateways);
	reload_meters = reload_gateways = NULL;
}

static pgop reload_op = {
    .step = reload_step, .result = reload_result, .done = reload_done};

void
meters_reload(pgsess *s)
{
	pgsess_submit(s, &reload_op);
}
