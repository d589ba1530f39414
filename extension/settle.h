/*
 * settle.h
 *	  Settlement: the batch loop (settle.c) and its parallel coordinator
 *	  (settle_parallel.c), shared by prepaid.settle() and its workers.
 */
#ifndef PREPAID_SETTLE_H
#define PREPAID_SETTLE_H

#include "postgres.h"

#define SETTLE_MAX_WORKERS 16

/* What one settlement loop does: at most max_meters, in batches, from
 * partition part_k of part_n (accounts by account_id / 64 modulo part_n). */
typedef struct SettleArgs
{
	int64 max_meters;
	int batch_size;
	int64 part_n;
	int64 part_k;
} SettleArgs;

/* What it did. */
typedef struct SettleTotals
{
	int64 meters;
	int64 readings;
	int64 entries;
	int64 energy; /* 1e-6 kWh */
	int64 fen;
	int64 quarantined;
} SettleTotals;

/* The loop, in the current transaction; the caller has SPI connected. */
extern void settle_run(const SettleArgs *args, SettleTotals *tot);

/*
 * Settles in `workers` partitions: partition 0 here, in the caller's
 * transaction, the others at the same time in dynamic background workers,
 * each committing its own transaction. A partition whose worker could not
 * be started, or failed, is settled here afterwards. Adds everything to
 * *tot.
 */
extern void settle_parallel(const SettleArgs *args, int workers,
                            SettleTotals *tot);

extern PGDLLEXPORT void prepaid_settle_worker_main(Datum arg);

#endif /* PREPAID_SETTLE_H */
