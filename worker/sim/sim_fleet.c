/*
 * sim_fleet.c
 *	  What the fleet loaders (database, CSV, generator) share: growing the
 *	  meter and gateway arrays, the initial registers, and sim_fleet_finish,
 *	  which turns a loaded fleet into a running one -- extra unknown devices
 *	  for fault injection, per-meter seeds and load parameters, meters
 *	  grouped by gateway, the address index, fault assignment, the meters'
 *	  start (with the freezes since the last settlement day), and one
 *	  connection per direct meter and per gateway.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

sim_meter *
sim_fleet_add_meter(sim_ctx *ctx)
{
	sim_meter *m;

	if (ctx->nmeters == ctx->meters_cap)
	{
		ctx->meters_cap = ctx->meters_cap ? ctx->meters_cap * 2 : 256;
		ctx->meters =
		    realloc(ctx->meters, sizeof(sim_meter) * (size_t) ctx->meters_cap);
	}
	m = &ctx->meters[ctx->nmeters++];
	memset(m, 0, sizeof(*m));
	m->phase = 1;
	m->kind = SIM_OFFICE;
	m->pt = m->ct = 1;
	m->v_nom_dv = 2200;
	m->modulus = 1000000000;
	m->gateway = -1;
	m->tariff = -1;
	m->conn = -1;
	m->settle_day = 1;
	m->block_min = INT64_MIN;
	m->regs_at = INT64_MIN;
	m->pending_at = SIM_NEVER;
	m->balance = ctx->o.initial_balance;
	return m;
}

int
sim_fleet_add_tariff(sim_ctx *ctx)
{
	ctx->tariffs = realloc(ctx->tariffs,
	                       sizeof(sim_tariff) * (size_t) (ctx->ntariffs + 1));
	memset(&ctx->tariffs[ctx->ntariffs], 0, sizeof(sim_tariff));
	return ctx->ntariffs++;
}

int
sim_fleet_add_gateway(sim_ctx *ctx, const char *serial)
{
	sim_gateway *g;

	for (int i = 0; i < ctx->ngateways; i++)
		if (strcmp(ctx->gateways[i].serial, serial) == 0)
			return i;
	if (ctx->ngateways == ctx->gateways_cap)
	{
		ctx->gateways_cap = ctx->gateways_cap ? ctx->gateways_cap * 2 : 64;
		ctx->gateways = realloc(ctx->gateways, sizeof(sim_gateway) *
		                                           (size_t) ctx->gateways_cap);
	}
	g = &ctx->gateways[ctx->ngateways];
	memset(g, 0, sizeof(*g));
	snprintf(g->serial, sizeof(g->serial), "%s", serial);
	g->conn = -1;
	return ctx->ngateways++;
}

static int64_t
ceil10(int64_t v)
{
	return v <= 0 ? 0 : (v + 9) / 10 * 10;
}

/*
 * Initial registers: at least the given values (rounded up to 0.01 kWh),
 * rates summing to the total; without rates the total is split 10/30/35/25
 * (or evenly) over the meter's registers.
 */
void
sim_fleet_set_energy(sim_meter *m, int64_t total, const int64_t *rates, int nr)
{
	static const int split4[4] = {100, 300, 350, 250};
	int64_t sum = 0;
	int n = m->nrates;

	memset(&m->regs, 0, sizeof(m->regs));
	total = ceil10(total);
	if (n == 0)
	{
		m->regs.total = total % m->modulus;
		return;
	}
	if (rates != NULL && nr >= n)
	{
		for (int i = 0; i < n; i++)
			sum += m->regs.rate[i] = ceil10(rates[i]);
	}
	else
	{
		for (int i = 0; i < n - 1; i++)
			sum += m->regs.rate[i] =
			    total / 10 * (n == 4 ? split4[i] : 1000 / n) / 1000 * 10;
		m->regs.rate[n - 1] = 0;
	}
	if (sum < total)
		m->regs.rate[n - 1] += total - sum;
	else
		total = sum;
	m->regs.total = total % m->modulus;
	for (int i = 0; i < n; i++)
		m->regs.rate[i] %= m->modulus;
}

/* A seeded register value for a meter with no history: 1000..60000 kWh. */
int64_t
sim_fleet_seed_energy(const sim_ctx *ctx, const sim_meter *m)
{
	return 1000000 +
	       (int64_t) (sim_hash_addr(ctx->o.seed, m->addr, 0xE0) % 59000000ULL);
}

static void
add_unknown_devices(sim_ctx *ctx)
{
	uint64_t next = 1;

	for (int i = 0; i < ctx->faults.unknown_meters; i++)
	{
		sim_meter *m;
		uint8_t addr[DLT645_ADDR_LEN];
		char text[16];

		do
		{
			snprintf(text, sizeof(text), "99%010llu",
			         (unsigned long long) next++);
			dlt645_address_parse(text, addr, NULL);
		} while (sim_fleet_find(ctx, addr) != NULL);
		m = sim_fleet_add_meter(ctx);
		memcpy(m->addr, addr, DLT645_ADDR_LEN);
		m->unknown = 1;
		m->zone = sim_zone_get("UTC", ctx->sim_start_us);
		sim_fleet_set_energy(m, sim_fleet_seed_energy(ctx, m), NULL, 0);
	}
	for (int i = 0; i < ctx->faults.unknown_gateways; i++)
	{
		char serial[32];

		snprintf(serial, sizeof(serial), "SIM-UNKNOWN-%d", i + 1);
		ctx->gateways[sim_fleet_add_gateway(ctx, serial)].unknown = 1;
	}
}

static uint32_t
addr_slot(const uint8_t addr[DLT645_ADDR_LEN])
{
	return (uint32_t) sim_hash_addr(0, addr, 0);
}

static int
build_index(sim_ctx *ctx)
{
	uint32_t size = 16;

	free(ctx->addr_slots);
	while (size < (uint32_t) ctx->nmeters * 2)
		size <<= 1;
	ctx->addr_slots = calloc(size, sizeof(uint32_t));
	ctx->addr_mask = size - 1;
	for (int i = 0; i < ctx->nmeters; i++)
	{
		uint32_t s = addr_slot(ctx->meters[i].addr) & ctx->addr_mask;

		while (ctx->addr_slots[s] != 0)
		{
			if (memcmp(ctx->meters[ctx->addr_slots[s] - 1].addr,
			           ctx->meters[i].addr, DLT645_ADDR_LEN) == 0)
			{
				log_error("meter address %s appears twice in the fleet",
				          ctx->meters[i].addr_text);
				return -1;
			}
			s = (s + 1) & ctx->addr_mask;
		}
		ctx->addr_slots[s] = (uint32_t) i + 1;
	}
	return 0;
}

sim_meter *
sim_fleet_find(const sim_ctx *ctx, const uint8_t addr[DLT645_ADDR_LEN])
{
	uint32_t s;

	if (ctx->addr_slots == NULL)
	{
		for (int i = 0; i < ctx->nmeters; i++)
			if (memcmp(ctx->meters[i].addr, addr, DLT645_ADDR_LEN) == 0)
				return &ctx->meters[i];
		return NULL;
	}
	s = addr_slot(addr) & ctx->addr_mask;
	while (ctx->addr_slots[s] != 0)
	{
		sim_meter *m = &ctx->meters[ctx->addr_slots[s] - 1];

		if (memcmp(m->addr, addr, DLT645_ADDR_LEN) == 0)
			return m;
		s = (s + 1) & ctx->addr_mask;
	}
	return NULL;
}

static void
group_by_gateway(sim_ctx *ctx)
{
	int *fill = calloc((size_t) ctx->ngateways + 1, sizeof(int));
	int pos = 0;

	for (int g = 0; g < ctx->ngateways; g++)
		ctx->gateways[g].count = 0;
	for (int i = 0; i < ctx->nmeters; i++)
		if (ctx->meters[i].gateway >= 0)
			ctx->gateways[ctx->meters[i].gateway].count++;
	for (int g = 0; g < ctx->ngateways; g++)
	{
		ctx->gateways[g].first = pos;
		pos += ctx->gateways[g].count;
	}
	ctx->gw_meters = malloc(sizeof(int32_t) * (size_t) (pos + 1));
	for (int i = 0; i < ctx->nmeters; i++)
	{
		int g = ctx->meters[i].gateway;

		if (g >= 0)
			ctx->gw_meters[ctx->gateways[g].first + fill[g]++] = i;
	}
	free(fill);
}

static void
make_connections(sim_ctx *ctx)
{
	int n = ctx->ngateways;

	for (int i = 0; i < ctx->nmeters; i++)
		n += ctx->meters[i].gateway < 0;
	ctx->conns = calloc((size_t) n + 1, sizeof(sim_conn));
	ctx->nconns = 0;
	for (int g = 0; g < ctx->ngateways; g++)
	{
		sim_conn *c = &ctx->conns[ctx->nconns];

		c->is_gateway = 1;
		c->owner = g;
		ctx->gateways[g].conn = ctx->nconns++;
	}
	for (int i = 0; i < ctx->nmeters; i++)
	{
		sim_meter *m = &ctx->meters[i];

		if (m->gateway >= 0)
			m->conn = ctx->gateways[m->gateway].conn;
		else
		{
			ctx->conns[ctx->nconns].owner = i;
			m->conn = ctx->nconns++;
		}
	}
	for (int i = 0; i < ctx->nconns; i++)
	{
		ctx->conns[i].fd = -1;
		ctx->conns[i].heap_pos = -1;
		ctx->conns[i].next_queued = -1;
		ctx->conns[i].timer_at = SIM_NEVER;
		dlt645_stream_init(&ctx->conns[i].rx);
	}
}

int
sim_fleet_finish(sim_ctx *ctx)
{
	int64_t t0 = sim_now(ctx), started = mono_us();

	add_unknown_devices(ctx);
	for (int i = 0; i < ctx->nmeters; i++)
	{
		sim_meter *m = &ctx->meters[i];

		dlt645_address_format(m->addr, m->addr_text);
		m->seed = sim_hash_addr(ctx->o.seed, m->addr, 0);
		m->preamble = (uint8_t) (ctx->o.preamble >= 0 ? ctx->o.preamble
		                                              : (int) (m->seed % 5));
		if (m->relay_open)
			m->cmd_open = 1;
		sim_profile_setup(m);
	}
	for (int g = 0; g < ctx->ngateways; g++)
	{
		sim_gateway *gw = &ctx->gateways[g];
		uint64_t h = sim_mix(ctx->o.seed ^ sim_mix((uint64_t) g + 1));

		for (size_t k = 0; k < strlen(gw->serial); k++)
			h = sim_mix(h ^ (uint8_t) gw->serial[k]);
		snprintf(gw->imei, sizeof(gw->imei), "86%013llu",
		         (unsigned long long) (h % 10000000000000ULL));
	}
	if (build_index(ctx) != 0)
		return -1;
	group_by_gateway(ctx);
	sim_faults_assign(ctx);
	for (int i = 0; i < ctx->nmeters; i++)
		sim_meter_start(&ctx->meters[i], t0, !ctx->o.no_history);
	make_connections(ctx);
	log_info("fleet: %d meters, %d gateways, %d connections, %d tariffs "
	         "(started in %lld ms)",
	         ctx->nmeters, ctx->ngateways, ctx->nconns, ctx->ntariffs,
	         (long long) ((mono_us() - started) / 1000));
	return 0;
}

void
sim_fleet_free(sim_ctx *ctx)
{
	for (int i = 0; i < ctx->ntariffs; i++)
		sim_tariff_free(&ctx->tariffs[i]);
	free(ctx->tariffs);
	free(ctx->meters);
	free(ctx->gateways);
	free(ctx->gw_meters);
	free(ctx->conns);
	free(ctx->addr_slots);
	free(ctx->heap);
	ctx->tariffs = NULL;
	ctx->meters = NULL;
	ctx->gateways = NULL;
	ctx->gw_meters = NULL;
	ctx->conns = NULL;
	ctx->addr_slots = NULL;
	ctx->heap = NULL;
	ctx->ntariffs = ctx->nmeters = ctx->ngateways = ctx->nconns = 0;
	ctx->meters_cap = ctx->gateways_cap = 0;
}
