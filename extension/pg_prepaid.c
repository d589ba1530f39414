/*
 * pg_prepaid.c
 *	  Module entry: PG_MODULE_MAGIC, the GUCs, and (when preloaded) the
 *	  background-worker registration.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "pg_prepaid.h"

PG_MODULE_MAGIC;

int prepaid_max_clock_skew = 300;
int prepaid_settle_batch = 10000;

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
	MarkGUCPrefixReserved("pg_prepaid");
}
