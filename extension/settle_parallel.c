/*
 * settle_parallel.c
 *	  prepaid.settle(workers => n): the settlement split into n partitions,
 *	  accounts by account_id / 64 modulo n, so two partitions never update the
 *	  same account, meter, command or alarm rows, nor (pg_prepaid.rollup_slot)
 *	  the same revenue row. Partitions 1..n-1 go to dynamic background
 *	  workers, each committing its own transaction (every meter's cursor,
 *	  entry and balance still move together); partition 0 is settled by the
 *	  calling backend meanwhile, in the caller's transaction, with its caches
 *	  and plans warm and one process fewer to start. Totals come back
 *	  through a dynamic shared memory segment.
 *
 *	  The caller waits for its workers outside the lock manager, so the
 *	  deadlock detector cannot see a cycle through that wait (a worker
 *	  waiting for a third session that waits for a row the caller settled,
 *	  or locked before calling). Workers therefore wait for a lock at most
 *	  WORKER_LOCK_TIMEOUT; one that gives up fails, its work is rolled back,
 *	  and the caller settles its partition itself, where any deadlock is an
 *	  ordinary one.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "settle.h"

#define WORKER_ERRMSG       512
#define WORKER_LOCK_TIMEOUT "5s"

typedef enum WorkerState
{
	WORKER_NOT_STARTED = 0,
	WORKER_DONE,
	WORKER_FAILED
} WorkerState;

/* One worker's slot in the shared segment. */
typedef struct WorkerSlot
{
	WorkerState state;
	SettleTotals tot;
	char errmsg[WORKER_ERRMSG];
} WorkerSlot;

typedef struct SettleShared
{
	Oid database;
	Oid user;
	SettleArgs args; /* part_k is the slot index */
	WorkerSlot slot[SETTLE_MAX_WORKERS];
} SettleShared;

/* What bgw_extra carries: which slot the worker owns. */
typedef struct WorkerExtra
{
	int k;
} WorkerExtra;

static void
add_totals(SettleTotals *sum, const SettleTotals *t)
{
	sum->meters += t->meters;
	sum->readings += t->readings;
	sum->entries += t->entries;
	sum->energy += t->energy;
	sum->fen += t->fen;
	sum->quarantined += t->quarantined;
}

static bool
start_worker(dsm_segment *seg, int k, BackgroundWorkerHandle **handle)
{
	BackgroundWorker w;
	WorkerExtra extra = {k};

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_ConsistentState;
	/* a one-shot task: the caller settles a partition whose worker died */
	w.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "pg_prepaid");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "prepaid_settle_worker_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "pg_prepaid settle worker %d", k);
	snprintf(w.bgw_type, BGW_MAXLEN, "pg_prepaid settle worker");
	w.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	memcpy(w.bgw_extra, &extra, sizeof(extra));
	w.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&w, handle);
}

/* Settles partition k of args->part_n here, in the current transaction. */
static void
settle_here(const SettleArgs *args, int k, SettleTotals *tot)
{
	SettleArgs mine = *args;

	mine.part_k = k;
	SPI_connect();
	settle_run(&mine, tot);
	SPI_finish();
}

void
settle_parallel(const SettleArgs *args, int workers, SettleTotals *tot)
{
	dsm_segment *seg = dsm_create(sizeof(SettleShared), 0);
	SettleShared *sh = dsm_segment_address(seg);
	BackgroundWorkerHandle *handle[SETTLE_MAX_WORKERS];
	bool started[SETTLE_MAX_WORKERS];
	int k;

	memset(sh, 0, sizeof(SettleShared));
	sh->database = MyDatabaseId;
	sh->user = GetUserId();
	sh->args = *args;
	sh->args.part_n = workers;
	if (args->max_meters != PG_INT64_MAX)
		sh->args.max_meters = (args->max_meters + workers - 1) / workers;

	for (k = 1; k < workers; k++)
		started[k] = start_worker(seg, k, &handle[k]);

	/* partition 0, while the workers settle theirs */
	settle_here(&sh->args, 0, tot);

	for (k = 1; k < workers; k++)
		if (started[k])
		{
			BgwHandleStatus st = WaitForBackgroundWorkerShutdown(handle[k]);

			if (st == BGWH_POSTMASTER_DIED)
				ereport(FATAL, (errcode(ERRCODE_ADMIN_SHUTDOWN),
				                errmsg("postmaster died during settlement")));
		}

	for (k = 1; k < workers; k++)
	{
		WorkerSlot *slot = &sh->slot[k];

		if (started[k] && slot->state == WORKER_DONE)
		{
			add_totals(tot, &slot->tot);
			continue;
		}
		if (started[k])
			ereport(WARNING,
			        (errmsg("settlement worker %d failed: %s", k,
			                slot->state == WORKER_FAILED ? slot->errmsg
			                                             : "it exited early"),
			         errdetail("Its partition is settled by this session "
			                   "instead.")));
		else
			ereport(NOTICE,
			        (errmsg("could not start settlement worker %d", k),
			         errdetail("Its partition is settled by this session."),
			         errhint("Raise max_worker_processes, or settle with "
			                 "fewer workers.")));
		settle_here(&sh->args, k, tot);
	}
	dsm_detach(seg);
}

void
prepaid_settle_worker_main(Datum arg)
{
	dsm_segment *seg;
	SettleShared *sh;
	WorkerExtra extra;
	WorkerSlot *slot;
	SettleArgs mine;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&extra, MyBgworkerEntry->bgw_extra, sizeof(extra));
	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("settlement worker could not attach to its "
		                       "shared memory")));
	sh = dsm_segment_address(seg);
	slot = &sh->slot[extra.k];
	mine = sh->args;
	mine.part_k = extra.k;

	BackgroundWorkerInitializeConnectionByOid(sh->database, sh->user, 0);
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);
	/* see the head of this file: no wait may outlast this */
	SetConfigOption("lock_timeout", WORKER_LOCK_TIMEOUT, PGC_USERSET,
	                PGC_S_SESSION);
	pgstat_report_appname("pg_prepaid settle worker");

	PG_TRY();
	{
		SettleTotals t = {0};

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "pg_prepaid: settling");
		settle_run(&mine, &t);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		slot->tot = t;
		slot->state = WORKER_DONE;
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		strlcpy(slot->errmsg, edata->message, WORKER_ERRMSG);
		slot->state = WORKER_FAILED;
		PG_RE_THROW();
	}
	PG_END_TRY();
	dsm_detach(seg);
	proc_exit(0);
}
