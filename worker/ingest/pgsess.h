/*
 * pgsess.h
 *	  One non-blocking libpq session in the daemon's epoll loop: connects
 *	  (and reconnects with capped exponential backoff and jitter), runs a
 *	  setup script after each connect (LISTEN, temporary tables), then runs
 *	  queued operations one at a time. An operation is a short sequence of
 *	  steps (queries; a step may be a COPY FROM STDIN fed from memory). If
 *	  the connection is lost, the running operation starts again from its
 *	  first step after the reconnect: operations must be idempotent (the
 *	  daemon's are). A failed step rolls back the open transaction and
 *	  reports the error; the queue goes on.
 */
#ifndef INGEST_PGSESS_H
#define INGEST_PGSESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

typedef struct pgsess pgsess;
typedef struct pgop pgop;

typedef enum pgop_outcome
{
	PGOP_OK,
	PGOP_ERROR
} pgop_outcome;

struct pgop
{
	/* Sends step n (0, 1, ...) with pgsess_send*; false: no such step, the
	 * operation is complete. */
	bool (*step)(pgsess *s, pgop *op, int n);
	/* Each tuple/command result of step n (may be NULL). */
	void (*result)(pgsess *s, pgop *op, int n, const PGresult *res);
	/* The data of a COPY FROM STDIN started by step n. */
	void (*copy_data)(pgop *op, const char **data, size_t *len);
	/* Called once when the operation ends (never on a lost connection). */
	void (*done)(pgsess *s, pgop *op, pgop_outcome outcome, const char *err);
	void *arg;
	/* private */
	pgop *next;
	int cur;
	bool queued;
	bool started;
	bool failed;
	bool copying;
	size_t copy_off;
	char err[256];
};

typedef enum pgsess_state
{
	PS_DOWN,
	PS_CONNECTING,
	PS_SETUP,
	PS_READY,
	PS_ROLLBACK
} pgsess_state;

struct pgsess
{
	evsrc ev;
	const char *name; /* for logs: "writer", "commands" */
	const char *setup_sql;
	void (*on_ready)(pgsess *s);
	void (*on_notify)(pgsess *s, const PGnotify *n);
	PGconn *conn;
	int fd;
	uint32_t events; /* registered epoll events */
	pgsess_state state;
	int backoff_ms;
	int64_t retry_at; /* CLOCK_MONOTONIC us, when PS_DOWN */
	pgop *head, *tail;
	bool was_ready;
	char last_error[256];
};

extern void pgsess_init(pgsess *s, const char *name, const char *setup_sql,
                        void (*on_ready)(pgsess *),
                        void (*on_notify)(pgsess *, const PGnotify *));
/* Starts connecting (at once). */
extern void pgsess_start(pgsess *s);
extern void pgsess_submit(pgsess *s, pgop *op);
extern bool pgsess_ready(const pgsess *s);
/* Nothing queued or running. */
extern bool pgsess_idle(const pgsess *s);
extern void pgsess_event(pgsess *s, uint32_t events);
/* Reconnects when due; returns the next instant it needs a call (or
 * INT64_MAX). */
extern int64_t pgsess_timer(pgsess *s, int64_t now);
extern void pgsess_close(pgsess *s);

/* For step functions: send a query (simple protocol, may hold several
 * statements) or one with text parameters. Return true. */
extern bool pgsess_send(pgsess *s, const char *sql);
extern bool pgsess_send_params(pgsess *s, const char *sql, int n,
                               const char *const *values);

/* The libpq connection string: --dsn, else the PG* environment. */
extern void pgsess_set_dsn(const char *dsn);
extern PGconn *pgsess_connect_blocking(void);

#endif /* INGEST_PGSESS_H */
