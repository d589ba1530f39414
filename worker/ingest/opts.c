/*
 * opts.c
 *	  Command-line options of prepaid-ingest: defaults, parsing, --help.
 */
#include "opts.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hex.h"
#include "log.h"
#include "simclock.h"

#define INGEST_VERSION "0.1"

static const char usage_text[] =
    "prepaid-ingest: the meter-facing daemon of pg_prepaid. Meters and LoRa\n"
    "gateways connect to it over TCP and speak DL/T 645-2007; it reads every\n"
    "meter on a schedule, writes readings to PostgreSQL exactly once (COPY\n"
    "batches, a local spool survives crashes) and sends queued commands.\n"
    "\n"
    "Usage: prepaid-ingest [OPTION]...\n"
    "\n"
    "Connections\n"
    "  --listen=[HOST:]PORT     where meters connect (default 7645, all "
    "addresses)\n"
    "  --dsn=CONNINFO           libpq connection string; otherwise the PG*\n"
    "                           environment (PGHOST, PGPORT, PGDATABASE, "
    "PGUSER,\n"
    "                           PGPASSWORD or ~/.pgpass, PGAPPNAME)\n"
    "  --name=NAME              daemon name: commands claimed_by, batch ids\n"
    "                           (default: the host name; unique per daemon)\n"
    "  --max-connections=N      meter sockets to allow; raises RLIMIT_NOFILE\n"
    "                           (default 100000)\n"
    "\n"
    "Readings\n"
    "  --poll=energy|full       energy: energy block (+ status word 3, "
    "below);\n"
    "                           full: also voltage, current, power, PF,\n"
    "                           frequency, demand and the meter clock "
    "(default)\n"
    "  --status-every=N         energy polls read status word 3 when the "
    "relay\n"
    "                           is open or unknown, when the register did "
    "not\n"
    "                           move, after a relay command, and at least\n"
    "                           every N-th poll (default 10; 1 = every poll)\n"
    "  --poll-window=N          polls in progress at once at most (default\n"
    "                           1000): due polls beyond it wait, so queues "
    "stay\n"
    "                           short and commands are not delayed behind "
    "polls;\n"
    "                           raise it if polls/s x round trip nears it\n"
    "  --batch-size=N           readings per COPY batch (default 5000)\n"
    "  --batch-delay=MS         flush a batch at most MS after its first\n"
    "                           reading (default 500)\n"
    "  --max-buffer=N           readings held while PostgreSQL is slow or "
    "down;\n"
    "                           beyond it polls are delayed, never dropped\n"
    "                           (default 1000000)\n"
    "  --spool-dir=DIR          spool directory (default "
    "/var/lib/prepaid-ingest)\n"
    "  --spool-sync=batch|none  fdatasync the spool when a batch closes "
    "(default\n"
    "                           batch; none survives a crash of the daemon "
    "but\n"
    "                           not of the machine)\n"
    "  --time-scale=N           accelerated time: simulated = T + (wall - "
    "start) x N\n"
    "  --time-start=T           T: now, now-30d, Unix seconds or\n"
    "                           YYYY-MM-DDThh:mm:ssZ (default now); T@W: T "
    "is\n"
    "                           the simulated time at Unix time W (seconds,\n"
    "                           decimals allowed), so programs started apart\n"
    "                           agree (prepaid-sim takes the same form)\n"
    "  --replay=FILE            backfill: decode '<ISO time> <hex frame>' "
    "lines\n"
    "                           and write their readings, then exit\n"
    "\n"
    "Timing\n"
    "  --request-timeout=MS     reply timeout of one request (default 5000)\n"
    "  --ident-wait=MS          wait this long for a device to speak first\n"
    "                           before sending read-address (default 300)\n"
    "  --idle-timeout=S         close a connection silent this long (600)\n"
    "  --command-poll=MS        safety-net claim of commands besides NOTIFY\n"
    "                           (default 3000)\n"
    "  --reload-interval=S      reload the meter map (default 300; also "
    "SIGHUP)\n"
    "\n"
    "Commands\n"
    "  --password=HEX8          PA P0 P1 P2 for writes and 0x1C, PA first\n"
    "                           (default 02000000)\n"
    "  --operator=HEX8          operator code C0..C3 (default 00000000)\n"
    "\n"
    "Operations\n"
    "  --config=FILE            read options from FILE: one \"name = value\"\n"
    "                           per line (names as the long options, # "
    "comments);\n"
    "                           SIGHUP re-reads log-level, status-every,\n"
    "                           poll-window, batch-size, batch-delay,\n"
    "                           request-timeout, idle-timeout, command-poll,\n"
    "                           reload-interval and stats-interval from it\n"
    "  --log-level=LEVEL        error, warn, info (default) or debug\n"
    "  --stats-interval=S       write counters to prepaid.ingest_stats (5)\n"
    "  --stats-port=PORT        plain-text counters on 127.0.0.1:PORT (off)\n"
    "  --help, --version\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain and flush, then exit 0; SIGHUP reloads "
    "the\n"
    "meter map and the log level (PREPAID_INGEST_LOG_LEVEL); SIGUSR1 logs "
    "the\n"
    "counters. Environment: PREPAID_INGEST_LOG_LEVEL sets the default level.\n"
    "The spool (one file per 64 MiB, <name>-<seq>.spool) holds every reading\n"
    "until its batch is committed; it is replayed at start.\n";

static void
usage_exit(int status)
{
	fputs(usage_text, status == 0 ? stdout : stderr);
	exit(status);
}

/*
 * A bad option or value: at start-up the daemon exits with status 2; while
 * a --config file is re-read on SIGHUP the error is only noted, and the file
 * is not applied at all (the running settings stay).
 */
static bool reloading, reload_failed;

static void
bad_option(void)
{
	if (!reloading)
		exit(2);
	reload_failed = true;
}

static long
num_arg(const char *name, const char *v, long lo, long hi)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (end == v || *end != '\0' || n < lo || n > hi)
	{
		fprintf(stderr,
		        "prepaid-ingest: --%s: expected an integer in "
		        "[%ld, %ld], got \"%s\"\n",
		        name, lo, hi, v);
		bad_option();
	}
	return n;
}

static void
hex4_arg(const char *name, const char *v, uint8_t out[4])
{
	if (strlen(v) != 8 || hex_decode(v, out, 4) != 4)
	{
		fprintf(stderr, "prepaid-ingest: --%s: expected 8 hex digits\n", name);
		bad_option();
	}
}

enum
{
	O_LISTEN = 256,
	O_DSN,
	O_NAME,
	O_MAXCONN,
	O_POLL,
	O_STATUS_EVERY,
	O_POLL_WINDOW,
	O_BATCH_SIZE,
	O_BATCH_DELAY,
	O_MAX_BUFFER,
	O_SPOOL_DIR,
	O_SPOOL_SYNC,
	O_TIME_SCALE,
	O_TIME_START,
	O_REPLAY,
	O_REQ_TIMEOUT,
	O_IDENT_WAIT,
	O_IDLE_TIMEOUT,
	O_CMD_POLL,
	O_RELOAD,
	O_PASSWORD,
	O_OPERATOR,
	O_LOG_LEVEL,
	O_STATS_INTERVAL,
	O_STATS_PORT,
	O_CONFIG,
	O_HELP,
	O_VERSION
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, O_LISTEN},
    {"dsn", required_argument, NULL, O_DSN},
    {"name", required_argument, NULL, O_NAME},
    {"max-connections", required_argument, NULL, O_MAXCONN},
    {"poll", required_argument, NULL, O_POLL},
    {"status-every", required_argument, NULL, O_STATUS_EVERY},
    {"poll-window", required_argument, NULL, O_POLL_WINDOW},
    {"batch-size", required_argument, NULL, O_BATCH_SIZE},
    {"batch-delay", required_argument, NULL, O_BATCH_DELAY},
    {"max-buffer", required_argument, NULL, O_MAX_BUFFER},
    {"spool-dir", required_argument, NULL, O_SPOOL_DIR},
    {"spool-sync", required_argument, NULL, O_SPOOL_SYNC},
    {"time-scale", required_argument, NULL, O_TIME_SCALE},
    {"time-start", required_argument, NULL, O_TIME_START},
    {"replay", required_argument, NULL, O_REPLAY},
    {"request-timeout", required_argument, NULL, O_REQ_TIMEOUT},
    {"ident-wait", required_argument, NULL, O_IDENT_WAIT},
    {"idle-timeout", required_argument, NULL, O_IDLE_TIMEOUT},
    {"command-poll", required_argument, NULL, O_CMD_POLL},
    {"reload-interval", required_argument, NULL, O_RELOAD},
    {"password", required_argument, NULL, O_PASSWORD},
    {"operator", required_argument, NULL, O_OPERATOR},
    {"log-level", required_argument, NULL, O_LOG_LEVEL},
    {"stats-interval", required_argument, NULL, O_STATS_INTERVAL},
    {"stats-port", required_argument, NULL, O_STATS_PORT},
    {"config", required_argument, NULL, O_CONFIG},
    {"help", no_argument, NULL, O_HELP},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0}};

static void
listen_arg(const char *v, ingest_opts *o)
{
	static char host[256];
	const char *colon = strrchr(v, ':');

	if (colon)
	{
		size_t n = (size_t) (colon - v);

		if (n >= sizeof(host))
			n = sizeof(host) - 1;
		memcpy(host, v, n);
		host[n] = '\0';
		o->listen_host = n > 0 ? host : NULL;
		v = colon + 1;
	}
	o->port = (int) num_arg("listen", v, 0, 65535);
}

static void apply(int c, const char *arg, ingest_opts *o);

/* Options SIGHUP may change. */
static bool
reloadable(int c)
{
	return c == O_LOG_LEVEL || c == O_BATCH_SIZE || c == O_BATCH_DELAY ||
	       c == O_REQ_TIMEOUT || c == O_IDLE_TIMEOUT || c == O_CMD_POLL ||
	       c == O_RELOAD || c == O_STATS_INTERVAL || c == O_STATUS_EVERY ||
	       c == O_POLL_WINDOW;
}

int
opts_load_file(const char *path, ingest_opts *o, bool reload_only)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int lineno = 0;
	ingest_opts next;

	if (f == NULL)
	{
		fprintf(stderr, "prepaid-ingest: --config: cannot open %s\n", path);
		if (reload_only)
			return -1;
		exit(2);
	}
	if (!reload_only)
		o->config_file = strdup(path);
	else
	{
		/* applied to a copy, kept only if every line is valid */
		next = *o;
		reloading = true;
		reload_failed = false;
	}
	while (fgets(line, sizeof(line), f))
	{
		char *key = line, *val, *end;
		const struct option *opt;

		lineno++;
		key += strspn(key, " \t");
		if (*key == '#' || *key == '\n' || *key == '\0')
			continue;
		val = strchr(key, '=');
		if (val == NULL)
		{
			fprintf(stderr, "prepaid-ingest: %s:%d: expected name = value\n",
			        path, lineno);
			bad_option();
			break;
		}
		end = val;
		while (end > key && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		*end = '\0';
		val++;
		val += strspn(val, " \t");
		end = val + strlen(val);
		while (end > val && (end[-1] == '\n' || end[-1] == ' ' ||
		                     end[-1] == '\t' || end[-1] == '\r'))
			end--;
		*end = '\0';
		for (opt = long_opts; opt->name; opt++)
			if (strcmp(opt->name, key) == 0 && opt->has_arg)
				break;
		if (opt->name == NULL || opt->val == O_CONFIG)
		{
			fprintf(stderr, "prepaid-ingest: %s:%d: unknown option \"%s\"\n",
			        path, lineno, key);
			bad_option();
			break;
		}
		if (reload_only && !reloadable(opt->val))
			continue;
		apply(opt->val, reload_only ? val : strdup(val),
		      reload_only ? &next : o);
	}
	fclose(f);
	if (reload_only)
	{
		reloading = false;
		if (reload_failed)
			return -1;
		*o = next;
	}
	return 0;
}

/* Applies one option (from argv or a --config file). */
static void
apply(int c, const char *arg, ingest_opts *o)
{
	switch (c)
	{
		case O_LISTEN:
			listen_arg(arg, o);
			break;
		case O_DSN:
			o->dsn = arg;
			break;
		case O_NAME:
			if (!arg[0] || strlen(arg) >= sizeof(o->name))
			{
				fprintf(stderr,
				        "prepaid-ingest: --name: 1 to %zu "
				        "characters\n",
				        sizeof(o->name) - 1);
				bad_option();
				break;
			}
			strcpy(o->name, arg);
			break;
		case O_MAXCONN:
			o->max_connections = num_arg("max-connections", arg, 16, 10000000);
			break;
		case O_POLL:
			if (strcmp(arg, "energy") == 0)
				o->poll = POLL_ENERGY;
			else if (strcmp(arg, "full") == 0)
				o->poll = POLL_FULL;
			else
			{
				fprintf(stderr, "prepaid-ingest: --poll: energy or full\n");
				bad_option();
			}
			break;
		case O_STATUS_EVERY:
			o->status_every = (int) num_arg("status-every", arg, 1, 255);
			break;
		case O_POLL_WINDOW:
			o->poll_window = (int) num_arg("poll-window", arg, 1, 10000000);
			break;
		case O_BATCH_SIZE:
			o->batch_size = (int) num_arg("batch-size", arg, 1, 1000000);
			break;
		case O_BATCH_DELAY:
			o->batch_delay_ms = (int) num_arg("batch-delay", arg, 1, 3600000);
			break;
		case O_MAX_BUFFER:
			o->max_buffer = num_arg("max-buffer", arg, 1, 1000000000);
			break;
		case O_SPOOL_DIR:
			o->spool_dir = arg;
			break;
		case O_SPOOL_SYNC:
			if (strcmp(arg, "batch") == 0)
				o->spool_sync = true;
			else if (strcmp(arg, "none") == 0)
				o->spool_sync = false;
			else
			{
				fprintf(stderr,
				        "prepaid-ingest: --spool-sync: batch or none\n");
				bad_option();
			}
			break;
		case O_TIME_SCALE:
			o->time_scale = num_arg("time-scale", arg, 1, 100000000);
			break;
		case O_TIME_START:
			o->time_start_text = arg;
			if (simclock_parse_start(strchr(arg, '@') ? "now" : arg,
			                         &o->time_start_us) != 0)
			{
				fprintf(stderr,
				        "prepaid-ingest: --time-start: not a time: "
				        "\"%s\"\n",
				        arg);
				bad_option();
			}
			break;
		case O_REPLAY:
			o->replay_file = arg;
			break;
		case O_REQ_TIMEOUT:
			o->request_timeout_ms =
			    (int) num_arg("request-timeout", arg, 10, 600000);
			break;
		case O_IDENT_WAIT:
			o->ident_wait_ms = (int) num_arg("ident-wait", arg, 0, 60000);
			break;
		case O_IDLE_TIMEOUT:
			o->idle_timeout_s =
			    (int) num_arg("idle-timeout", arg, 1, 86400 * 7);
			break;
		case O_CMD_POLL:
			o->command_poll_ms =
			    (int) num_arg("command-poll", arg, 100, 3600000);
			break;
		case O_RELOAD:
			o->reload_interval_s =
			    (int) num_arg("reload-interval", arg, 1, 86400 * 7);
			break;
		case O_PASSWORD:
			hex4_arg("password", arg, o->password);
			break;
		case O_OPERATOR:
			hex4_arg("operator", arg, o->operator_code);
			break;
		case O_LOG_LEVEL:
			o->log_level = log_parse_level(arg);
			if (o->log_level < 0)
			{
				fprintf(stderr, "prepaid-ingest: --log-level: error, warn, "
				                "info or debug\n");
				bad_option();
			}
			break;
		case O_STATS_INTERVAL:
			o->stats_interval_s =
			    (int) num_arg("stats-interval", arg, 1, 3600);
			break;
		case O_STATS_PORT:
			o->stats_port = (int) num_arg("stats-port", arg, 0, 65535);
			break;
		case O_CONFIG:
			opts_load_file(arg, o, false);
			break;
		case O_HELP:
			usage_exit(0);
			break;
		case O_VERSION:
			printf("prepaid-ingest %s\n", INGEST_VERSION);
			exit(0);
		default:
			usage_exit(2);
	}
}

void
opts_parse(int argc, char **argv, ingest_opts *o)
{
	const char *env_level = getenv("PREPAID_INGEST_LOG_LEVEL");
	int c;

	memset(o, 0, sizeof(*o));
	o->port = 7645;
	o->spool_dir = "/var/lib/prepaid-ingest";
	o->spool_sync = true;
	o->batch_size = 5000;
	o->batch_delay_ms = 500;
	o->max_buffer = 1000000;
	o->poll = POLL_FULL;
	o->status_every = 10;
	o->poll_window = 1000;
	o->time_scale = 1;
	o->request_timeout_ms = 5000;
	o->ident_wait_ms = 300;
	o->idle_timeout_s = 600;
	o->command_poll_ms = 3000;
	o->reload_interval_s = 300;
	o->stats_interval_s = 5;
	o->log_level = LOGL_INFO;
	o->password[0] = 0x02;
	o->max_connections = 100000;
	if (gethostname(o->name, sizeof(o->name) - 1) != 0 || !o->name[0])
		strcpy(o->name, "prepaid-ingest");
	if (env_level && log_parse_level(env_level) >= 0)
		o->log_level = log_parse_level(env_level);

	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1)
		apply(c, optarg, o);
	if (optind < argc)
	{
		fprintf(stderr, "prepaid-ingest: unexpected argument \"%s\"\n",
		        argv[optind]);
		exit(2);
	}
}
