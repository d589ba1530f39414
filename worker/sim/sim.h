/*
 * sim.h
 *	  prepaid-sim: a fleet of simulated DL/T 645-2007 meters and LoRa
 *	  gateways that connect to prepaid-ingest as TCP clients. This header
 *	  holds the types every module shares (meter, gateway, connection,
 *	  tariff, the process state) and the functions each module exports.
 *
 *	  Units: simulated time in microseconds since the Unix epoch (UTC, as
 *	  worker/common/simclock); "local minutes" are minutes since the epoch of
 *	  a local wall clock; energy in Wh (exact integers); power in W or
 *	  0.1 W ("dW"); voltage 0.1 V ("dV"); current mA; power factor 0.001.
 *	  No floating point anywhere.
 */
#ifndef SIM_H
#define SIM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dlt645.h"
#include "simclock.h"

#define SIM_MAX_RATES 8  /* per-rate registers T1..T8 */
#define SIM_MONTHS    12 /* previous settlement days kept (00 01 xx 01..0C) */
#define SIM_DAYS      7  /* previous daily freezes kept (05 06 xx 01..07) */
#define SIM_INSTANTS  3  /* previous instant freezes kept (05 01 xx 01..03) */

#define SIM_US_PER_MIN  60000000LL
#define SIM_BLOCK_MIN   15 /* demand window */
#define SIM_BLOCK_US    (SIM_BLOCK_MIN * SIM_US_PER_MIN)
#define SIM_QUANTUM_WH  10                              /* 0.01 kWh */
#define SIM_QUANTUM_WUS (SIM_QUANTUM_WH * 3600000000LL) /* in W x us */
#define SIM_NEVER       INT64_MAX

/* Load profile of a meter, from the customer's or the area's kind. */
typedef enum sim_kind
{
	SIM_DORMITORY,
	SIM_OFFICE,
	SIM_FACTORY,
	SIM_SHARED,
	SIM_NKINDS
} sim_kind;

/* TOU periods, as prepaid.tariff_slot.period. */
typedef enum sim_period
{
	SIM_SHARP,
	SIM_PEAK,
	SIM_FLAT,
	SIM_VALLEY,
	SIM_DEEP,
	SIM_NPERIODS
} sim_period;
#define SIM_NO_PERIOD 0xFF

/* Fault bits (sim_meter.faults); see sim_faults.c. */
#define SIM_F_PHASE_LOSS   0x0001
#define SIM_F_UNDERVOLTAGE 0x0002
#define SIM_F_SILENCE      0x0004
#define SIM_F_BAD_CHECKSUM 0x0008
#define SIM_F_GARBAGE      0x0010
#define SIM_F_SLOW         0x0020
#define SIM_F_DISCONNECT   0x0040
#define SIM_F_DUPLICATE    0x0080
#define SIM_F_REPLAY       0x0100
#define SIM_NFAULTS        9

/* ------------------------------------------------------------------------
 * Tariffs (sim_tariff.c)
 * ------------------------------------------------------------------------ */

/* One day's schedule: the period of each minute and when it next changes. */
typedef struct sim_plan
{
	uint8_t period[1440];
	uint16_t next[1440]; /* first minute > m with another period, or 1440 */
} sim_plan;

typedef struct sim_season
{
	int from_md, to_md; /* month * 100 + day, inclusive, may wrap */
} sim_season;

typedef struct sim_version
{
	int64_t from_us, to_us; /* validity (UTC, meter clock) */
	uint8_t nregs;          /* registers named by the version */
	uint8_t reg_period[SIM_MAX_RATES];
	int8_t reg_of_period[SIM_NPERIODS]; /* first register, -1 none */
	int nseasons, ndaytypes;
	sim_season *seasons;
	uint8_t daytype_of_wd[7]; /* ISO weekday - 1 -> day type */
	int nholidays;
	int32_t *holiday_day; /* days since 1970-01-01, sorted */
	uint8_t *holiday_type;
	sim_plan *plans; /* [season * ndaytypes + daytype] */
} sim_version;

typedef struct sim_tariff
{
	int64_t tariff_id;
	int zone;
	int nversions;
	sim_version *versions; /* sorted by from_us */
} sim_tariff;

/* ------------------------------------------------------------------------
 * Meters (sim_meter.c)
 * ------------------------------------------------------------------------ */

typedef struct sim_regs
{
	int64_t total;
	int64_t rate[SIM_MAX_RATES];
} sim_regs;

/* A frozen copy of the registers (month, day or instant freeze). */
typedef struct sim_snap
{
	int64_t at_min;     /* meter-local minutes of the freeze */
	int64_t max_at_min; /* month records: the month's maximum demand time */
	int32_t max_dw;     /* month records: the month's maximum demand */
	sim_regs regs;
} sim_snap;

/* A ring of the newest snapshots. */
typedef struct sim_ring
{
	uint8_t head; /* next slot to write */
	uint8_t n;    /* valid entries */
} sim_ring;

/* A relay action the meter performs by itself later (simulated time). */
typedef enum sim_pending
{
	SIM_PENDING_NONE,
	SIM_PENDING_BUTTON, /* tenant presses the button (after 1B) */
	SIM_PENDING_RESTORE /* timed restore (after 1D/1E) */
} sim_pending;

typedef struct sim_meter
{
	/* identity and configuration */
	uint8_t addr[DLT645_ADDR_LEN];
	char addr_text[13];
	uint8_t phase;    /* 1 or 3 */
	uint8_t kind;     /* sim_kind */
	uint8_t nrates;   /* rate registers reported, 0..8 */
	uint8_t preamble; /* FE bytes before each reply */
	uint8_t prepaid;  /* money-type prepaid (status word 3 bits 8-9) */
	uint8_t shifts;   /* factories: 1, 2 or 3 shifts */
	uint8_t lost_phase;
	uint8_t unknown; /* not in the fleet source (fault unknown_meter) */
	int32_t gateway; /* index, -1 for a direct meter */
	int32_t conn;    /* connection index */
	int32_t tariff;  /* index, -1: everything in period "flat" */
	int32_t zone;    /* site time zone */
	int64_t meter_id;
	int64_t modulus; /* register wraps to 0 here (Wh) */
	int32_t pt, ct;
	int32_t v_nom_dv;
	int32_t base_w;    /* peak load, secondary side, W */
	int32_t day_f;     /* load factor of day_n (per mille) */
	int64_t day_n;     /* local day of day_f */
	int32_t max_w;     /* what the meter can carry (secondary) */
	int16_t pf_base;   /* 0.001 */
	uint16_t share[3]; /* per mille of the load on phase A, B, C */
	uint32_t faults;   /* SIM_F_* */
	uint64_t seed;
	uint64_t rng; /* per-reply fault decisions */

	/* clock and integration */
	int64_t regs_at; /* when the initial registers held (INT64_MIN: ?) */
	int64_t t_us;    /* simulated time integrated up to */
	int64_t skew_us; /* meter clock - simulated time */
	int64_t frac;    /* W x us not yet counted (< SIM_QUANTUM_WUS) */
	sim_regs regs;

	/* the demand window in progress */
	int64_t block_min; /* meter-local minute where it started */
	int32_t block_w;   /* load in it before the relay (W) */
	int64_t block_wus; /* energy so far (W x us) */
	int64_t prev_wus;  /* energy of the previous window */
	int32_t max_dw;    /* this month's maximum demand (0.1 W) */
	int64_t max_at_min;

	/* caches of the integration (invalidated by clock jumps) */
	int64_t z_from, z_until; /* site zone offset valid in [from, until) */
	int64_t z_off;           /* (meter clock, us) */
	int64_t next_daily_min;  /* next daily freeze, local minutes */
	int64_t next_settle_min; /* next monthly settlement */

	/* tariff plan cache */
	int64_t plan_day;      /* tariff-local day of the cached plan */
	int64_t plan_until_us; /* end of the version (meter clock) */
	const sim_plan *plan;
	const sim_version *ver;

	/* freezes */
	int16_t daily_min;  /* daily freeze at this local minute of the day */
	uint8_t settle_day; /* monthly settlement day (04 00 0B 01) */
	uint8_t settle_hour;
	sim_ring months, days, instants;
	sim_snap month[SIM_MONTHS];
	sim_snap day[SIM_DAYS];
	sim_snap instant[SIM_INSTANTS];

	/* relay */
	uint8_t relay_open;
	uint8_t cmd_open;
	uint8_t keep_power;
	uint8_t alarm;
	uint8_t pending; /* sim_pending */
	int64_t pending_at;

	/* prepaid parameters (0x14 writes) */
	int64_t balance;              /* 1e-7 yuan */
	int32_t price[SIM_MAX_RATES]; /* 1e-4 yuan/kWh */
	int64_t limit_amount[5];      /* 04 00 10 01..05, 0.01 yuan */
	int64_t limit_energy[4];      /* 04 00 0F 01..04, 0.01 kWh */
} sim_meter;

/* Instantaneous electrical values of a meter. */
typedef struct sim_elec
{
	int32_t u_dv[3];  /* voltage per phase */
	int32_t i_ma[3];  /* current per phase */
	int32_t p_dw[4];  /* active power total, A, B, C */
	int32_t q_dw[4];  /* reactive power */
	int32_t s_dw[4];  /* apparent power */
	int16_t pf[4];    /* power factor total, A, B, C (0.001) */
	int16_t freq_chz; /* 0.01 Hz */
	int16_t temp_dc;  /* 0.1 degC */
} sim_elec;

/* ------------------------------------------------------------------------
 * Gateways and connections
 * ------------------------------------------------------------------------ */

typedef struct sim_gateway
{
	char serial[64];
	char imei[16];
	int32_t conn;
	int32_t first; /* its meters: ctx->gw_meters[first .. first + count) */
	int32_t count;
	uint8_t unknown; /* not in the fleet source (fault unknown_gateway) */
} sim_gateway;

typedef enum sim_conn_state
{
	SIM_CONN_WAIT,       /* waiting to (re)connect */
	SIM_CONN_QUEUED,     /* in the connect queue */
	SIM_CONN_CONNECTING, /* non-blocking connect in progress */
	SIM_CONN_UP
} sim_conn_state;

#define SIM_OUT_CAP 1536

typedef struct sim_conn
{
	int fd;
	uint8_t state; /* sim_conn_state */
	uint8_t is_gateway;
	uint8_t want_close; /* close once the output is sent */
	uint8_t ever_up;
	uint8_t epoll_out;   /* EPOLLOUT is registered */
	int32_t owner;       /* meter (direct) or gateway index */
	int32_t heap_pos;    /* timer heap position, -1 */
	int32_t next_queued; /* connect queue link, -1 */
	int64_t timer_at;    /* CLOCK_MONOTONIC us of the next timer, or NEVER */
	int64_t up_since;    /* CLOCK_MONOTONIC us */
	int64_t last_tx;     /* CLOCK_MONOTONIC us of the last byte sent */
	int64_t hold_until;  /* output held (slow replies) until then */
	uint32_t backoff_ms;
	uint16_t out_off, out_len;
	uint16_t last_len; /* last reply (for replays) */
	uint8_t out[SIM_OUT_CAP];
	uint8_t last[DLT645_MAX_WIRE];
	dlt645_stream rx;
} sim_conn;

/* ------------------------------------------------------------------------
 * Fault injection (sim_faults.c)
 * ------------------------------------------------------------------------ */

typedef struct sim_fault_rule
{
	uint32_t bit;      /* SIM_F_* */
	uint32_t ppm;      /* meters selected by fraction (parts per million) */
	uint32_t rate_ppm; /* replies affected, per affected meter */
	int64_t param;     /* slow: ms; garbage: bytes */
	int naddr;
	uint8_t (*addr)[DLT645_ADDR_LEN];
} sim_fault_rule;

typedef struct sim_faults
{
	int nrules;
	sim_fault_rule rules[SIM_NFAULTS];
	int unknown_meters;
	int unknown_gateways;
	uint32_t rate_ppm[SIM_NFAULTS]; /* by bit index */
	int64_t slow_ms;
	int garbage_max;
} sim_faults;

/* ------------------------------------------------------------------------
 * The process
 * ------------------------------------------------------------------------ */

typedef struct sim_opts
{
	const char *db;        /* conninfo, NULL = not from the database */
	const char *fleet_csv; /* CSV fleet file */
	int generate;          /* synthetic fleet of this many meters */
	int generate_per_gw;   /* meters per gateway (0 = direct) */
	int64_t property;      /* only this property (0 = all) */
	const char *host;
	int port;
	int64_t time_scale;
	const char *time_start;
	uint64_t seed;
	int64_t button_delay_us; /* simulated; < 0: never pressed */
	uint8_t password[4];     /* PA P0 P1 P2 */
	int heartbeat_s;
	int reconnect_ms;
	int connect_rate;   /* connects per second */
	int max_connecting; /* connects in flight at most */
	int preamble;       /* 0..4, or -1 mixed */
	bool announce;
	bool idle;
	bool no_history;
	const char *truth;
	const char *summary;
	const char *ready_file;
	const char *faults;
	int64_t duration_ms; /* stop after this (0 = run until signalled) */
	int stats_s;
	int log_level;
	int64_t initial_balance; /* 1e-7 yuan */
} sim_opts;

typedef struct sim_stats
{
	uint64_t frames_in, bad_frames_in, garbage_in, frames_out, replies;
	uint64_t errors, no_target, collisions, relay_ops, faults;
	uint64_t connects, disconnects, connect_failures, heartbeats;
	uint64_t bytes_in, bytes_out, tx_overflow, truth_lines;
} sim_stats;

typedef struct sim_ctx
{
	sim_opts o;
	simclock clock;
	int64_t sim_start_us;
	int64_t mono_start;

	sim_meter *meters;
	int nmeters, meters_cap;
	sim_gateway *gateways;
	int ngateways, gateways_cap;
	int32_t *gw_meters; /* meter indices grouped by gateway */
	sim_tariff *tariffs;
	int ntariffs;
	sim_conn *conns;
	int nconns;

	uint32_t *addr_slots; /* open addressing: meter index + 1, 0 empty */
	uint32_t addr_mask;

	sim_faults faults;
	FILE *truth;
	int64_t truth_flushed; /* CLOCK_MONOTONIC us */
	sim_stats st;

	/* event loop (sim_net.c) */
	int epfd;
	int32_t *heap; /* connection indices ordered by timer_at */
	int nheap;
	int32_t queue_head, queue_tail; /* connect queue */
	int connecting;
	int up;
	int ever_up;
	bool all_up_reported;
	int64_t pace_start;
	int64_t pace_tokens; /* connects allowed, x 1e6 */
} sim_ctx;

/* ------------------------------------------------------------------------
 * Module interfaces
 * ------------------------------------------------------------------------ */

/* sim_zone.c: time zones as offset tables built at start-up. */
extern int sim_zone_get(const char *name, int64_t around_us);
extern int32_t sim_zone_offset(int zone, int64_t utc_us, int64_t *until_us);
extern int64_t sim_zone_to_utc(int zone, int64_t local_us);
extern const char *sim_zone_name(int zone);
extern void sim_zone_free_all(void);

/* Civil dates (proleptic Gregorian) <-> days since 1970-01-01. */
extern int64_t sim_days_from_civil(int y, int m, int d);
extern void sim_civil_from_days(int64_t z, int *y, int *m, int *d);
/* Local minutes -> dlt645_datetime (weekday filled in). */
extern void sim_local_datetime(int64_t local_us, dlt645_datetime *t);
extern int64_t sim_datetime_local_us(const dlt645_datetime *t);

/* sim_tariff.c */
extern int sim_period_parse(const char *name);
extern const char *sim_period_name(int period);
extern void sim_version_init(sim_version *v, int nseasons, int ndaytypes);
extern void sim_version_fill(sim_version *v, int season, int daytype,
                             int from_min, int to_min, int period);
extern void sim_version_finish(sim_version *v);
extern void sim_tariff_free(sim_tariff *t);
extern const sim_plan *sim_tariff_plan(const sim_tariff *t, int64_t clock_us,
                                       int64_t local_day,
                                       const sim_version **ver,
                                       int64_t *until_us);
extern const sim_plan *sim_flat_plan(void);

/* sim_profile.c */
extern const char *sim_kind_name(int kind);
extern int sim_kind_parse(const char *name);
extern uint64_t sim_mix(uint64_t x);
extern uint64_t sim_hash_addr(uint64_t seed, const uint8_t addr[6],
                              uint64_t salt);
extern int32_t sim_noise(uint64_t seed, uint64_t salt, int64_t n,
                         int32_t range);
extern void sim_profile_setup(sim_meter *m);
extern int32_t sim_profile_load_w(sim_meter *m, int64_t local_min);

/* sim_meter.c */
extern void sim_meter_start(sim_meter *m, int64_t t_us, bool history);
extern void sim_meter_advance(sim_ctx *ctx, sim_meter *m, int64_t t_us);
extern int64_t sim_meter_local_us(const sim_meter *m, int64_t t_us);
extern int32_t sim_meter_demand_dw(const sim_meter *m, int64_t t_us);
extern void sim_meter_elec(const sim_meter *m, int64_t t_us, sim_elec *e);
extern void sim_meter_status(const sim_meter *m, uint16_t sw[7]);
extern const sim_snap *sim_ring_get(const sim_ring *r, const sim_snap *arr,
                                    int size, int k);
extern uint8_t sim_meter_control(sim_ctx *ctx, sim_meter *m, uint8_t n1,
                                 uint8_t n2, const dlt645_datetime *until,
                                 int64_t t_us);
extern void sim_meter_set_clock(sim_ctx *ctx, sim_meter *m,
                                const dlt645_datetime *t, int64_t t_us);
extern uint8_t sim_meter_freeze(sim_ctx *ctx, sim_meter *m,
                                const dlt645_freeze *f, int64_t t_us);

/* sim_values.c: DI -> value bytes; returns their length, or -1 with
 * *serr set. text (may be NULL) gets the values for the truth file. */
extern int sim_values_read(sim_ctx *ctx, sim_meter *m, uint32_t di,
                           int64_t t_us, uint8_t *out, size_t cap,
                           uint8_t *serr, char *text, size_t text_cap);
extern uint8_t sim_values_write(sim_ctx *ctx, sim_meter *m, uint32_t di,
                                const uint8_t *val, size_t len, int64_t t_us);

/* sim_proto.c */
extern void sim_proto_frame(sim_ctx *ctx, int conn, const dlt645_frame *f);
extern int sim_proto_announce(sim_ctx *ctx, sim_meter *m, uint8_t *out,
                              size_t cap);

/* sim_faults.c */
extern int sim_faults_parse(const char *spec, sim_faults *f, char *err,
                            size_t cap);
extern void sim_faults_assign(sim_ctx *ctx);
extern uint32_t sim_faults_roll(sim_ctx *ctx, sim_meter *m);
extern const char *sim_fault_name(uint32_t bit);
extern uint64_t sim_rand(uint64_t *state);
extern void sim_faults_free(sim_faults *f);

/* sim_truth.c */
extern int sim_truth_open(sim_ctx *ctx, const char *path);
extern void sim_truth_line(sim_ctx *ctx, const sim_meter *m, int64_t t_us,
                           const char *event, const char *di,
                           const char *value, const char *fault);
extern void sim_truth_flush(sim_ctx *ctx, bool force);
extern void sim_truth_close(sim_ctx *ctx);
extern void sim_summary(sim_ctx *ctx, FILE *out, const char *sep);

/* sim_fleet.c, sim_fleet_db.c, sim_fleet_csv.c */
extern int sim_fleet_load_db(sim_ctx *ctx);
extern int sim_fleet_load_csv(sim_ctx *ctx, const char *path);
extern int sim_fleet_generate(sim_ctx *ctx, int n, int per_gateway);
extern sim_meter *sim_fleet_add_meter(sim_ctx *ctx);
extern void sim_fleet_set_energy(sim_meter *m, int64_t total,
                                 const int64_t *rates, int nr);
extern int64_t sim_fleet_seed_energy(const sim_ctx *ctx, const sim_meter *m);
extern int sim_fleet_add_tariff(sim_ctx *ctx);
extern int sim_fleet_add_gateway(sim_ctx *ctx, const char *serial);
extern int sim_fleet_finish(sim_ctx *ctx);
extern sim_meter *sim_fleet_find(const sim_ctx *ctx,
                                 const uint8_t addr[DLT645_ADDR_LEN]);
extern void sim_fleet_free(sim_ctx *ctx);

/* sim_timer.c: a min-heap of connections by timer_at. */
extern void sim_timer_set(sim_ctx *ctx, int conn, int64_t at);
extern int sim_timer_due(sim_ctx *ctx, int64_t now);
extern int64_t sim_timer_next(const sim_ctx *ctx);

/* sim_net.c */
extern int sim_net_init(sim_ctx *ctx);
extern int sim_net_run(sim_ctx *ctx, volatile sig_atomic_t *stop);
extern void sim_net_close_all(sim_ctx *ctx);
extern int sim_net_send(sim_ctx *ctx, int conn, const uint8_t *bytes,
                        size_t len);
extern void sim_net_hold(sim_ctx *ctx, int conn, int64_t until_mono);
extern void sim_net_close_after_send(sim_ctx *ctx, int conn);

/* a / b rounded towards minus infinity (b > 0). */
static inline int64_t
sim_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Current simulated time. */
static inline int64_t
sim_now(const sim_ctx *ctx)
{
	return simclock_now(&ctx->clock);
}

#endif /* SIM_H */
