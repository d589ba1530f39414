/*
 * pgsess.c
 *	  A non-blocking libpq session driven by the epoll loop (see pgsess.h).
 */
#include "pgsess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define COPY_CHUNK     65536

static const char *session_dsn;

void
pgsess_set_dsn(const char *dsn)
{
	session_dsn = dsn;
}

static PGconn *
start_connect(bool blocking)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {session_dsn ? session_dsn : "", "prepaid-ingest",
	                      NULL};

	/* dbname "" expands to nothing: the PG* environment applies */
	if (blocking)
		return PQconnectdbParams(keys, vals, session_dsn ? 1 : 0);
	return PQconnectStartParams(keys, vals, session_dsn ? 1 : 0);
}

PGconn *
pgsess_connect_blocking(void)
{
	return start_connect(true);
}

void
pgsess_init(pgsess *s, const char *name, const char *setup_sql,
            void (*on_ready)(pgsess *),
            void (*on_notify)(pgsess *, const PGnotify *))
{
	memset(s, 0, sizeof(*s));
	s->ev.kind = EV_PG;
	s->name = name;
	s->setup_sql = setup_sql;
	s->on_ready = on_ready;
	s->on_notify = on_notify;
	s->fd = -1;
	s->state = PS_DOWN;
	s->backoff_ms = BACKOFF_MIN_MS;
}

static void
set_events(pgsess *s, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = &s->ev};
	int fd = s->conn ? PQsocket(s->conn) : -1;

	if (fd != s->fd)
	{
		if (s->fd >= 0)
			epoll_ctl(G.epfd, EPOLL_CTL_DEL, s->fd, NULL);
		s->fd = fd;
		s->events = 0;
		if (fd < 0)
			return;
		epoll_ctl(G.epfd, EPOLL_CTL_ADD, fd, &ev);
		s->events = events;
		return;
	}
	if (fd >= 0 && events != s->events)
	{
		epoll_ctl(G.epfd, EPOLL_CTL_MOD, fd, &ev);
		s->events = events;
	}
}

static void
drop_connection(pgsess *s, const char *why)
{
	int jitter;

	if (s->conn)
	{
		if (s->fd >= 0)
			epoll_ctl(G.epfd, EPOLL_CTL_DEL, s->fd, NULL);
		PQfinish(s->conn);
		s->conn = NULL;
	}
	s->fd = -1;
	s->events = 0;
	if (strcmp(why, s->last_error) != 0 || s->was_ready)
		log_warn("PostgreSQL session \"%s\": %s; reconnecting in ~%d ms",
		         s->name, why, s->backoff_ms);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	s->was_ready = false;
	s->state = PS_DOWN;
	/* jitter: 50..100 % of the backoff */
	jitter = s->backoff_ms / 2 + rand() % (s->backoff_ms / 2 + 1);
	s->retry_at = G.now_mono + (int64_t) jitter * 1000;
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
	                                                   : s->backoff_ms * 2;
	/* the running operation starts again after the reconnect */
	if (s->head)
	{
		s->head->cur = 0;
		s->head->started = false;
		s->head->failed = false;
		s->head->copying = false;
		s->head->copy_off = 0;
	}
}

static void
lost(pgsess *s)
{
	char why[256];
	const char *msg = s->conn ? PQerrorMessage(s->conn) : "no connection";
	size_t n;

	snprintf(why, sizeof(why), "%s", msg && *msg ? msg : "connection lost");
	n = strlen(why);
	while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' '))
		why[--n] = '\0';
	for (char *p = why; *p; p++)
		if (*p == '\n')
			*p = ' ';
	drop_connection(s, why);
}

void
pgsess_start(pgsess *s)
{
	s->conn = start_connect(false);
	if (s->conn == NULL || PQstatus(s->conn) == CONNECTION_BAD)
	{
		lost(s);
		return;
	}
	s->state = PS_CONNECTING;
	set_events(s, EPOLLOUT);
}

bool
pgsess_ready(const pgsess *s)
{
	return s->state == PS_READY;
}

bool
pgsess_idle(const pgsess *s)
{
	return s->head == NULL;
}

static void flush_out(pgsess *s);

bool
pgsess_send(pgsess *s, const char *sql)
{
	if (!PQsendQuery(s->conn, sql))
		return false;
	flush_out(s);
	return true;
}

bool
pgsess_send_params(pgsess *s, const char *sql, int n,
                   const char *const *values)
{
	if (!PQsendQueryParams(s->conn, sql, n, NULL, values, NULL, NULL, 0))
		return false;
	flush_out(s);
	return true;
}

static void
flush_out(pgsess *s)
{
	int r = PQflush(s->conn);

	if (r < 0)
		return; /* noticed by the next PQconsumeInput */
	set_events(s, EPOLLIN | (r == 1 ? EPOLLOUT : 0));
}

static void run_next(pgsess *s);

static void
finish_op(pgsess *s)
{
	pgop *op = s->head;

	s->head = op->next;
	if (s->head == NULL)
		s->tail = NULL;
	op->queued = false;
	op->next = NULL;
	if (op->failed)
	{
		G.stats.pg_errors++;
		log_error("PostgreSQL session \"%s\": %s", s->name, op->err);
	}
	if (op->done)
		op->done(s, op, op->failed ? PGOP_ERROR : PGOP_OK, op->err);
}

/* Starts the current step of the head operation, or finishes it. */
static void
start_step(pgsess *s)
{
	pgop *op = s->head;

	op->started = true;
	if (op->failed || !op->step(s, op, op->cur))
	{
		if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		{
			s->state = PS_ROLLBACK;
			if (!pgsess_send(s, "ROLLBACK"))
				lost(s);
			return;
		}
		finish_op(s);
		run_next(s);
	}
}

static void
run_next(pgsess *s)
{
	while (s->state == PS_READY && s->head && !PQisBusy(s->conn))
	{
		pgop *op = s->head;

		if (op->started)
			return; /* running */
		op->failed = false;
		op->err[0] = '\0';
		start_step(s);
		if (s->head == op)
			return;
	}
}

void
pgsess_submit(pgsess *s, pgop *op)
{
	if (op->queued)
		return;
	op->queued = true;
	op->next = NULL;
	op->cur = 0;
	op->started = false;
	op->failed = false;
	op->copying = false;
	op->copy_off = 0;
	if (s->tail)
		s->tail->next = op;
	else
		s->head = op;
	s->tail = op;
	if (s->state == PS_READY && s->head == op)
		run_next(s);
}

/* Feeds COPY data; true when all is sent and the copy ended. */
static bool
push_copy(pgsess *s, pgop *op)
{
	const char *data;
	size_t len;

	op->copy_data(op, &data, &len);
	while (op->copy_off < len)
	{
		size_t n = len - op->copy_off;
		int r;

		if (n > COPY_CHUNK)
			n = COPY_CHUNK;
		r = PQputCopyData(s->conn, data + op->copy_off, (int) n);
		if (r < 0)
			return false;
		if (r == 0)
		{
			set_events(s, EPOLLIN | EPOLLOUT);
			return false;
		}
		op->copy_off += n;
	}
	if (PQputCopyEnd(s->conn, NULL) != 1)
	{
		set_events(s, EPOLLIN | EPOLLOUT);
		return false;
	}
	op->copying = false;
	flush_out(s);
	return true;
}

static void
note_error(pgop *op, const PGresult *res)
{
	const char *msg = PQresultErrorMessage(res);
	size_t n;

	if (op->failed)
		return;
	op->failed = true;
	snprintf(op->err, sizeof(op->err), "%s", msg && *msg ? msg : "error");
	n = strlen(op->err);
	while (n > 0 && op->err[n - 1] == '\n')
		op->err[--n] = '\0';
}

/* Reads every available result and advances operations. */
static void
consume_results(pgsess *s)
{
	while (s->conn && !PQisBusy(s->conn))
	{
		PGresult *res = PQgetResult(s->conn);
		pgop *op = s->head;

		if (res == NULL)
		{
			if (s->state == PS_SETUP)
			{
				if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
				{
					drop_connection(s, "session setup failed");
					return;
				}
				s->state = PS_READY;
				s->backoff_ms = BACKOFF_MIN_MS;
				s->was_ready = true;
				s->last_error[0] = '\0';
				G.stats.pg_reconnects++;
				log_info("PostgreSQL session \"%s\" ready", s->name);
				if (s->on_ready)
					s->on_ready(s);
				run_next(s);
				return;
			}
			if (s->state == PS_ROLLBACK)
			{
				s->state = PS_READY;
				finish_op(s);
				run_next(s);
				continue;
			}
			if (op == NULL)
				return;
			op->cur++;
			start_step(s);
			continue;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_COPY_IN:
				if (op && op->copy_data)
				{
					op->copying = true;
					op->copy_off = 0;
					PQclear(res);
					if (!push_copy(s, op))
						return; /* resumed when writable */
					continue;
				}
				PQputCopyEnd(s->conn, "no data for COPY");
				break;
			case PGRES_FATAL_ERROR:
				if (s->state == PS_SETUP)
				{
					char why[300];

					snprintf(why, sizeof(why), "setup failed: %s",
					         PQresultErrorMessage(res));
					PQclear(res);
					drop_connection(s, why);
					return;
				}
				if (op && s->state == PS_READY)
					note_error(op, res);
				break;
			default:
				if (op && s->state == PS_READY && op->result)
					op->result(s, op, op->cur, res);
				break;
		}
		PQclear(res);
	}
}

static void
connect_poll(pgsess *s)
{
	switch (PQconnectPoll(s->conn))
	{
		case PGRES_POLLING_READING:
			set_events(s, EPOLLIN);
			break;
		case PGRES_POLLING_WRITING:
			set_events(s, EPOLLOUT);
			break;
		case PGRES_POLLING_OK:
			PQsetnonblocking(s->conn, 1);
			s->state = PS_SETUP;
			set_events(s, EPOLLIN);
			if (!pgsess_send(s, s->setup_sql ? s->setup_sql : "SELECT 1"))
				lost(s);
			break;
		default:
			lost(s);
			break;
	}
}

void
pgsess_event(pgsess *s, uint32_t events)
{
	if (s->conn == NULL)
		return;
	if (s->state == PS_CONNECTING)
	{
		connect_poll(s);
		return;
	}
	if (events & EPOLLOUT)
	{
		if (s->head && s->head->copying)
		{
			if (PQflush(s->conn) < 0 || !push_copy(s, s->head))
			{
				if (PQstatus(s->conn) == CONNECTION_BAD)
					lost(s);
				return;
			}
		}
		else
			flush_out(s);
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
	{
		PGnotify *n;

		if (!PQconsumeInput(s->conn))
		{
			lost(s);
			return;
		}
		while ((n = PQnotifies(s->conn)) != NULL)
		{
			if (s->on_notify)
				s->on_notify(s, n);
			PQfreemem(n);
		}
		if (!(s->head && s->head->copying))
			consume_results(s);
	}
	if (s->conn && PQstatus(s->conn) == CONNECTION_BAD)
		lost(s);
}

int64_t
pgsess_timer(pgsess *s, int64_t now)
{
	if (s->state != PS_DOWN)
		return INT64_MAX;
	if (now >= s->retry_at)
	{
		pgsess_start(s);
		return s->state == PS_DOWN ? s->retry_at : INT64_MAX;
	}
	return s->retry_at;
}

void
pgsess_close(pgsess *s)
{
	if (s->conn)
	{
		if (s->fd >= 0)
			epoll_ctl(G.epfd, EPOLL_CTL_DEL, s->fd, NULL);
		PQfinish(s->conn);
	}
	s->conn = NULL;
	s->fd = -1;
	s->state = PS_DOWN;
	s->retry_at = INT64_MAX;
}
