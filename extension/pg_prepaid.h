/*
 * pg_prepaid.h
 *	  Settings shared by the extension's modules.
 */
#ifndef PG_PREPAID_H
#define PG_PREPAID_H

extern int prepaid_max_clock_skew;
extern int prepaid_settle_batch;
extern int prepaid_settle_workers;
extern int prepaid_rollup_slot;
extern int prepaid_settle_interval;

#endif /* PG_PREPAID_H */
