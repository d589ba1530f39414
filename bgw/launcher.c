/*
 * launcher.c
 *	  The pg_prepaid launcher: a static background worker (registered when
 *	  the library is preloaded) that starts one scheduler per database named
 *	  in pg_prepaid.databases, if that database exists, and starts it again
 *	  whenever it is gone. SIGHUP re-reads the list; a database created later
 *	  is picked up within pg_prepaid.scheduler_naptime.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "bgw.h"

#define MAX_SCHEDULERS 64

typedef struct SchedulerSlot
{
	char dbname[NAMEDATALEN];
	BackgroundWorkerHandle *handle;
} SchedulerSlot;

static SchedulerSlot slots[MAX_SCHEDULERS];
static int nslots = 0;

void
prepaid_bgw_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags =
	    BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_prepaid");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "prepaid_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, PREPAID_LAUNCHER_TYPE);
	snprintf(worker.bgw_type, BGW_MAXLEN, PREPAID_LAUNCHER_TYPE);
	RegisterBackgroundWorker(&worker);
}

static bool
database_exists(const char *dbname)
{
	Relation rel;
	TableScanDesc scan;
	HeapTuple tup;
	bool found = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), dbname) == 0 && db->datallowconn)
		{
			found = true;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return found;
}

static void
start_scheduler(SchedulerSlot *slot)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags =
	    BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/*
	 * The launcher supervises its schedulers: it starts a stopped one again
	 * within pg_prepaid.scheduler_naptime, so the postmaster must not also
	 * restart it (that would make two). The launcher itself is registered
	 * with a restart time.
	 */
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pg_prepaid");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "prepaid_scheduler_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, PREPAID_SCHEDULER_TYPE " %s",
	         slot->dbname);
	snprintf(worker.bgw_type, BGW_MAXLEN, PREPAID_SCHEDULER_TYPE);
	strlcpy(worker.bgw_extra, slot->dbname, BGW_EXTRALEN);
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &slot->handle))
	{
		slot->handle = NULL;
		ereport(
		    WARNING,
		    (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
		     errmsg(
		         "pg_prepaid could not start a scheduler for database \"%s\"",
		         slot->dbname),
		     errhint("Raise max_worker_processes.")));
	}
	else
		ereport(LOG,
		        (errmsg("pg_prepaid scheduler for database \"%s\" started",
		                slot->dbname)));
}

/* Parse pg_prepaid.databases into slots, keeping handles of known names. */
static void
load_database_list(void)
{
	char *raw = pstrdup(prepaid_databases ? prepaid_databases : "");
	List *names = NIL;
	ListCell *lc;
	SchedulerSlot fresh[MAX_SCHEDULERS];
	int n = 0;

	if (!SplitIdentifierString(raw, ',', &names))
	{
		ereport(
		    WARNING,
		    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		     errmsg("pg_prepaid.databases is not a list of database names")));
		return;
	}
	foreach (lc, names)
	{
		char *name = (char *) lfirst(lc);

		if (n == MAX_SCHEDULERS)
			break;
		strlcpy(fresh[n].dbname, name, NAMEDATALEN);
		fresh[n].handle = NULL;
		for (int i = 0; i < nslots; i++)
			if (strcmp(slots[i].dbname, name) == 0)
			{
				fresh[n].handle = slots[i].handle;
				slots[i].handle = NULL;
			}
		n++;
	}
	/* schedulers of databases no longer listed are stopped */
	for (int i = 0; i < nslots; i++)
		if (slots[i].handle != NULL)
			TerminateBackgroundWorker(slots[i].handle);
	memcpy(slots, fresh, sizeof(SchedulerSlot) * n);
	nslots = n;
}

void
prepaid_launcher_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname(PREPAID_LAUNCHER_TYPE);
	load_database_list();

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			load_database_list();
		}
		for (int i = 0; i < nslots; i++)
		{
			pid_t pid;

			if (slots[i].handle != NULL &&
			    GetBackgroundWorkerPid(slots[i].handle, &pid) != BGWH_STOPPED)
				continue;
			if (database_exists(slots[i].dbname))
				start_scheduler(&slots[i]);
		}
		(void) WaitLatch(MyLatch,
		                 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
		                 prepaid_scheduler_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
