/*
 * sim_fleet_db.c
 *	  Loading the fleet from PostgreSQL with libpq: the tariffs the meters
 *	  use (versions, seasons, day types, holidays, slots -- the same rows
 *	  prepaid.tariff_put wrote), the gateways, and the meters with their
 *	  address, phase, PT/CT, load kind (customer kind, else area kind),
 *	  gateway, rate registers, site time zone, relay and keep-power state and
 *	  their newest reading (so the registers never go back). --property N
 *	  restricts everything to one property.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"

/* Queries that filter by property take $1 = property id or NULL. */
#define PROP_FILTER(col) "($1::bigint IS NULL OR " col " = $1)"

static const char tariff_sql[] =
    "SELECT t.tariff_id, t.time_zone FROM prepaid.tariff t "
    "WHERE t.tariff_id IN (SELECT m.tariff_id FROM prepaid.meter m "
    "WHERE " PROP_FILTER("m.property_id") ") ORDER BY t.tariff_id";

static const char version_sql[] =
    "SELECT v.tariff_id, v.version_no, "
    " CASE WHEN isfinite(v.valid_from) THEN (extract(epoch FROM "
    "v.valid_from) * 1000000)::int8 END, "
    " CASE WHEN isfinite(v.valid_to) THEN (extract(epoch FROM v.valid_to) * "
    "1000000)::int8 END, "
    " array_to_string(v.registers, ','), "
    " (SELECT count(*) FROM prepaid.tariff_season s WHERE s.tariff_id = "
    "v.tariff_id AND s.version_no = v.version_no), "
    " (SELECT count(*) FROM prepaid.tariff_day_type d WHERE d.tariff_id = "
    "v.tariff_id AND d.version_no = v.version_no) "
    "FROM prepaid.tariff_version v WHERE v.tariff_id IN (SELECT m.tariff_id "
    "FROM prepaid.meter m WHERE " PROP_FILTER(
        "m.property_id") ") "
                         "ORDER BY v.tariff_id, v.valid_from";

static const char season_sql[] =
    "SELECT tariff_id, version_no, season_no, from_md, to_md "
    "FROM prepaid.tariff_season";

static const char daytype_sql[] =
    "SELECT tariff_id, version_no, day_type_no, array_to_string(weekdays, "
    "',') FROM prepaid.tariff_day_type";

static const char holiday_sql[] =
    "SELECT h.tariff_id, h.version_no, h.day - DATE '1970-01-01', "
    "d.day_type_no FROM prepaid.tariff_holiday h JOIN prepaid.tariff_day_type "
    "d USING (tariff_id, version_no, day_type) "
    "ORDER BY h.tariff_id, h.version_no, h.day";

static const char slot_sql[] =
    "SELECT s.tariff_id, s.version_no, s.season_no, d.day_type_no, "
    "s.start_min, s.end_min, s.period FROM prepaid.tariff_slot s JOIN "
    "prepaid.tariff_day_type d USING (tariff_id, version_no, day_type)";

static const char gateway_sql[] =
    "SELECT g.gateway_id, g.serial FROM prepaid.gateway g WHERE " PROP_FILTER(
        "g.property_id") " ORDER BY g.gateway_id";

static const char meter_sql[] =
    "SELECT m.meter_id, m.address, m.phase, m.pt_ratio, m.ct_ratio, "
    " CASE WHEN c.kind IN ('dormitory', 'office', 'factory') THEN c.kind "
    "      WHEN a.kind IN ('dormitory', 'office', 'factory', 'shared') THEN "
    "a.kind "
    "      WHEN c.kind = 'person' THEN 'dormitory' ELSE 'office' END, "
    " m.gateway_id, m.rate_registers, m.tariff_id, p.time_zone, "
    " (m.voltage_nominal * 10)::int, m.register_modulus_wh, "
    " m.relay_actual = 'open', m.keep_power, m.mode = 'prepaid', "
    " coalesce(l.energy_wh, m.opening_energy_wh), "
    " array_to_string(l.rate_wh, ','), "
    " (extract(epoch FROM coalesce(l.read_at, CASE WHEN "
    "m.opening_energy_wh IS NOT NULL THEN m.opened_at END)) * 1000000)::int8 "
    "FROM prepaid.meter m "
    "JOIN prepaid.property p ON p.property_id = m.property_id "
    "JOIN prepaid.account ac ON ac.property_id = m.property_id AND "
    "ac.account_id = m.account_id "
    "JOIN prepaid.customer c ON c.property_id = ac.property_id AND "
    "c.customer_id = ac.customer_id "
    "LEFT JOIN prepaid.area a ON a.property_id = m.property_id AND a.area_id "
    "= m.area_id "
    "LEFT JOIN LATERAL (SELECT r.read_at, r.energy_wh, r.rate_wh FROM "
    "prepaid.reading r WHERE r.property_id = m.property_id AND r.meter_id = "
    "m.meter_id ORDER BY r.read_at DESC LIMIT 1) l ON true "
    "WHERE " PROP_FILTER("m.property_id") " ORDER BY m.meter_id";

typedef struct db
{
	PGconn *conn;
	const char *param;
	char prop[24];
} db;

static PGresult *
query(db *d, const char *sql)
{
	int np = strstr(sql, "$1") != NULL;
	PGresult *r = PQexecParams(d->conn, sql, np, NULL, np ? &d->param : NULL,
	                           NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		log_error("loading the fleet: %s", PQerrorMessage(d->conn));
		PQclear(r);
		return NULL;
	}
	return r;
}

static int64_t
num(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col)
	           ? 0
	           : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int
find_tariff(const sim_ctx *ctx, int64_t id)
{
	for (int i = 0; i < ctx->ntariffs; i++)
		if (ctx->tariffs[i].tariff_id == id)
			return i;
	return -1;
}

/* The version (tariff_id, version_no) among those loaded, or NULL. */
static sim_version *
find_version(sim_ctx *ctx, const PGresult *r, int row, int **vnos)
{
	int ti = find_tariff(ctx, num(r, row, 0));
	int64_t vno = num(r, row, 1);

	if (ti < 0)
		return NULL;
	for (int i = 0; i < ctx->tariffs[ti].nversions; i++)
		if (vnos[ti][i] == vno)
			return &ctx->tariffs[ti].versions[i];
	return NULL;
}

static int
load_tariffs(sim_ctx *ctx, db *d)
{
	PGresult *r, *s;
	int **vnos;
	int rc = -1;

	if ((r = query(d, tariff_sql)) == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++)
	{
		int ti = sim_fleet_add_tariff(ctx);

		ctx->tariffs[ti].tariff_id = num(r, i, 0);
		ctx->tariffs[ti].zone =
		    sim_zone_get(PQgetvalue(r, i, 1), ctx->sim_start_us);
	}
	PQclear(r);
	vnos = calloc((size_t) ctx->ntariffs + 1, sizeof(int *));
	if ((r = query(d, version_sql)) == NULL)
		goto out;
	for (int i = 0; i < PQntuples(r); i++)
	{
		int ti = find_tariff(ctx, num(r, i, 0));
		sim_tariff *t;
		sim_version *v;
		char regs[256], *save = NULL, *tok;

		if (ti < 0)
			continue;
		t = &ctx->tariffs[ti];
		t->versions = realloc(t->versions, sizeof(sim_version) *
		                                       (size_t) (t->nversions + 1));
		vnos[ti] =
		    realloc(vnos[ti], sizeof(int) * (size_t) (t->nversions + 1));
		vnos[ti][t->nversions] = (int) num(r, i, 1);
		v = &t->versions[t->nversions++];
		sim_version_init(v, (int) num(r, i, 5), (int) num(r, i, 6));
		if (!PQgetisnull(r, i, 2))
			v->from_us = num(r, i, 2);
		if (!PQgetisnull(r, i, 3))
			v->to_us = num(r, i, 3);
		snprintf(regs, sizeof(regs), "%s", PQgetvalue(r, i, 4));
		for (tok = strtok_r(regs, ",", &save); tok && v->nregs < SIM_MAX_RATES;
		     tok = strtok_r(NULL, ",", &save))
		{
			int p = sim_period_parse(tok);

			v->reg_period[v->nregs++] = (uint8_t) (p < 0 ? SIM_NO_PERIOD : p);
		}
	}
	PQclear(r);
	if ((r = query(d, season_sql)) == NULL)
		goto out;
	for (int i = 0; i < PQntuples(r); i++)
	{
		sim_version *v = find_version(ctx, r, i, vnos);
		int sn = (int) num(r, i, 2);

		if (v && sn >= 0 && sn < v->nseasons)
		{
			v->seasons[sn].from_md = (int) num(r, i, 3);
			v->seasons[sn].to_md = (int) num(r, i, 4);
		}
	}
	PQclear(r);
	if ((r = query(d, daytype_sql)) == NULL)
		goto out;
	for (int i = 0; i < PQntuples(r); i++)
	{
		sim_version *v = find_version(ctx, r, i, vnos);
		const char *p = PQgetvalue(r, i, 3);

		while (v && *p)
		{
			int wd = (int) strtol(p, (char **) &p, 10);

			if (wd >= 1 && wd <= 7)
				v->daytype_of_wd[wd - 1] = (uint8_t) num(r, i, 2);
			if (*p == ',')
				p++;
			else
				break;
		}
	}
	PQclear(r);
	if ((s = query(d, holiday_sql)) == NULL)
		goto out;
	for (int i = 0; i < PQntuples(s); i++)
	{
		sim_version *v = find_version(ctx, s, i, vnos);

		if (v == NULL)
			continue;
		v->holiday_day = realloc(
		    v->holiday_day, sizeof(int32_t) * (size_t) (v->nholidays + 1));
		v->holiday_type = realloc(v->holiday_type, (size_t) v->nholidays + 1);
		v->holiday_day[v->nholidays] = (int32_t) num(s, i, 2);
		v->holiday_type[v->nholidays++] = (uint8_t) num(s, i, 3);
	}
	PQclear(s);
	if ((r = query(d, slot_sql)) == NULL)
		goto out;
	for (int i = 0; i < PQntuples(r); i++)
	{
		sim_version *v = find_version(ctx, r, i, vnos);
		int p = sim_period_parse(PQgetvalue(r, i, 6));

		if (v && p >= 0)
			sim_version_fill(v, (int) num(r, i, 2), (int) num(r, i, 3),
			                 (int) num(r, i, 4), (int) num(r, i, 5), p);
	}
	PQclear(r);
	for (int ti = 0; ti < ctx->ntariffs; ti++)
		for (int k = 0; k < ctx->tariffs[ti].nversions; k++)
			sim_version_finish(&ctx->tariffs[ti].versions[k]);
	rc = 0;
out:
	for (int ti = 0; ti < ctx->ntariffs; ti++)
		free(vnos[ti]);
	free(vnos);
	return rc;
}

/* gateway_id -> index, from the gateway query (sorted by id). */
typedef struct gw_ids
{
	int64_t *ids;
	int n;
} gw_ids;

static int
load_gateways(sim_ctx *ctx, db *d, gw_ids *g)
{
	PGresult *r = query(d, gateway_sql);

	if (r == NULL)
		return -1;
	g->n = PQntuples(r);
	g->ids = malloc(sizeof(int64_t) * (size_t) (g->n + 1));
	for (int i = 0; i < g->n; i++)
	{
		g->ids[i] = num(r, i, 0);
		sim_fleet_add_gateway(ctx, PQgetvalue(r, i, 1));
	}
	PQclear(r);
	return 0;
}

static int
gateway_index(const gw_ids *g, int64_t id)
{
	int lo = 0, hi = g->n - 1;

	while (lo <= hi)
	{
		int mid = (lo + hi) / 2;

		if (g->ids[mid] == id)
			return mid;
		if (g->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static void
meter_row(sim_ctx *ctx, const PGresult *r, int i, const gw_ids *g)
{
	sim_meter *m = sim_fleet_add_meter(ctx);
	int64_t rates[SIM_MAX_RATES];
	int nr = 0;
	const char *p = PQgetvalue(r, i, 16);

	m->meter_id = num(r, i, 0);
	dlt645_address_parse(PQgetvalue(r, i, 1), m->addr, NULL);
	m->phase = (uint8_t) (num(r, i, 2) == 3 ? 3 : 1);
	m->pt = (int32_t) num(r, i, 3);
	m->ct = (int32_t) num(r, i, 4);
	m->kind = (uint8_t) sim_kind_parse(PQgetvalue(r, i, 5));
	if (!PQgetisnull(r, i, 6))
		m->gateway = gateway_index(g, num(r, i, 6));
	m->nrates = (uint8_t) num(r, i, 7);
	m->tariff = find_tariff(ctx, num(r, i, 8));
	m->zone = sim_zone_get(PQgetvalue(r, i, 9), ctx->sim_start_us);
	m->v_nom_dv = (int32_t) num(r, i, 10);
	m->modulus = num(r, i, 11) > 0 ? num(r, i, 11) : 1000000000;
	m->relay_open = PQgetvalue(r, i, 12)[0] == 't';
	m->keep_power = PQgetvalue(r, i, 13)[0] == 't';
	m->prepaid = PQgetvalue(r, i, 14)[0] == 't';
	while (*p && nr < SIM_MAX_RATES)
	{
		rates[nr++] = strtoll(p, (char **) &p, 10);
		if (*p != ',')
			break;
		p++;
	}
	if (PQgetisnull(r, i, 15))
		sim_fleet_set_energy(m, sim_fleet_seed_energy(ctx, m), NULL, 0);
	else
	{
		sim_fleet_set_energy(m, num(r, i, 15), nr ? rates : NULL, nr);
		if (!PQgetisnull(r, i, 17))
			m->regs_at = num(r, i, 17);
	}
}

int
sim_fleet_load_db(sim_ctx *ctx)
{
	db d;
	gw_ids g = {NULL, 0};
	PGresult *r;
	int rc = -1;

	d.conn = PQconnectdb(ctx->o.db ? ctx->o.db : "");
	d.param = NULL;
	if (ctx->o.property > 0)
	{
		snprintf(d.prop, sizeof(d.prop), "%lld", (long long) ctx->o.property);
		d.param = d.prop;
	}
	if (PQstatus(d.conn) != CONNECTION_OK)
	{
		log_error("cannot connect to the database: %s",
		          PQerrorMessage(d.conn));
		PQfinish(d.conn);
		return -1;
	}
	if (load_tariffs(ctx, &d) != 0 || load_gateways(ctx, &d, &g) != 0)
		goto out;
	if ((r = query(&d, meter_sql)) == NULL)
		goto out;
	for (int i = 0; i < PQntuples(r); i++)
		meter_row(ctx, r, i, &g);
	PQclear(r);
	rc = 0;
out:
	free(g.ids);
	PQfinish(d.conn);
	return rc;
}
