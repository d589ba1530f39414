/*
 * ingest.h
 *	  Core types of prepaid-ingest shared by its modules: the meter and
 *	  gateway map entries, a meter-facing connection, the event sources of
 *	  the epoll loop, and the process-wide state (options, clock, counters).
 *	  Each module's own functions are declared in its header.
 */
#ifndef INGEST_H
#define INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "dlt645.h"
#include "opts.h"
#include "simclock.h"
#include "stats.h"

typedef struct meter meter;
typedef struct gateway gateway;
typedef struct conn conn;
typedef struct poll_state poll_state;
typedef struct command command;

/* What an epoll event belongs to (first member of every source). */
typedef enum ev_kind
{
	EV_LISTEN,
	EV_METERS, /* the meter sockets' own epoll set (net.c) */
	EV_CONN,
	EV_SIGNAL,
	EV_PG,
	EV_STATS_LISTEN
} ev_kind;

typedef struct evsrc
{
	ev_kind kind;
} evsrc;

/* meter.flags */
#define M_IN_DB    0x01 /* present in the last map load */
#define M_SEEN     0x02 /* a frame arrived since the last presence flush */
#define M_CONN_CHG 0x04 /* connection changed since the last flush */
#define M_QUEUED   0x08 /* on its connection's work queue */
#define M_POLL_DUE 0x10 /* a poll is due and waits for the connection */
#define M_PRESENCE 0x20 /* on the presence list */
#define M_SW3_DUE  0x40 /* a relay command since status word 3 was read */

struct meter
{
	int64_t meter_id;
	int64_t property_id;
	int64_t gateway_id;       /* 0: direct */
	int64_t interval_us;      /* read interval, simulated time */
	int64_t due_mono;         /* next poll (CLOCK_MONOTONIC us) */
	int64_t last_energy_wh;   /* register at the previous poll, -1 none */
	int64_t seen_reported_us; /* last reported as seen (monotonic), 0 never */
	conn *conn;               /* current connection (direct or gateway) */
	meter *next_work;         /* the connection's work queue */
	meter *next_presence;     /* presence flush list */
	poll_state *poll;         /* poll in progress, NULL otherwise */
	command *cmds;            /* commands claimed for this meter (FIFO) */
	uint32_t addr_next;       /* hash chains (index + 1, 0 = end) */
	uint32_t id_next;
	int32_t heap_pos; /* poll heap position, -1 if none */
	uint32_t index;   /* position in the meters array */
	uint8_t addr[DLT645_ADDR_LEN];
	uint8_t rate_registers;
	uint8_t phase;
	uint8_t flags;
	uint8_t presence_connected; /* state last reported (1 connected) */
	uint8_t relay;           /* RELAY_* (relay.h): status word 3 last read */
	uint8_t polls_since_sw3; /* energy polls since it was read */
};

struct gateway
{
	int64_t gateway_id;
	int64_t property_id;
	char *serial;
	conn *conn;
	uint32_t serial_next;
	uint8_t reported_online;
	uint8_t changed;
};

/* conn.state */
typedef enum conn_state
{
	CS_NEW,     /* accepted, identity unknown (read-address sent) */
	CS_METER,   /* a direct meter */
	CS_GATEWAY, /* a gateway carrying many meters */
	CS_CLOSED
} conn_state;

/* What the outstanding request is for. */
typedef enum req_purpose
{
	REQ_NONE,
	REQ_IDENT,
	REQ_POLL,
	REQ_COMMAND
} req_purpose;

struct conn
{
	evsrc ev;
	int fd;
	uint8_t state;    /* conn_state */
	uint8_t req;      /* req_purpose of the outstanding request */
	uint8_t req_func; /* function code sent */
	uint8_t timeouts; /* consecutive request timeouts */
	uint8_t in_json;  /* inside a JSON line */
	uint8_t json_len;
	uint16_t out_len; /* unsent bytes in out */
	uint32_t req_di;  /* DI of an outstanding read/write */
	uint32_t peer_ip; /* network order */
	uint16_t peer_port;
	int32_t gateway;  /* gateway index, -1 */
	meter *meter;     /* a direct meter */
	meter *req_meter; /* the meter the outstanding request is for */
	int64_t req_deadline;
	int64_t last_rx;       /* CLOCK_MONOTONIC us of the last byte */
	conn *t_prev, *t_next; /* in-flight list (ordered by deadline) */
	conn *i_prev, *i_next; /* idle list (ordered by last_rx) */
	meter *work_head, *work_tail;
	char *json;   /* partial JSON line (allocated while needed) */
	uint8_t *out; /* unsent output (allocated while needed) */
	dlt645_stream stream;
};

/* The process: options, clock, counters, and the daemon's name. */
typedef struct ingest_state
{
	ingest_opts opts;
	simclock clock;
	ingest_stats stats;
	int epfd;
	bool stopping;    /* SIGTERM: draining */
	bool paused;      /* polls held back: --max-buffer readings buffered */
	bool throttled;   /* polls held back: the writer is behind */
	int64_t now_mono; /* CLOCK_MONOTONIC us at this loop turn */
} ingest_state;

extern ingest_state G;

#endif /* INGEST_H */
