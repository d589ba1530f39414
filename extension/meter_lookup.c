/*
 * meter_lookup.c
 *	  One row per meter of a table keyed by (property_id, meter_id), for a
 *	  sorted list of meters (see meter_lookup.h).
 *
 * A few meters are probed through the primary key. When the list covers a
 * good part of a large table (a batch of readings from the whole fleet) the
 * table is read once sequentially and each row is matched against a hash of
 * the list, as a hash join would: an index descent costs several times what
 * a row of a sequential scan does.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "meter_lookup.h"

/*
 * A sequential scan when the list has more than 1/SCAN_RATIO of the rows
 * (as the planner estimates them) and at least SCAN_MIN meters.
 */
#define SCAN_RATIO 6
#define SCAN_MIN   1000

typedef struct MeterKey
{
	int64 p;
	int64 m;
} MeterKey;

typedef struct MeterEntry
{
	MeterKey key;
	int32 i;
	char status;
} MeterEntry;

static inline uint32
meter_hash(MeterKey k)
{
	return hash_combine(murmurhash32((uint32) k.p ^ (uint32) (k.p >> 32)),
	                    murmurhash32((uint32) k.m ^ (uint32) (k.m >> 32)));
}

#define SH_PREFIX          meterhash
#define SH_ELEMENT_TYPE    MeterEntry
#define SH_KEY_TYPE        MeterKey
#define SH_KEY             key
#define SH_HASH_KEY(tb, k) meter_hash(k)
#define SH_EQUAL(tb, a, b) ((a).p == (b).p && (a).m == (b).m)
#define SH_SCOPE           static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static void
take_row(TupleTableSlot *slot, AttrNumber at_col, MeterRow *row)
{
	Datum d = slot_getattr(slot, at_col, &row->at_null);

	row->found = true;
	row->at = row->at_null ? 0 : DatumGetTimestampTz(d);
	row->tid = slot->tts_tid;
}

/* The primary key (property_id, meter_id) of a per-meter table. */
static Relation
key_index(Relation heap)
{
	Oid pk = RelationGetPrimaryKeyIndex(heap);
	Relation index;

	if (!OidIsValid(pk))
		elog(ERROR, "relation \"%s\" has no primary key",
		     RelationGetRelationName(heap));
	index = index_open(pk, AccessShareLock);
	if (IndexRelationGetNumberOfKeyAttributes(index) != 2 ||
	    TupleDescAttr(RelationGetDescr(index), 0)->atttypid != INT8OID ||
	    TupleDescAttr(RelationGetDescr(index), 1)->atttypid != INT8OID)
		elog(ERROR, "relation \"%s\" is not keyed by meter",
		     RelationGetRelationName(heap));
	return index;
}

static void
lookup_probe(Relation heap, Relation index, Snapshot snapshot,
             AttrNumber at_col, int n, const int64 *p, const int64 *m,
             MeterRow *rows)
{
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData key[2];

	scan = index_beginscan(heap, index, snapshot, 2, 0);
	slot = table_slot_create(heap, NULL);
	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ, 0);
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_INT8EQ, 0);
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		key[0].sk_argument = Int64GetDatum(p[i]);
		key[1].sk_argument = Int64GetDatum(m[i]);
		index_rescan(scan, key, 2, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
			take_row(slot, at_col, &rows[i]);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
}

static void
lookup_scan(Relation heap, Relation index, Snapshot snapshot,
            AttrNumber at_col, int n, const int64 *p, const int64 *m,
            MeterRow *rows)
{
	AttrNumber pcol = index->rd_index->indkey.values[0];
	AttrNumber mcol = index->rd_index->indkey.values[1];
	meterhash_hash *hash = meterhash_create(CurrentMemoryContext, n, NULL);
	TableScanDesc scan;
	TupleTableSlot *slot;
	for (int i = 0; i < n; i++)
	{
		MeterKey k = {p[i], m[i]};
		bool found;

		meterhash_insert(hash, k, &found)->i = i;
	}
	slot = table_slot_create(heap, NULL);
	scan = table_beginscan(heap, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		MeterKey k;
		MeterEntry *e;
		bool isnull;

		CHECK_FOR_INTERRUPTS();
		k.p = DatumGetInt64(slot_getattr(slot, pcol, &isnull));
		k.m = DatumGetInt64(slot_getattr(slot, mcol, &isnull));
		e = meterhash_lookup(hash, k);
		if (e != NULL)
			take_row(slot, at_col, &rows[e->i]);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	meterhash_destroy(hash);
}

void
meter_lookup(Relation heap, Snapshot snapshot, AttrNumber at_col, int n,
             const int64 *p, const int64 *m, MeterRow *rows)
{
	double tuples = heap->rd_rel->reltuples;
	Relation index;

	memset(rows, 0, sizeof(MeterRow) * n);
	if (n == 0)
		return;
	index = key_index(heap);
	if (n >= SCAN_MIN && tuples > 0 && (double) n * SCAN_RATIO > tuples)
		lookup_scan(heap, index, snapshot, at_col, n, p, m, rows);
	else
		lookup_probe(heap, index, snapshot, at_col, n, p, m, rows);
	index_close(index, NoLock);
}
