/*
 * reading_accept.c
 *	  The insert triggers of prepaid.reading: prepaid._reading_row() (AFTER
 *	  INSERT FOR EACH ROW, cloned to every partition) notes each inserted
 *	  row's key and place; prepaid._reading_accept() (AFTER INSERT FOR EACH
 *	  STATEMENT, on the table and on each partition) then accepts the
 *	  statement's rows.
 *
 * The common case -- each meter's rows of the statement all later than its
 * meter_latest reading, after its settlement cursor and not ahead of the
 * server clock -- is done here without SQL: the meters' meter_latest and
 * settle_cursor rows are found (meter_lookup.c), and each meter's
 * meter_latest row is updated in place to its newest reading (a HOT update
 * as a rule: the row's key never changes), meters in key order. The rollups
 * are not touched: an appended reading is later than the meter's rollup
 * cursor and waits for prepaid.rollup_catch_up() (91_rollups.sql).
 *
 * Every other meter (unknown, first reading, a row not after meter_latest's
 * or the settlement cursor, a clock ahead) goes with all its rows of the
 * statement to prepaid._reading_accept_rest(), the set-based SQL that
 * quarantines, keeps meter_latest and applies late rows to the rollups.
 *
 * Why row triggers and not a transition table: a transition table makes
 * COPY into a partitioned table insert row by row and copies every row once
 * more; the row trigger keeps 40 bytes per row and the newest row of each
 * meter is fetched back by its tid.
 *
 * Concurrency is the executor's: rows are found with the statement's
 * snapshot; a row updated by a transaction that committed since is re-read
 * in its newest version and locked (READ COMMITTED), or raises a
 * serialization failure (REPEATABLE READ and above), as an UPDATE would.
 * Meters are taken in key order, as every statement that updates many
 * meter_latest rows does, so two batches queue instead of deadlocking.
 * Permissions: these writes are the triggers' own maintenance, done for any
 * role allowed to insert readings (as the SECURITY DEFINER SQL triggers
 * before them did).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "meter_lookup.h"
#include "pg_prepaid.h"

PG_FUNCTION_INFO_V1(prepaid_reading_row);
PG_FUNCTION_INFO_V1(prepaid_reading_accept);

/* One inserted row, as the row trigger saw it. */
typedef struct RowKey
{
	int64 property_id;
	int64 meter_id;
	TimestampTz read_at;
	Oid relid;              /* the partition it went to */
	ItemPointerData tid;    /* and where */
	SubTransactionId subid; /* the subtransaction that inserted it */
} RowKey;

/*
 * The rows inserted since the last statement trigger ran, in this
 * transaction (memory: a child of TopTransactionContext).
 */
static MemoryContext pending_cxt = NULL;
static RowKey *pending = NULL;
static int pending_n = 0;
static int pending_cap = 0;
static bool callbacks_registered = false;

/* Attribute numbers of the key in the last partition seen. */
static Oid key_relid = InvalidOid;
static TupleDesc key_desc = NULL;
static AttrNumber key_att[3];

/* meter_latest's columns (but the key) and where a reading has them. */
#define MAX_COPIED 32
typedef struct ColumnMap
{
	int n;
	AttrNumber from[MAX_COPIED]; /* in the partition's tuple descriptor */
	AttrNumber to[MAX_COPIED];   /* in meter_latest's */
} ColumnMap;

/* The partitions the statement's rows went to, open for fetching rows. */
#define MAX_PARTS 16
typedef struct Parts
{
	int n;
	Oid relid[MAX_PARTS];
	Relation rel[MAX_PARTS];
	TupleTableSlot *slot[MAX_PARTS];
	ColumnMap map[MAX_PARTS];
} Parts;

static int
rowkey_cmp(const void *a, const void *b)
{
	const RowKey *x = a, *y = b;

	if (x->property_id != y->property_id)
		return x->property_id < y->property_id ? -1 : 1;
	if (x->meter_id != y->meter_id)
		return x->meter_id < y->meter_id ? -1 : 1;
	if (x->read_at != y->read_at)
		return x->read_at < y->read_at ? -1 : 1;
	return 0;
}

static AttrNumber
attnum_of(TupleDesc desc, const char *name, bool missing_ok)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0)
			return a->attnum;
	}
	if (!missing_ok)
		elog(ERROR, "column \"%s\" not found", name);
	return InvalidAttrNumber;
}

/* ---- the rows between the row trigger and the statement trigger ---- */

/* The cached attribute numbers still name the key columns. */
static bool
key_valid(TupleDesc desc)
{
	static const char *const names[3] = {"property_id", "meter_id", "read_at"};

	for (int i = 0; i < 3; i++)
	{
		Form_pg_attribute a;

		if (key_att[i] < 1 || key_att[i] > desc->natts)
			return false;
		a = TupleDescAttr(desc, key_att[i] - 1);
		if (a->attisdropped || strcmp(NameStr(a->attname), names[i]) != 0)
			return false;
	}
	return true;
}

static void
pending_reset(void)
{
	pending_cxt = NULL;
	pending = NULL;
	pending_n = pending_cap = 0;
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (pending_n > 0)
				ereport(ERROR,
				        (errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				         errmsg("%d inserted readings were not accepted",
				                pending_n),
				         errdetail("They were inserted into a partition of "
				                   "prepaid.reading that has no "
				                   "reading_accept statement trigger."),
				         errhint("Create partitions with "
				                 "prepaid.ensure_partitions().")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending_reset(); /* the memory goes with TopTransactionContext */
			break;
		default:
			break;
	}
}

/*
 * Rows inserted by an aborted subtransaction are forgotten: they were
 * appended after every row of its parent, with subtransaction ids at least
 * its own.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
                 SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	while (pending_n > 0 && pending[pending_n - 1].subid >= mySubid)
		pending_n--;
}

/*
 * prepaid._reading_row(): notes the inserted row's key and place for the
 * statement trigger that follows.
 */
Datum
prepaid_reading_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleTableSlot *slot;
	RowKey *k;
	bool isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
	    !TRIGGER_FIRED_BY_INSERT(td->tg_event) ||
	    !TRIGGER_FIRED_AFTER(td->tg_event))
		elog(ERROR, "prepaid._reading_row must be an AFTER INSERT row "
		            "trigger");
	slot = td->tg_trigslot;
	if (RelationGetRelid(td->tg_relation) != key_relid ||
	    RelationGetDescr(td->tg_relation) != key_desc || !key_valid(key_desc))
	{
		TupleDesc desc = RelationGetDescr(td->tg_relation);

		key_att[0] = attnum_of(desc, "property_id", false);
		key_att[1] = attnum_of(desc, "meter_id", false);
		key_att[2] = attnum_of(desc, "read_at", false);
		key_relid = RelationGetRelid(td->tg_relation);
		key_desc = desc;
	}
	if (pending_cxt == NULL)
	{
		if (!callbacks_registered)
		{
			RegisterXactCallback(xact_callback, NULL);
			RegisterSubXactCallback(subxact_callback, NULL);
			callbacks_registered = true;
		}
		pending_cxt = AllocSetContextCreate(
		    TopTransactionContext, "pending readings", ALLOCSET_DEFAULT_SIZES);
		pending_cap = 1024;
		pending =
		    MemoryContextAlloc(pending_cxt, sizeof(RowKey) * pending_cap);
	}
	if (pending_n == pending_cap)
	{
		pending_cap *= 2;
		pending = repalloc_huge(pending, sizeof(RowKey) * pending_cap);
	}
	k = &pending[pending_n++];
	k->property_id = DatumGetInt64(slot_getattr(slot, key_att[0], &isnull));
	k->meter_id = DatumGetInt64(slot_getattr(slot, key_att[1], &isnull));
	k->read_at = DatumGetTimestampTz(slot_getattr(slot, key_att[2], &isnull));
	k->relid = RelationGetRelid(td->tg_relation);
	k->tid = slot->tts_tid;
	k->subid = GetCurrentSubTransactionId();
	return PointerGetDatum(NULL);
}

/* ---- the statement trigger ---- */

static Relation
open_prepaid(const char *name, LOCKMODE mode)
{
	Oid relid = get_relname_relid(name, get_namespace_oid("prepaid", false));

	if (!OidIsValid(relid))
		elog(ERROR, "relation prepaid.%s does not exist", name);
	return table_open(relid, mode);
}

/*
 * Where a reading has each of meter_latest's columns; meter_latest has no
 * column of its own but the key, so a row is built from a reading alone.
 */
static void
column_map(TupleDesc reading, TupleDesc latest, ColumnMap *map)
{
	map->n = 0;
	for (int i = 0; i < latest->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(latest, i);
		const char *name = NameStr(a->attname);

		if (a->attisdropped)
			continue;
		if (map->n == MAX_COPIED)
			elog(ERROR, "meter_latest has too many columns");
		map->from[map->n] = attnum_of(reading, name, false);
		map->to[map->n] = a->attnum;
		map->n++;
	}
}

/* Fetches an inserted row into its partition's slot. */
static TupleTableSlot *
parts_fetch(Parts *parts, const RowKey *k, TupleDesc latest,
            const ColumnMap **map)
{
	int i;

	for (i = 0; i < parts->n; i++)
		if (parts->relid[i] == k->relid)
			break;
	if (i == parts->n)
	{
		if (i == MAX_PARTS)
		{
			/* a statement over many months: reuse the last place */
			i = MAX_PARTS - 1;
			ExecDropSingleTupleTableSlot(parts->slot[i]);
			table_close(parts->rel[i], NoLock);
		}
		else
			parts->n++;
		parts->relid[i] = k->relid;
		parts->rel[i] = table_open(k->relid, AccessShareLock);
		parts->slot[i] = table_slot_create(parts->rel[i], NULL);
		column_map(RelationGetDescr(parts->rel[i]), latest, &parts->map[i]);
	}
	/* NULL when the row is gone already (deleted by a later trigger) */
	if (!table_tuple_fetch_row_version(parts->rel[i], (ItemPointer) &k->tid,
	                                   SnapshotSelf, parts->slot[i]))
		return NULL;
	*map = &parts->map[i];
	return parts->slot[i];
}

static void
parts_close(Parts *parts)
{
	for (int i = 0; i < parts->n; i++)
	{
		ExecDropSingleTupleTableSlot(parts->slot[i]);
		table_close(parts->rel[i], NoLock);
	}
	parts->n = 0;
}

/* What the statement trigger keeps open on meter_latest. */
typedef struct Latest
{
	Relation rel;
	ResultRelInfo *rri;
	EState *estate;
	TupleTableSlot *out;    /* the new row */
	TupleTableSlot *locked; /* a newer version, locked */
	AttrNumber read_at;
} Latest;

/*
 * Moves the meter's meter_latest row (version tid) to the reading in
 * newest. Returns false when its newest version (after a concurrent update
 * committed) is no longer before first_at, the meter's earliest reading of
 * the statement, or is gone: the meter then takes the SQL path.
 */
static bool
latest_update(Latest *l, ItemPointerData tid, TupleTableSlot *newest,
              const ColumnMap *map, TimestampTz first_at)
{
	CommandId cid = GetCurrentCommandId(true);

	slot_getallattrs(newest);
	ExecClearTuple(l->out);
	memset(l->out->tts_isnull, true,
	       sizeof(bool) * l->out->tts_tupleDescriptor->natts);
	for (int i = 0; i < map->n; i++)
	{
		l->out->tts_values[map->to[i] - 1] =
		    newest->tts_values[map->from[i] - 1];
		l->out->tts_isnull[map->to[i] - 1] =
		    newest->tts_isnull[map->from[i] - 1];
	}
	ExecStoreVirtualTuple(l->out);

	for (;;)
	{
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		bool update_indexes;
		bool isnull;
		TM_Result res;
		Datum at;

		res = table_tuple_update(l->rel, &tid, l->out, cid,
		                         GetActiveSnapshot(), InvalidSnapshot, true,
		                         &tmfd, &lockmode, &update_indexes);
		if (res == TM_Ok)
		{
			if (update_indexes)
				ExecInsertIndexTuples(l->rri, l->out, l->estate, false, false,
				                      NULL, NIL);
			return true;
		}
		if (res == TM_Deleted)
			return false;
		if (res != TM_Updated)
			elog(ERROR, "unexpected result %d updating meter_latest", res);
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
			        (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			         errmsg("could not serialize access due to concurrent "
			                "update")));
		/* READ COMMITTED: lock the newest version and look again */
		res = table_tuple_lock(l->rel, &tid, GetActiveSnapshot(), l->locked,
		                       cid, LockTupleNoKeyExclusive, LockWaitBlock,
		                       TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
		if (res != TM_Ok)
			return false;
		at = slot_getattr(l->locked, l->read_at, &isnull);
		if (isnull || DatumGetTimestampTz(at) >= first_at)
			return false;
		tid = l->locked->tts_tid;
	}
}

/*
 * Hands the rows of the meters that take the SQL path to
 * prepaid._reading_accept_rest(property_ids, meter_ids, read_ats).
 */
static void
accept_rest(int n, Datum *p, Datum *m, Datum *t)
{
	Oid types[3] = {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum args[3];

	args[0] = PointerGetDatum(
	    construct_array(p, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(
	    construct_array(m, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(
	    t, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(
	        "SELECT prepaid._reading_accept_rest($1, $2, $3)", 3, types, args,
	        NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "prepaid._reading_accept_rest failed");
	SPI_finish();
}

/*
 * prepaid._reading_accept(): accepts the rows the row trigger noted (see
 * the header).
 */
Datum
prepaid_reading_accept(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	MemoryContext work, old;
	RowKey *keys;
	int nrows, nrest = 0, ngroups = 0;
	bool sorted = true;
	TimestampTz horizon;
	int32 *start;
	int64 *gp, *gm;
	MeterRow *cursor_row, *latest_row;
	Datum *rp, *rm, *rt;
	Relation cursor_rel;
	Latest l;
	Parts parts;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
	    !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
	    !TRIGGER_FIRED_BY_INSERT(td->tg_event))
		elog(ERROR, "prepaid._reading_accept must be an AFTER INSERT "
		            "statement trigger");
	if (pending_n == 0)
		return PointerGetDatum(NULL);
	horizon = GetCurrentTransactionStartTimestamp() +
	          (int64) prepaid_max_clock_skew * USECS_PER_SEC;

	work = AllocSetContextCreate(CurrentMemoryContext, "reading accept",
	                             ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	/* 1. the rows, taken from the pending list, in (meter, read_at) order */
	nrows = pending_n;
	keys = palloc_extended(sizeof(RowKey) * nrows, MCXT_ALLOC_HUGE);
	memcpy(keys, pending, sizeof(RowKey) * nrows);
	MemoryContextDelete(pending_cxt);
	pending_reset();
	for (int i = 1; i < nrows && sorted; i++)
		sorted = rowkey_cmp(&keys[i - 1], &keys[i]) <= 0;
	if (!sorted)
		qsort(keys, nrows, sizeof(RowKey), rowkey_cmp);

	/* 2. the meters (groups of rows), their cursor and meter_latest rows */
	start = palloc(sizeof(int32) * (nrows + 1));
	gp = palloc(sizeof(int64) * nrows);
	gm = palloc(sizeof(int64) * nrows);
	for (int i = 0; i < nrows; i++)
		if (i == 0 || keys[i].property_id != keys[i - 1].property_id ||
		    keys[i].meter_id != keys[i - 1].meter_id)
		{
			gp[ngroups] = keys[i].property_id;
			gm[ngroups] = keys[i].meter_id;
			start[ngroups++] = i;
		}
	start[ngroups] = nrows;
	cursor_row = palloc(sizeof(MeterRow) * ngroups);
	latest_row = palloc(sizeof(MeterRow) * ngroups);
	cursor_rel = open_prepaid("settle_cursor", AccessShareLock);
	meter_lookup(cursor_rel, GetActiveSnapshot(),
	             attnum_of(RelationGetDescr(cursor_rel), "read_at", false),
	             ngroups, gp, gm, cursor_row);
	table_close(cursor_rel, NoLock);
	l.rel = open_prepaid("meter_latest", RowExclusiveLock);
	l.read_at = attnum_of(RelationGetDescr(l.rel), "read_at", false);
	meter_lookup(l.rel, GetActiveSnapshot(), l.read_at, ngroups, gp, gm,
	             latest_row);

	/* 3. per meter in key order: the fast path, or the SQL path */
	l.estate = CreateExecutorState();
	l.rri = makeNode(ResultRelInfo);
	InitResultRelInfo(l.rri, l.rel, 1, NULL, 0);
	ExecOpenIndices(l.rri, false);
	l.out = table_slot_create(l.rel, NULL);
	l.locked = table_slot_create(l.rel, NULL);
	parts.n = 0;
	rp = palloc(sizeof(Datum) * nrows);
	rm = palloc(sizeof(Datum) * nrows);
	rt = palloc(sizeof(Datum) * nrows);
	for (int g = 0; g < ngroups; g++)
	{
		RowKey *first = &keys[start[g]];
		RowKey *last = &keys[start[g + 1] - 1];
		MeterRow *c = &cursor_row[g];
		MeterRow *lr = &latest_row[g];
		bool fast;

		CHECK_FOR_INTERRUPTS();
		fast = last->read_at <= horizon &&
		       (!c->found || c->at_null || c->at < first->read_at) &&
		       lr->found && !lr->at_null && lr->at < first->read_at;
		if (fast)
		{
			const ColumnMap *map;
			TupleTableSlot *newest =
			    parts_fetch(&parts, last, RelationGetDescr(l.rel), &map);

			fast = newest != NULL &&
			       latest_update(&l, lr->tid, newest, map, first->read_at);
		}
		if (!fast)
			for (int i = start[g]; i < start[g + 1]; i++)
			{
				rp[nrest] = Int64GetDatum(keys[i].property_id);
				rm[nrest] = Int64GetDatum(keys[i].meter_id);
				rt[nrest] = TimestampTzGetDatum(keys[i].read_at);
				nrest++;
			}
	}
	parts_close(&parts);
	ExecDropSingleTupleTableSlot(l.out);
	ExecDropSingleTupleTableSlot(l.locked);
	ExecCloseIndices(l.rri);
	FreeExecutorState(l.estate);
	table_close(l.rel, NoLock);

	/* 4. the rest, set-based in SQL */
	if (nrest > 0)
		accept_rest(nrest, rp, rm, rt);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return PointerGetDatum(NULL);
}
