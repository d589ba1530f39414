/*
 * meter_lookup.h
 *	  Finding the rows of a per-meter table (primary key (property_id,
 *	  meter_id)) for a sorted list of meters, by index probes or, for a list
 *	  that covers a good part of the table, by one sequential scan.
 */
#ifndef METER_LOOKUP_H
#define METER_LOOKUP_H

#include "access/attnum.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

/* What was found of one meter's row. */
typedef struct MeterRow
{
	bool found;
	bool at_null;        /* the timestamp column is NULL */
	TimestampTz at;      /* the value of the timestamp column asked for */
	ItemPointerData tid; /* the row version seen */
} MeterRow;

/*
 * For the n meters (p[i], m[i]), sorted and distinct, fills rows[i] from
 * heap's row of each meter visible to snapshot; at_col is a timestamptz
 * column to read.
 */
extern void meter_lookup(Relation heap, Snapshot snapshot, AttrNumber at_col,
                         int n, const int64 *p, const int64 *m,
                         MeterRow *rows);

#endif /* METER_LOOKUP_H */
