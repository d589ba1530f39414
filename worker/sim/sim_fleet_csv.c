/*
 * sim_fleet_csv.c
 *	  Fleets without a database: a CSV file (--fleet FILE; header line,
 *	  columns by name, only `address` required) or a generated fleet
 *	  (--generate N[/K]: N meters, K per gateway or direct). A tariff here is
 *	  a one-season, one-day-type schedule "HH:MM=period;..." with the
 *	  register list "sharp;peak;flat;valley"; meters sharing the same zone,
 *	  registers and schedule share one compiled tariff.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#define DEFAULT_ZONE      "Asia/Shanghai"
#define DEFAULT_REGISTERS "sharp;peak;flat;valley"
#define DEFAULT_SCHEDULE                                                      \
	"00:00=valley;08:00=flat;10:00=sharp;11:00=peak;17:00=flat;22:00=valley"
#define MAX_FIELDS 16

enum
{
	C_ADDRESS,
	C_PHASE,
	C_KIND,
	C_GATEWAY,
	C_RATES,
	C_PT,
	C_CT,
	C_ZONE,
	C_REGISTERS,
	C_SCHEDULE,
	C_ENERGY,
	C_COUNT
};

static const char *const col_names[C_COUNT] = {
    "address", "phase",     "kind",      "gateway",  "rate_registers", "pt",
    "ct",      "time_zone", "registers", "schedule", "energy_wh"};

/* Compiled CSV tariffs, keyed by "zone|registers|schedule". */
typedef struct tariff_key
{
	char *key;
	int index;
} tariff_key;

typedef struct csv_state
{
	tariff_key *keys;
	int nkeys;
} csv_state;

static int
parse_registers(sim_version *v, const char *text, char *err, size_t cap)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", text);
	v->nregs = 0;
	for (tok = strtok_r(buf, ";", &save); tok;
	     tok = strtok_r(NULL, ";", &save))
	{
		int p = sim_period_parse(tok);

		if (p < 0 || v->nregs == SIM_MAX_RATES)
		{
			snprintf(err, cap, "bad registers \"%s\"", text);
			return -1;
		}
		v->reg_period[v->nregs++] = (uint8_t) p;
	}
	return 0;
}

static int
parse_schedule(sim_version *v, const char *text, char *err, size_t cap)
{
	int at[96], per[96], n = 0;
	char buf[1024], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", text);
	for (tok = strtok_r(buf, ";", &save); tok;
	     tok = strtok_r(NULL, ";", &save))
	{
		int h, mi, k, p;
		char name[16];

		if (n == 96 || sscanf(tok, "%2d:%2d=%15s%n", &h, &mi, name, &k) != 3 ||
		    tok[k] != '\0' || h > 23 || mi > 59 ||
		    (p = sim_period_parse(name)) < 0)
		{
			snprintf(err, cap, "bad schedule entry \"%s\"", tok);
			return -1;
		}
		/* insertion sort by start minute */
		for (k = n; k > 0 && at[k - 1] > h * 60 + mi; k--)
		{
			at[k] = at[k - 1];
			per[k] = per[k - 1];
		}
		at[k] = h * 60 + mi;
		per[k] = p;
		n++;
	}
	if (n == 0)
	{
		snprintf(err, cap, "empty schedule");
		return -1;
	}
	sim_version_fill(v, 0, 0, 0, at[0], per[n - 1]); /* wraps midnight */
	for (int i = 0; i < n; i++)
		sim_version_fill(v, 0, 0, at[i], i + 1 < n ? at[i + 1] : 1440, per[i]);
	return 0;
}

static int
csv_tariff(sim_ctx *ctx, csv_state *st, const char *zone, const char *regs,
           const char *sched, char *err, size_t cap)
{
	char key[1400];
	sim_tariff *t;
	sim_version *v;
	int ti;

	snprintf(key, sizeof(key), "%s|%s|%s", zone, regs, sched);
	for (int i = 0; i < st->nkeys; i++)
		if (strcmp(st->keys[i].key, key) == 0)
			return st->keys[i].index;
	ti = sim_fleet_add_tariff(ctx);
	t = &ctx->tariffs[ti];
	t->tariff_id = ti + 1;
	t->zone = sim_zone_get(zone, ctx->sim_start_us);
	t->nversions = 1;
	t->versions = calloc(1, sizeof(sim_version));
	v = &t->versions[0];
	sim_version_init(v, 1, 1);
	if (parse_registers(v, regs, err, cap) != 0 ||
	    parse_schedule(v, sched, err, cap) != 0)
		return -1;
	sim_version_finish(v);
	st->keys =
	    realloc(st->keys, sizeof(tariff_key) * (size_t) (st->nkeys + 1));
	st->keys[st->nkeys].key = strdup(key);
	st->keys[st->nkeys].index = ti;
	st->nkeys++;
	return ti;
}

static void
csv_state_free(csv_state *st)
{
	for (int i = 0; i < st->nkeys; i++)
		free(st->keys[i].key);
	free(st->keys);
}

/* Splits a line in place at commas; returns the number of fields. */
static int
split(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	line[strcspn(line, "\r\n")] = '\0';
	while (n < max)
	{
		f[n++] = p;
		p = strchr(p, ',');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	return n;
}

static int
csv_row(sim_ctx *ctx, csv_state *st, char **f, int nf, const int *col,
        char *err, size_t cap)
{
#define FIELD(c) (col[c] >= 0 && col[c] < nf ? f[col[c]] : "")
	sim_meter *m;
	const char *regs =
	    *FIELD(C_REGISTERS) ? FIELD(C_REGISTERS) : DEFAULT_REGISTERS;
	const char *zone = *FIELD(C_ZONE) ? FIELD(C_ZONE) : DEFAULT_ZONE;
	const char *sched =
	    *FIELD(C_SCHEDULE) ? FIELD(C_SCHEDULE) : DEFAULT_SCHEDULE;
	int ti = csv_tariff(ctx, st, zone, regs, sched, err, cap);

	if (ti < 0)
		return -1;
	m = sim_fleet_add_meter(ctx);
	if (dlt645_address_parse(FIELD(C_ADDRESS), m->addr, NULL) != DLT645_OK)
	{
		snprintf(err, cap, "bad address \"%s\"", FIELD(C_ADDRESS));
		return -1;
	}
	m->tariff = ti;
	m->zone = ctx->tariffs[ti].zone;
	if (*FIELD(C_PHASE))
		m->phase = (uint8_t) (atoi(FIELD(C_PHASE)) == 3 ? 3 : 1);
	if (*FIELD(C_KIND) &&
	    (m->kind = (uint8_t) sim_kind_parse(FIELD(C_KIND))) >= SIM_NKINDS)
	{
		snprintf(err, cap, "bad kind \"%s\"", FIELD(C_KIND));
		return -1;
	}
	m->nrates = ctx->tariffs[ti].versions[0].nregs;
	if (*FIELD(C_RATES))
		m->nrates = (uint8_t) atoi(FIELD(C_RATES));
	if (m->nrates > SIM_MAX_RATES)
		m->nrates = SIM_MAX_RATES;
	if (*FIELD(C_PT))
		m->pt = atoi(FIELD(C_PT)) > 0 ? atoi(FIELD(C_PT)) : 1;
	if (*FIELD(C_CT))
		m->ct = atoi(FIELD(C_CT)) > 0 ? atoi(FIELD(C_CT)) : 1;
	if (*FIELD(C_GATEWAY))
		m->gateway = sim_fleet_add_gateway(ctx, FIELD(C_GATEWAY));
	m->prepaid = 1;
	sim_fleet_set_energy(m,
	                     *FIELD(C_ENERGY) ? strtoll(FIELD(C_ENERGY), NULL, 10)
	                                      : sim_fleet_seed_energy(ctx, m),
	                     NULL, 0);
	return 0;
#undef FIELD
}

int
sim_fleet_load_csv(sim_ctx *ctx, const char *path)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL, *f[MAX_FIELDS], err[256];
	size_t cap = 0;
	int col[C_COUNT], lineno = 0, rc = 0;
	bool have_header = false;
	csv_state st = {NULL, 0};

	if (fp == NULL)
	{
		log_error("cannot open fleet file %s", path);
		return -1;
	}
	while (getline(&line, &cap, fp) > 0)
	{
		int nf;

		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		nf = split(line, f, MAX_FIELDS);
		if (!have_header)
		{
			for (int c = 0; c < C_COUNT; c++)
			{
				col[c] = -1;
				for (int i = 0; i < nf; i++)
					if (strcmp(f[i], col_names[c]) == 0)
						col[c] = i;
			}
			if (col[C_ADDRESS] < 0)
			{
				log_error("%s: the header has no column \"address\"", path);
				rc = -1;
				break;
			}
			have_header = true;
			continue;
		}
		if (csv_row(ctx, &st, f, nf, col, err, sizeof(err)) != 0)
		{
			log_error("%s:%d: %s", path, lineno, err);
			rc = -1;
			break;
		}
	}
	free(line);
	fclose(fp);
	csv_state_free(&st);
	return rc;
}

int
sim_fleet_generate(sim_ctx *ctx, int n, int per_gw)
{
	csv_state st = {NULL, 0};
	char err[256];
	int ti = csv_tariff(ctx, &st, DEFAULT_ZONE, DEFAULT_REGISTERS,
	                    DEFAULT_SCHEDULE, err, sizeof(err));

	csv_state_free(&st);
	if (ti < 0)
		return -1;
	for (int i = 0; i < n; i++)
	{
		sim_meter *m = sim_fleet_add_meter(ctx);
		char text[16];
		uint64_t h;

		snprintf(text, sizeof(text), "%012d", i + 1);
		dlt645_address_parse(text, m->addr, NULL);
		h = sim_hash_addr(ctx->o.seed, m->addr, 0x6E);
		m->kind = (uint8_t) (h % 100 < 50   ? SIM_DORMITORY
		                     : h % 100 < 80 ? SIM_OFFICE
		                     : h % 100 < 95 ? SIM_FACTORY
		                                    : SIM_SHARED);
		m->phase = (uint8_t) (m->kind == SIM_FACTORY ||
		                              (m->kind == SIM_OFFICE && h % 3 == 0)
		                          ? 3
		                          : 1);
		if (m->kind == SIM_FACTORY && (h >> 8) % 2)
			m->ct = 20;
		m->tariff = ti;
		m->zone = ctx->tariffs[ti].zone;
		m->nrates = 4;
		m->prepaid = 1;
		if (per_gw > 0)
		{
			char serial[32];

			snprintf(serial, sizeof(serial), "GW%06d", i / per_gw + 1);
			if (i % per_gw == 0)
				sim_fleet_add_gateway(ctx, serial);
			m->gateway = ctx->ngateways - 1;
		}
		sim_fleet_set_energy(m, sim_fleet_seed_energy(ctx, m), NULL, 0);
	}
	return 0;
}
