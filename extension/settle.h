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
 * partition part_k of part_n (accounts by account_id modulo part_n). */
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
 * Settles with `workers` dynamic background workers, one partition each,
 * each committing its own transaction, while this backend only waits
 * (holding no locks, so no wait of a worker can ever depend on it). A
 * partition whose worker could not be started is settled here afterwards,
 * in the caller's transaction. Adds everything to *tot.
 */
extern void settle_parallel(const SettleArgs *args, int workers,
                            SettleTotals *tot);

extern PGDLLEXPORT void prepaid_settle_worker_main(Datum arg);

#endif /* PREPAID_SETTLE_H */
