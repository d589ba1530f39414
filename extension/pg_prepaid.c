/*
 * pg_prepaid.c
 *	  Module entry: PG_MODULE_MAGIC, the GUCs, and (when preloaded) the
 *	  background-worker registration.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "bgw.h"
#include "pg_prepaid.h"

PG_MODULE_MAGIC;

int prepaid_max_clock_skew = 300;
int prepaid_settle_batch = 20000;
int prepaid_settle_workers = 1;
int prepaid_rollup_slot = -1;
int prepaid_settle_interval = 60;
int prepaid_scheduler_naptime = 10;
char *prepaid_databases = NULL;

/*
 * Thresholds read by the SQL alarm and command jobs through
 * current_setting(); defined here so they can be set per database.
 */
static double undervoltage_ratio = 0.85;
static double overvoltage_ratio = 1.10;
static double phase_loss_ratio = 0.50;
static double offline_factor = 2.5;
static int gateway_timeout = 900;
static int command_timeout = 60;
static int command_max_attempts = 3;
static int reconcile_cooloff = 300;
static int freeze_grace = 21600;
static int rollup_batch_size = 20000;
static char *forward_time = NULL;
static char *site_time_zone = NULL;

void _PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("pg_prepaid.max_clock_skew",
	                        "Readings stamped further than this many seconds "
	                        "ahead of the server clock are quarantined.",
	                        NULL, &prepaid_max_clock_skew, 300, 0,
	                        7 * 24 * 3600, PGC_SUSET, GUC_UNIT_S, NULL, NULL,
	                        NULL);
	DefineCustomIntVariable("pg_prepaid.settle_batch_size",
	                        "Meters settled per batch by prepaid.settle().",
	                        NULL, &prepaid_settle_batch, 20000, 1, 1000000,
	                        PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.settle_workers",
	                        "Processes prepaid.settle() uses when called "
	                        "without workers.",
	                        "With more than one, dynamic background workers "
	                        "settle disjoint sets of accounts, each in its "
	                        "own transaction.",
	                        &prepaid_settle_workers, 1, 1, 16, PGC_USERSET, 0,
	                        NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.rollup_slot",
	                        "Slot of prepaid.revenue_daily this session adds "
	                        "its ledger totals to (-1: by process id).",
	                        "Set by the parallel settlement for the length of "
	                        "a run, so that its processes never wait for each "
	                        "other's slot.",
	                        &prepaid_rollup_slot, -1, -1, 15, PGC_USERSET,
	                        GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.settle_interval",
	                        "Seconds between runs of the settle job.",
	                        "prepaid.job_run_now('settle') runs it at once.",
	                        &prepaid_settle_interval, 60, 1, 86400, PGC_SIGHUP,
	                        GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.scheduler_naptime",
	                        "Longest sleep of the launcher and schedulers.",
	                        NULL, &prepaid_scheduler_naptime, 10, 1, 3600,
	                        PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable(
	    "pg_prepaid.databases",
	    "Databases in which a pg_prepaid job scheduler runs.",
	    "Comma-separated list; needs shared_preload_libraries.",
	    &prepaid_databases, "postgres", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("pg_prepaid.undervoltage_ratio",
	                         "Undervoltage below this fraction of nominal.",
	                         NULL, &undervoltage_ratio, 0.85, 0.0, 1.0,
	                         PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("pg_prepaid.overvoltage_ratio",
	                         "Overvoltage above this fraction of nominal.",
	                         NULL, &overvoltage_ratio, 1.10, 1.0, 2.0,
	                         PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("pg_prepaid.phase_loss_ratio",
	                         "Phase loss below this fraction of nominal.",
	                         NULL, &phase_loss_ratio, 0.50, 0.0, 1.0,
	                         PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("pg_prepaid.offline_factor",
	                         "A meter silent for this many read intervals is "
	                         "offline.",
	                         NULL, &offline_factor, 2.5, 1.0, 100.0,
	                         PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.gateway_timeout",
	                        "Seconds of silence after which a gateway is "
	                        "offline.",
	                        NULL, &gateway_timeout, 900, 10, 86400,
	                        PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.command_timeout",
	                        "Seconds a sent command may wait for its reply.",
	                        NULL, &command_timeout, 60, 1, 86400, PGC_USERSET,
	                        0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.command_max_attempts",
	                        "Attempts before a command fails.", NULL,
	                        &command_max_attempts, 3, 1, 100, PGC_USERSET, 0,
	                        NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.reconcile_cooloff",
	                        "Seconds after a relay command before the "
	                        "reconciler may re-queue it.",
	                        NULL, &reconcile_cooloff, 300, 0, 86400,
	                        PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.freeze_grace",
	                        "Seconds to wait for a meter's own freeze before "
	                        "estimating it from readings.",
	                        NULL, &freeze_grace, 21600, 0, 30 * 86400,
	                        PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable(
	    "pg_prepaid.rollup_batch_size",
	    "Meters per statement of prepaid.rollup_catch_up().", NULL,
	    &rollup_batch_size, 20000, 1, 1000000, PGC_USERSET, 0, NULL, NULL,
	    NULL);
	DefineCustomStringVariable(
	    "pg_prepaid.forward_url",
	    "URL the daily energy is posted to; empty = off.", NULL,
	    &prepaid_forward_url, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("pg_prepaid.forward_secret",
	                           "Key of the HMAC-SHA256 request signature.",
	                           NULL, &prepaid_forward_secret, "", PGC_SIGHUP,
	                           GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.forward_connect_timeout",
	                        "Connection timeout of a forward request.", NULL,
	                        &prepaid_forward_connect_timeout_ms, 3000, 100,
	                        600000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_prepaid.forward_timeout",
	                        "Total timeout of a forward request.", NULL,
	                        &prepaid_forward_timeout_ms, 10000, 100, 600000,
	                        PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomStringVariable("pg_prepaid.forward_time",
	                           "Local time of day after which the previous "
	                           "day is forwarded (HH:MM).",
	                           NULL, &forward_time, "01:00", PGC_USERSET, 0,
	                           NULL, NULL, NULL);
	DefineCustomStringVariable("pg_prepaid.time_zone",
	                           "Time zone of a new property (site) when none "
	                           "is given.",
	                           NULL, &site_time_zone, "Asia/Shanghai",
	                           PGC_USERSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("pg_prepaid");

	if (process_shared_preload_libraries_in_progress)
		prepaid_bgw_register();
}
