/*
 * main.c
 *	  prepaid-ingest: start-up (options, the first meter map, the spool),
 *	  the epoll event loop (meter sockets, three PostgreSQL sessions, a
 *	  signalfd, the optional stats port) with its timers, and shutdown.
 *
 *	  PostgreSQL sessions: "writer" (reading batches: COPY + commit),
 *	  "commands" (LISTEN prepaid_command, claims, results: kept short so
 *	  command latency does not wait behind a batch) and "reports"
 *	  (connections, last_seen, quarantine, counters, map reloads).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "batch.h"
#include "command.h"
#include "fdlimit.h"
#include "ingest.h"
#include "log.h"
#include "meters.h"
#include "net.h"
#include "pgsess.h"
#include "poller.h"
#include "reading.h"
#include "replay.h"
#include "report.h"

#define MAX_EVENTS     64 /* sessions, signals, listening sockets, meters */
#define DRAIN_LIMIT_US (30LL * 1000000)

ingest_state G;

static pgsess writer, commands, reports;
static evsrc signal_ev = {EV_SIGNAL};
static evsrc stats_ev = {EV_STATS_LISTEN};
static int signal_fd = -1, stats_fd = -1;
static int64_t next_reload, drain_deadline;
static bool replay_mode;

static void
log_stats(void)
{
	static char text[8192];
	char *line, *save = NULL;

	stats_text(&G.stats, text, sizeof(text));
	log_info("counters (daemon %s, %u connections, %ld readings buffered):",
	         G.opts.name, net_open_connections(), batch_buffered());
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		log_info("  %s", line);
}

static void
start_drain(const char *why)
{
	if (G.stopping)
		return;
	G.stopping = true;
	drain_deadline = G.now_mono + DRAIN_LIMIT_US;
	log_info("%s: draining (closing meter connections, flushing readings)",
	         why);
	batch_close_open();
	if (replay_mode)
		return;
	net_stop_listening();
	net_close_all();
	report_flush_all();
}

static void
reload(void)
{
	if (G.opts.config_file)
	{
		if (opts_load_file(G.opts.config_file, &G.opts, true) == 0)
			log_set_level(G.opts.log_level);
		else
			log_warn("SIGHUP: %s has errors (above); keeping the current "
			         "settings",
			         G.opts.config_file);
	}
	log_info("SIGHUP: reloading the meter map (log level %s)",
	         log_level_name(log_get_level()));
	meters_reload(&reports);
	next_reload = G.now_mono + (int64_t) G.opts.reload_interval_s * 1000000;
}

static void
on_signal(void)
{
	struct signalfd_siginfo si;

	while (read(signal_fd, &si, sizeof(si)) == (ssize_t) sizeof(si))
	{
		switch (si.ssi_signo)
		{
			case SIGTERM:
			case SIGINT:
				start_drain(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
				break;
			case SIGHUP:
				if (!replay_mode)
					reload();
				break;
			case SIGUSR1:
				log_stats();
				break;
			default:
				break;
		}
	}
}

static void
setup_signals(void)
{
	sigset_t set;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &signal_ev};

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (signal_fd < 0)
	{
		log_error("signalfd: %s", strerror(errno));
		exit(1);
	}
	epoll_ctl(G.epfd, EPOLL_CTL_ADD, signal_fd, &ev);
}

static void
stats_listen(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stats_ev};
	int one = 1;

	sa.sin_port = htons((uint16_t) G.opts.stats_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	stats_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (stats_fd < 0 ||
	    setsockopt(stats_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(stats_fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    listen(stats_fd, 16) != 0)
	{
		log_error("--stats-port %d: %s", G.opts.stats_port, strerror(errno));
		exit(1);
	}
	epoll_ctl(G.epfd, EPOLL_CTL_ADD, stats_fd, &ev);
}

static void
stats_accept(void)
{
	static char text[8192];
	int fd;

	while ((fd = accept4(stats_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
	{
		size_t n = stats_text(&G.stats, text, sizeof(text));

		if (write(fd, text, n) < 0)
			log_debug("stats port: %s", strerror(errno));
		close(fd);
	}
}

/* Start-up: register, learn the last batch number and load the map, with
 * the same backoff as the sessions; SIGTERM still stops the wait. */
static int64_t
first_contact(void)
{
	int backoff_ms = 100;

	for (;;)
	{
		PGconn *conn = pgsess_connect_blocking();
		char pid[16];
		const char *params[2] = {G.opts.name, pid};

		snprintf(pid, sizeof(pid), "%d", (int) getpid());
		if (PQstatus(conn) == CONNECTION_OK)
		{
			PGresult *start = PQexecParams(
			    conn, "SELECT prepaid.ingest_start($1, $2::integer)", 2, NULL,
			    params, NULL, NULL, 0);
			PGresult *gws =
			    PQexec(conn, "SELECT * FROM prepaid.ingest_gateway_map()");
			PGresult *ms =
			    PQexec(conn, "SELECT * FROM prepaid.ingest_meter_map()");

			if (PQresultStatus(start) == PGRES_TUPLES_OK &&
			    PQresultStatus(gws) == PGRES_TUPLES_OK &&
			    PQresultStatus(ms) == PGRES_TUPLES_OK)
			{
				int64_t last = strtoll(PQgetvalue(start, 0, 0), NULL, 10);
				uint32_t n = meters_apply(ms, gws);

				log_info("daemon \"%s\": %u meters, %u gateways in the map; "
				         "last committed batch %lld",
				         G.opts.name, n, n_gateways, (long long) last);
				PQclear(start);
				PQclear(gws);
				PQclear(ms);
				PQfinish(conn);
				return last;
			}
			log_error(
			    "start-up queries failed: %s",
			    PQresultErrorMessage(
			        PQresultStatus(start) == PGRES_TUPLES_OK
			            ? (PQresultStatus(gws) == PGRES_TUPLES_OK ? ms : gws)
			            : start));
			PQclear(start);
			PQclear(gws);
			PQclear(ms);
		}
		else
			log_warn("cannot reach PostgreSQL: %s; retrying in %d ms",
			         PQerrorMessage(conn), backoff_ms);
		PQfinish(conn);
		{
			struct pollfd p = {.fd = signal_fd, .events = POLLIN};

			if (poll(&p, 1, backoff_ms) > 0)
			{
				struct signalfd_siginfo si;

				if (read(signal_fd, &si, sizeof(si)) > 0 &&
				    (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT))
				{
					log_info("stopped before PostgreSQL was reached");
					exit(0);
				}
			}
		}
		backoff_ms = backoff_ms * 2 > 10000 ? 10000 : backoff_ms * 2;
	}
}

static void
writer_ready(pgsess *s)
{
	batch_on_ready(s);
}

static void
dispatch(struct epoll_event *e)
{
	evsrc *src = e->data.ptr;

	switch (src->kind)
	{
		case EV_LISTEN:
		case EV_METERS:
		case EV_CONN:
			net_event(src, e->events);
			break;
		case EV_SIGNAL:
			on_signal();
			break;
		case EV_PG:
			pgsess_event((pgsess *) src, e->events);
			break;
		case EV_STATS_LISTEN:
			stats_accept();
			break;
	}
}

static int64_t
min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Runs every timer; returns the earliest next deadline. */
static int64_t
run_timers(int64_t now)
{
	int64_t next = INT64_MAX;

	next = min64(next, pgsess_timer(&writer, now));
	next = min64(next, batch_timers(now));
	if (!replay_mode)
	{
		next = min64(next, pgsess_timer(&commands, now));
		next = min64(next, pgsess_timer(&reports, now));
		next = min64(next, net_timers(now));
		next = min64(next, poller_run(now));
		next = min64(next, command_timers(now));
		next = min64(next, report_timers(now));
		if (now >= next_reload && !G.stopping)
		{
			if (pgsess_ready(&reports))
				meters_reload(&reports);
			next_reload = now + (int64_t) G.opts.reload_interval_s * 1000000;
		}
		next = min64(next, next_reload);
	}
	return next;
}

static bool
drained(void)
{
	if (!batch_drained())
		return false;
	if (replay_mode)
		return true;
	return command_idle() && report_idle();
}

int
main(int argc, char **argv)
{
	struct epoll_event events[MAX_EVENTS];
	long limit;
	int64_t last;

	opts_parse(argc, argv, &G.opts);
	log_init("prepaid-ingest", G.opts.log_level);
	srand((unsigned) (getpid() ^ (unsigned) realtime_us()));
	limit = fdlimit_raise(G.opts.max_connections + 64);
	if (limit < G.opts.max_connections + 64)
		log_warn("open-file limit is %ld: fewer than --max-connections %ld "
		         "meters can connect",
		         limit, G.opts.max_connections);
	G.epfd = epoll_create1(EPOLL_CLOEXEC);
	G.now_mono = mono_us();
	if (G.opts.time_start_text &&
	    simclock_parse_anchored(G.opts.time_start_text, G.opts.time_scale,
	                            &G.opts.time_start_us) != 0)
	{
		fprintf(stderr, "prepaid-ingest: --time-start: not a time: \"%s\"\n",
		        G.opts.time_start_text);
		return 2;
	}
	simclock_init(&G.clock,
	              G.opts.time_start_us ? G.opts.time_start_us : realtime_us(),
	              G.opts.time_scale);
	setup_signals();
	pgsess_set_dsn(G.opts.dsn);
	replay_mode = G.opts.replay_file != NULL;

	last = first_contact();
	G.now_mono = mono_us();
	pgsess_init(&writer, "writer", READING_STAGE_DDL, writer_ready, NULL);
	batch_init(&writer, last);
	pgsess_start(&writer);
	if (replay_mode)
	{
		if (replay_file(G.opts.replay_file) < 0)
			return 1;
		start_drain("replay read");
		drain_deadline = INT64_MAX; /* wait for PostgreSQL however long */
	}
	else
	{
		command_init(&commands);
		report_init(&reports);
		pgsess_start(&commands);
		pgsess_start(&reports);
		poller_schedule_all();
		net_listen();
		if (G.opts.stats_port)
			stats_listen();
		next_reload =
		    G.now_mono + (int64_t) G.opts.reload_interval_s * 1000000;
		log_info("prepaid-ingest \"%s\" running (poll %s, time x%lld, batch "
		         "%d / %d ms, spool %s)",
		         G.opts.name, G.opts.poll == POLL_FULL ? "full" : "energy",
		         (long long) G.opts.time_scale, G.opts.batch_size,
		         G.opts.batch_delay_ms, G.opts.spool_dir);
	}

	for (;;)
	{
		int64_t next, timeout_ms;
		int n;

		G.now_mono = mono_us();
		next = run_timers(G.now_mono);
		batch_spool_flush();
		net_reap();
		if (G.stopping)
		{
			if (drained())
				break;
			if (G.now_mono >= drain_deadline)
			{
				log_warn("drain limit reached with %ld readings not "
				         "committed: they stay in the spool and are sent at "
				         "the next start",
				         batch_buffered());
				break;
			}
			next = min64(next, drain_deadline);
		}
		timeout_ms =
		    next == INT64_MAX ? 1000 : (next - G.now_mono + 999) / 1000;
		if (timeout_ms < 0)
			timeout_ms = 0;
		if (timeout_ms > 1000)
			timeout_ms = 1000;
		n = epoll_wait(G.epfd, events, MAX_EVENTS, (int) timeout_ms);
		if (n < 0 && errno != EINTR)
		{
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		G.now_mono = mono_us();
		/* the meter sockets last: sessions and signals never wait for them */
		for (int i = 0; i < n; i++)
			if (((evsrc *) events[i].data.ptr)->kind != EV_METERS)
				dispatch(&events[i]);
		for (int i = 0; i < n; i++)
			if (((evsrc *) events[i].data.ptr)->kind == EV_METERS)
				dispatch(&events[i]);
		batch_spool_flush();
		net_reap();
	}
	log_stats();
	pgsess_close(&writer);
	pgsess_close(&commands);
	pgsess_close(&reports);
	batch_shutdown();
	log_info("stopped");
	return 0;
}
