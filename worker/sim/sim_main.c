/*
 * sim_main.c
 *	  prepaid-sim: options and --help, start-up (clock, fleet, file limits,
 *	  truth file), the run, clean stop on SIGTERM/SIGINT, and the summary.
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "fdlimit.h"
#include "log.h"

static volatile sig_atomic_t stop_requested;

static const char usage_text[] =
    "Usage: prepaid-sim [OPTION]...\n"
    "Simulates a fleet of DL/T 645-2007 prepaid meters and LoRa gateways "
    "that\n"
    "connect to prepaid-ingest as TCP clients and answer its requests.\n"
    "\n"
    "Fleet (default: the database named by the PG* environment):\n"
    "  --db CONNINFO         read meters, gateways and tariffs from "
    "PostgreSQL\n"
    "                        (libpq conninfo; \"\" = environment)\n"
    "  --property ID         only the meters and gateways of this property\n"
    "  --fleet FILE          read the fleet from a CSV file instead (see\n"
    "                        docs/simulator.md)\n"
    "  --generate N[/K]      a synthetic fleet of N meters, K per gateway\n"
    "                        (no K: all direct)\n"
    "\n"
    "Daemon:\n"
    "  --host ADDR           prepaid-ingest address (IPv4; default "
    "127.0.0.1)\n"
    "  --port PORT           its port (default 7645)\n"
    "  --connect-rate N      open at most N connections per second (2000)\n"
    "  --max-connecting N    at most N connects in flight (256)\n"
    "  --reconnect MS        reconnect delay after a close (1000); doubles "
    "up to\n"
    "                        60 s while the peer keeps closing within 5 s\n"
    "  --heartbeat SEC       gateway heartbeat after SEC idle seconds (60; "
    "0 off)\n"
    "  --announce            direct meters send an unsolicited read-address\n"
    "                        reply (93) when they connect\n"
    "  --idle                connection-holding mode: no heartbeats (for "
    "many\n"
    "                        thousands of idle connections)\n"
    "  --ready-file FILE     write the connection count to FILE once every\n"
    "                        connection has been established\n"
    "\n"
    "Time:\n"
    "  --time-scale N        simulated time runs N times faster (1)\n"
    "  --time-start T[@W]    simulated time at start: now, now-30d, Unix "
    "seconds\n"
    "                        or YYYY-MM-DD[Thh:mm[:ss]][Z] (UTC); with @W it "
    "is\n"
    "                        the simulated time at Unix time W (decimals "
    "allowed),\n"
    "                        so programs started apart agree exactly\n"
    "\n"
    "Meters:\n"
    "  --seed N              seed of every deterministic choice (1)\n"
    "  --button-delay SEC    simulated seconds until the tenant presses the\n"
    "                        button after a permit-close (60; -1 never)\n"
    "  --password LLPPPPPP   level and password accepted for writes and "
    "relay\n"
    "                        control (02000000)\n"
    "  --preamble N|mixed    FE bytes before each reply: 0..4, or mixed "
    "(per\n"
    "                        meter, the default)\n"
    "  --balance YUAN        meter-side balance at start (0); priced by the\n"
    "                        written prices (04 05 01 0N) as energy is used\n"
    "  --no-history          start without the freezes since the last\n"
    "                        settlement day (faster start for huge fleets)\n"
    "  --faults SPEC         fault injection, e.g.\n"
    "                        \"silence@1%,bad_checksum~10%@2%,slow:3000@"
    "000000000007\"\n"
    "                        (see docs/simulator.md)\n"
    "\n"
    "Output:\n"
    "  --truth FILE          ground-truth CSV: one line per reply (format in\n"
    "                        worker/sim/README.md)\n"
    "  --summary FILE        the exit summary as key=value lines\n"
    "  --stats SEC           progress line on stderr every SEC seconds (10; "
    "0 off)\n"
    "  --duration SEC        stop after SEC seconds (default: until "
    "SIGTERM)\n"
    "  --log-level LEVEL     error, warn, info (default) or debug\n"
    "  --quiet               same as --log-level warn\n"
    "  --help                this text\n"
    "\n"
    "SIGTERM or SIGINT stops the simulator cleanly: the truth file is "
    "flushed\n"
    "and the summary printed.\n";

enum
{
	OPT_DB = 256,
	OPT_PROPERTY,
	OPT_FLEET,
	OPT_GENERATE,
	OPT_HOST,
	OPT_PORT,
	OPT_CONNECT_RATE,
	OPT_MAX_CONNECTING,
	OPT_RECONNECT,
	OPT_HEARTBEAT,
	OPT_ANNOUNCE,
	OPT_IDLE,
	OPT_READY_FILE,
	OPT_TIME_SCALE,
	OPT_TIME_START,
	OPT_SEED,
	OPT_BUTTON_DELAY,
	OPT_PASSWORD,
	OPT_PREAMBLE,
	OPT_BALANCE,
	OPT_NO_HISTORY,
	OPT_FAULTS,
	OPT_TRUTH,
	OPT_SUMMARY,
	OPT_STATS,
	OPT_DURATION,
	OPT_LOG_LEVEL,
	OPT_QUIET,
	OPT_HELP
};

static const struct option long_opts[] = {
    {"db", required_argument, NULL, OPT_DB},
    {"property", required_argument, NULL, OPT_PROPERTY},
    {"fleet", required_argument, NULL, OPT_FLEET},
    {"generate", required_argument, NULL, OPT_GENERATE},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"connect-rate", required_argument, NULL, OPT_CONNECT_RATE},
    {"max-connecting", required_argument, NULL, OPT_MAX_CONNECTING},
    {"reconnect", required_argument, NULL, OPT_RECONNECT},
    {"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
    {"announce", no_argument, NULL, OPT_ANNOUNCE},
    {"idle", no_argument, NULL, OPT_IDLE},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"time-scale", required_argument, NULL, OPT_TIME_SCALE},
    {"time-start", required_argument, NULL, OPT_TIME_START},
    {"seed", required_argument, NULL, OPT_SEED},
    {"button-delay", required_argument, NULL, OPT_BUTTON_DELAY},
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"preamble", required_argument, NULL, OPT_PREAMBLE},
    {"balance", required_argument, NULL, OPT_BALANCE},
    {"no-history", no_argument, NULL, OPT_NO_HISTORY},
    {"faults", required_argument, NULL, OPT_FAULTS},
    {"truth", required_argument, NULL, OPT_TRUTH},
    {"summary", required_argument, NULL, OPT_SUMMARY},
    {"stats", required_argument, NULL, OPT_STATS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

static void
on_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

/* An integer option in [lo, hi]; exits with a usage error otherwise. */
static int64_t
int_arg(const char *name, const char *text, int64_t lo, int64_t hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || end == text || *end != '\0' || v < lo || v > hi)
	{
		fprintf(stderr,
		        "prepaid-sim: --%s: \"%s\" is not an integer in "
		        "%lld..%lld\n",
		        name, text, (long long) lo, (long long) hi);
		exit(2);
	}
	return v;
}

/*
 * A decimal "123.4567" scaled by 10^digits, exactly (extra digits
 * dropped); -1 if malformed or negative.
 */
static int64_t
fixed_arg(const char *text, int digits)
{
	int64_t whole = 0, frac = 0;
	int nd = 0;
	const char *p = text;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9')
		whole = whole * 10 + (*p++ - '0');
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (nd < digits)
			{
				frac = frac * 10 + (*p - '0');
				nd++;
			}
	if (*p != '\0')
		return -1;
	for (; nd < digits; nd++)
		frac *= 10;
	for (int i = 0; i < digits; i++)
		whole *= 10;
	return whole + frac;
}

static void
parse_password(const char *text, uint8_t pw[4])
{
	if (strlen(text) != 8 || strspn(text, "0123456789") != 8)
	{
		fprintf(stderr, "prepaid-sim: --password: expected 8 digits "
		                "LLPPPPPP (level, then the 6-digit password)\n");
		exit(2);
	}
	/* wire order PA P0 P1 P2: level, then the password low byte first */
	for (int i = 0; i < 4; i++)
	{
		int k = i == 0 ? 0 : 8 - 2 * i;

		pw[i] = (uint8_t) ((text[k] - '0') << 4 | (text[k + 1] - '0'));
	}
}

static void
set_defaults(sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = 7645;
	o->time_scale = 1;
	o->time_start = "now";
	o->seed = 1;
	o->button_delay_us = 60 * 1000000LL;
	o->password[0] = 0x02;
	o->heartbeat_s = 60;
	o->reconnect_ms = 1000;
	o->connect_rate = 2000;
	o->max_connecting = 256;
	o->preamble = -1;
	o->stats_s = 10;
	o->log_level = LOGL_INFO;
}

static void
parse_args(int argc, char **argv, sim_opts *o)
{
	int c;

	set_defaults(o);
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1)
	{
		switch (c)
		{
			case OPT_DB:
				o->db = optarg;
				break;
			case OPT_PROPERTY:
				o->property = int_arg("property", optarg, 1, INT64_MAX);
				break;
			case OPT_FLEET:
				o->fleet_csv = optarg;
				break;
			case OPT_GENERATE:
			{
				char *slash = strchr(optarg, '/');

				if (slash)
				{
					*slash = '\0';
					o->generate_per_gw =
					    (int) int_arg("generate", slash + 1, 0, 100000);
				}
				o->generate = (int) int_arg("generate", optarg, 1, 10000000);
				break;
			}
			case OPT_HOST:
				o->host = optarg;
				break;
			case OPT_PORT:
				o->port = (int) int_arg("port", optarg, 1, 65535);
				break;
			case OPT_CONNECT_RATE:
				o->connect_rate =
				    (int) int_arg("connect-rate", optarg, 1, 10000000);
				break;
			case OPT_MAX_CONNECTING:
				o->max_connecting =
				    (int) int_arg("max-connecting", optarg, 1, 1000000);
				break;
			case OPT_RECONNECT:
				o->reconnect_ms =
				    (int) int_arg("reconnect", optarg, 1, 600000);
				break;
			case OPT_HEARTBEAT:
				o->heartbeat_s = (int) int_arg("heartbeat", optarg, 0, 86400);
				break;
			case OPT_ANNOUNCE:
				o->announce = true;
				break;
			case OPT_IDLE:
				o->idle = true;
				break;
			case OPT_READY_FILE:
				o->ready_file = optarg;
				break;
			case OPT_TIME_SCALE:
				o->time_scale = int_arg("time-scale", optarg, 1, 1000000000LL);
				break;
			case OPT_TIME_START:
				o->time_start = optarg;
				break;
			case OPT_SEED:
				o->seed = (uint64_t) int_arg("seed", optarg, 0, INT64_MAX);
				break;
			case OPT_BUTTON_DELAY:
				o->button_delay_us =
				    strcmp(optarg, "never") == 0
				        ? -1
				        : int_arg("button-delay", optarg, -1, 86400LL * 365) *
				              1000000LL;
				if (o->button_delay_us < 0)
					o->button_delay_us = -1;
				break;
			case OPT_PASSWORD:
				parse_password(optarg, o->password);
				break;
			case OPT_PREAMBLE:
				o->preamble = strcmp(optarg, "mixed") == 0
				                  ? -1
				                  : (int) int_arg("preamble", optarg, 0, 4);
				break;
			case OPT_BALANCE:
				if ((o->initial_balance = fixed_arg(optarg, 7)) < 0)
				{
					fprintf(stderr,
					        "prepaid-sim: --balance: \"%s\" is not an "
					        "amount in yuan\n",
					        optarg);
					exit(2);
				}
				break;
			case OPT_NO_HISTORY:
				o->no_history = true;
				break;
			case OPT_FAULTS:
				o->faults = optarg;
				break;
			case OPT_TRUTH:
				o->truth = optarg;
				break;
			case OPT_SUMMARY:
				o->summary = optarg;
				break;
			case OPT_STATS:
				o->stats_s = (int) int_arg("stats", optarg, 0, 86400);
				break;
			case OPT_DURATION:
				if ((o->duration_ms = fixed_arg(optarg, 3)) <= 0)
				{
					fprintf(stderr,
					        "prepaid-sim: --duration: \"%s\" is not a "
					        "positive number of seconds\n",
					        optarg);
					exit(2);
				}
				break;
			case OPT_LOG_LEVEL:
				if ((o->log_level = log_parse_level(optarg)) < 0)
				{
					fprintf(stderr,
					        "prepaid-sim: --log-level: unknown level "
					        "\"%s\"\n",
					        optarg);
					exit(2);
				}
				break;
			case OPT_QUIET:
				o->log_level = LOGL_WARN;
				break;
			case OPT_HELP:
				fputs(usage_text, stdout);
				exit(0);
			default:
				fputs("Try \"prepaid-sim --help\".\n", stderr);
				exit(2);
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "prepaid-sim: unexpected argument \"%s\"\n",
		        argv[optind]);
		exit(2);
	}
	if ((o->fleet_csv != NULL) + (o->generate > 0) + (o->db != NULL) > 1)
	{
		fprintf(stderr,
		        "prepaid-sim: give one of --db, --fleet, --generate\n");
		exit(2);
	}
}

/* --time-start T[@W] (worker/common/simclock: shared with the daemon). */
static int
start_clock(sim_ctx *ctx)
{
	int64_t start;

	if (simclock_parse_anchored(ctx->o.time_start, ctx->o.time_scale,
	                            &start) != 0)
	{
		log_error("--time-start: cannot read \"%s\"", ctx->o.time_start);
		return -1;
	}
	simclock_init(&ctx->clock, start, ctx->o.time_scale);
	ctx->sim_start_us = start;
	ctx->mono_start = ctx->clock.mono_start_us;
	return 0;
}

static int
load_fleet(sim_ctx *ctx)
{
	char err[256];

	if (ctx->o.faults &&
	    sim_faults_parse(ctx->o.faults, &ctx->faults, err, sizeof(err)) != 0)
	{
		log_error("--faults: %s", err);
		return -1;
	}
	if (ctx->o.fleet_csv)
		return sim_fleet_load_csv(ctx, ctx->o.fleet_csv);
	if (ctx->o.generate > 0)
		return sim_fleet_generate(ctx, ctx->o.generate,
		                          ctx->o.generate_per_gw);
	return sim_fleet_load_db(ctx);
}

static void
write_summary(sim_ctx *ctx)
{
	FILE *fp;

	fputs("prepaid-sim summary: ", stderr);
	sim_summary(ctx, stderr, " ");
	if (ctx->o.summary == NULL)
		return;
	if ((fp = fopen(ctx->o.summary, "w")) == NULL)
	{
		log_error("cannot write %s", ctx->o.summary);
		return;
	}
	sim_summary(ctx, fp, "\n");
	fclose(fp);
}

int
main(int argc, char **argv)
{
	static sim_ctx ctx;
	struct sigaction sa;
	long limit;
	int rc = 1;

	parse_args(argc, argv, &ctx.o);
	log_init("prepaid-sim", ctx.o.log_level);
	ctx.epfd = -1;
	if (start_clock(&ctx) != 0 || load_fleet(&ctx) != 0 ||
	    sim_fleet_finish(&ctx) != 0)
		goto out;
	if (ctx.nconns == 0)
	{
		log_error("the fleet is empty");
		goto out;
	}
	limit = fdlimit_raise(ctx.nconns + 64);
	if (limit < ctx.nconns + 16)
		log_warn("only %ld open files allowed for %d connections", limit,
		         ctx.nconns);
	if (ctx.o.truth && sim_truth_open(&ctx, ctx.o.truth) != 0)
	{
		log_error("cannot write the truth file %s: %s", ctx.o.truth,
		          strerror(errno));
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if (sim_net_init(&ctx) != 0)
		goto out;
	log_info("connecting %d devices to %s:%d, time scale %lld", ctx.nconns,
	         ctx.o.host, ctx.o.port, (long long) ctx.o.time_scale);
	if (sim_net_run(&ctx, &stop_requested) == 0)
		rc = 0;
	sim_net_close_all(&ctx);
	write_summary(&ctx);
out:
	sim_truth_close(&ctx);
	sim_fleet_free(&ctx);
	sim_faults_free(&ctx.faults);
	sim_zone_free_all();
	return rc;
}
