/*
 * bgw.h
 *	  pg_prepaid's background workers: a launcher (one, static) that starts a
 *	  job scheduler (dynamic) in each database named by
 *	  pg_prepaid.databases, and the scheduler that runs prepaid.job rows.
 */
#ifndef PREPAID_BGW_H
#define PREPAID_BGW_H

#include "postgres.h"

#define PREPAID_SCHEDULER_TYPE "pg_prepaid scheduler"
#define PREPAID_LAUNCHER_TYPE  "pg_prepaid launcher"

extern char *prepaid_databases;
extern int prepaid_scheduler_naptime;

extern char *prepaid_forward_url;
extern char *prepaid_forward_secret;
extern int prepaid_forward_connect_timeout_ms;
extern int prepaid_forward_timeout_ms;

/* One round of the forward_send job; manages its own transactions. */
extern int prepaid_forward_send(MemoryContext cxt);

/* Called from _PG_init while shared_preload_libraries is processed. */
extern void prepaid_bgw_register(void);

/* Worker entry points (looked up by name by the postmaster). */
extern PGDLLEXPORT void prepaid_launcher_main(Datum arg);
extern PGDLLEXPORT void prepaid_scheduler_main(Datum arg);

#endif /* PREPAID_BGW_H */
