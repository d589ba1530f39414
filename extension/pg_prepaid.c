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
int prepaid_settle_batch = 10000;
int prepaid_settle_interval = 60;
int prepaid_scheduler_naptime = 10;
char *prepaid_databases = NULL;

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
	                        NULL, &prepaid_settle_batch, 10000, 1, 1000000,
	                        PGC_USERSET, 0, NULL, NULL, NULL);
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
	MarkGUCPrefixReserved("pg_prepaid");

	if (process_shared_preload_libraries_in_progress)
		prepaid_bgw_register();
}
