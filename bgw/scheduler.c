/*
 * scheduler.c
 *	  The per-database job scheduler. Jobs are rows of prepaid.job (name, SQL
 *	  command, interval, enabled, next run, last run, duration, status,
 *	  error). The most overdue enabled job runs first, each in its own
 *	  transaction; a failing job records its error and the scheduler carries
 *	  on. Between jobs the worker sleeps on its latch until the next job is
 *	  due (prepaid.job_run_now() wakes it at commit). It waits quietly while
 *	  the extension is not installed in its database.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bgw.h"
#include "pg_prepaid.h"

PG_FUNCTION_INFO_V1(prepaid_scheduler_wake);

#define MAX_JOBS_PER_ROUND 16

static MemoryContext sched_cxt = NULL;

/* Begin/end a transaction with SPI and a snapshot, as worker_spi does. */
static void
job_xact_begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
job_xact_end(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Looks for the most overdue job. Returns true and fills name/command when
 * one is due; otherwise sets *wait_ms to the time until the next one.
 */
static bool
next_due_job_xact(char **name, char **command, long *wait_ms)
{
	bool due = false;
	int rc;

	job_xact_begin("pg_prepaid: looking for due jobs");
	rc = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension e "
	                 "WHERE e.extname = 'pg_prepaid' "
	                 "AND pg_catalog.to_regclass('prepaid.job') IS NOT NULL",
	                 true, 1);
	if (rc == SPI_OK_SELECT && SPI_processed == 1)
	{
		/* keep the settle job's interval in step with its GUC */
		Datum arg = Int32GetDatum(prepaid_settle_interval);
		Oid argtype = INT4OID;

		SPI_execute_with_args("UPDATE prepaid.job SET schedule_interval = "
		                      "make_interval(secs => $1) WHERE job_name = "
		                      "'settle' AND schedule_interval <> "
		                      "make_interval(secs => $1)",
		                      1, &argtype, &arg, NULL, false, 0);
		rc = SPI_execute("SELECT job_name, command, greatest(0, ceil(extract("
		                 "epoch FROM next_run - clock_timestamp()) * 1000))"
		                 "::int8 FROM prepaid.job WHERE enabled "
		                 "ORDER BY next_run, job_name LIMIT 1",
		                 false, 1);
		if (rc == SPI_OK_SELECT && SPI_processed == 1)
		{
			bool isnull;
			int64 ms = DatumGetInt64(SPI_getbinval(
			    SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));

			if (ms == 0)
			{
				MemoryContext old = MemoryContextSwitchTo(sched_cxt);

				*name = SPI_getvalue(SPI_tuptable->vals[0],
				                     SPI_tuptable->tupdesc, 1);
				*command = SPI_getvalue(SPI_tuptable->vals[0],
				                        SPI_tuptable->tupdesc, 2);
				MemoryContextSwitchTo(old);
				due = true;
			}
			else if (ms < *wait_ms)
				*wait_ms = (long) ms;
		}
	}
	job_xact_end();
	return due;
}

/*
 * Looks for the most overdue job. Returns true and fills name/command when
 * one is due; otherwise sets *wait_ms to the time until the next one. An
 * error here (extension dropped meanwhile, say) is logged and waited out.
 */
static bool
next_due_job(char **name, char **command, long *wait_ms)
{
	volatile bool due = false;

	*wait_ms = prepaid_scheduler_naptime * 1000L;
	PG_TRY();
	{
		due = next_due_job_xact(name, command, wait_ms);
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(sched_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		ereport(LOG,
		        (errmsg("pg_prepaid scheduler could not read its jobs: %s",
		                edata->message)));
		FreeErrorData(edata);
		*wait_ms = prepaid_scheduler_naptime * 1000L;
		due = false;
	}
	PG_END_TRY();
	return due;
}

static void
record_result(const char *name, TimestampTz started, const char *error)
{
	Oid types[3] = {TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum args[3];
	char nulls[3] = {' ', ' ', error ? ' ' : 'n'};

	args[0] = CStringGetTextDatum(name);
	args[1] = TimestampTzGetDatum(started);
	args[2] = error ? CStringGetTextDatum(error) : (Datum) 0;
	SPI_execute_with_args(
	    "UPDATE prepaid.job SET last_start = $2, last_finish = "
	    "clock_timestamp(), "
	    " last_duration = clock_timestamp() - $2, "
	    " last_status = CASE WHEN $3 IS NULL THEN 'success' ELSE 'failed' "
	    "END, "
	    " last_error = $3, run_count = run_count + 1, "
	    " fail_count = fail_count + CASE WHEN $3 IS NULL THEN 0 ELSE 1 END, "
	    " next_run = clock_timestamp() + schedule_interval "
	    "WHERE job_name = $1",
	    3, types, args, nulls, false, 0);
}

/*
 * Runs one job in its own transaction; an error is recorded, not raised.
 * "internal:forward_send" is the HTTP forwarder, which manages its own
 * transactions so that none is open across a network call.
 */
static void
run_job(const char *name, const char *command)
{
	TimestampTz started = GetCurrentTimestamp();
	char activity[256];

	snprintf(activity, sizeof(activity), "pg_prepaid job %s: %s", name,
	         command);
	PG_TRY();
	{
		if (strcmp(command, "internal:forward_send") == 0)
		{
			/* idempotent per outbox row; records its run afterwards */
			(void) prepaid_forward_send(sched_cxt);
			job_xact_begin("pg_prepaid: recording a job run");
		}
		else
		{
			job_xact_begin(activity);
			if (SPI_execute(command, false, 0) < 0)
				elog(ERROR, "job command failed");
		}
		/*
		 * A job's work and its run record commit together: a scheduler
		 * killed at any point either ran the job and moved next_run, or
		 * did neither, so no run is lost or repeated.
		 */
		record_result(name, started, NULL);
		job_xact_end();
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(sched_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG, (errmsg("pg_prepaid job \"%s\" failed: %s", name,
		                     edata->message)));
		job_xact_begin("pg_prepaid: recording a job failure");
		record_result(name, started, edata->message);
		job_xact_end();
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

void
prepaid_scheduler_main(Datum arg)
{
	char dbname[NAMEDATALEN];

	strlcpy(dbname, MyBgworkerEntry->bgw_extra, NAMEDATALEN);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	pgstat_report_appname(PREPAID_SCHEDULER_TYPE);
	/*
	 * The scheduler lives for weeks: a job statement's plan must follow its
	 * tables as they grow, not stay the generic plan made after five runs on
	 * a young park (the settle fetch then scanned whole partitions).
	 */
	SetConfigOption("plan_cache_mode", "force_custom_plan", PGC_USERSET,
	                PGC_S_SESSION);
	sched_cxt = AllocSetContextCreate(TopMemoryContext, "pg_prepaid scheduler",
	                                  ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		long wait_ms = 0;
		int ran = 0;
		char *name;
		char *command;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		while (ran < MAX_JOBS_PER_ROUND &&
		       next_due_job(&name, &command, &wait_ms))
		{
			run_job(name, command);
			MemoryContextReset(sched_cxt);
			ran++;
			CHECK_FOR_INTERRUPTS();
		}
		if (ran == MAX_JOBS_PER_ROUND)
			wait_ms = 0;
		(void) WaitLatch(MyLatch,
		                 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
		                 Max(wait_ms, 0), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- waking the scheduler from SQL -------------------------------------- */

static int wake_pid = 0;
static bool wake_callback_registered = false;

static void
wake_at_commit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_pid != 0)
	{
		PGPROC *proc = BackendPidGetProc(wake_pid);

		if (proc != NULL)
			SetLatch(&proc->procLatch);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
		wake_pid = 0;
}

/*
 * prepaid._scheduler_wake(pid): set the latch of this database's scheduler
 * (pid found by the SQL wrapper in pg_stat_activity) when the calling
 * transaction commits, so it sees what the transaction changed.
 */
Datum
prepaid_scheduler_wake(PG_FUNCTION_ARGS)
{
	int pid = PG_GETARG_INT32(0);
	PGPROC *proc = BackendPidGetProc(pid);

	if (proc == NULL || proc->databaseId != MyDatabaseId)
		PG_RETURN_BOOL(false);
	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_at_commit, NULL);
		wake_callback_registered = true;
	}
	wake_pid = pid;
	PG_RETURN_BOOL(true);
}
