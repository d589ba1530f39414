/*
 * stats.h
 *	  Counters of prepaid-ingest and the command-latency histogram, rendered
 *	  as text (SIGUSR1, --stats-port) or JSON (prepaid.ingest_stats).
 */
#ifndef INGEST_STATS_H
#define INGEST_STATS_H

#include <stddef.h>
#include <stdint.h>

/* X(name, description): every counter once; gauges are counters too. */
#define INGEST_COUNTERS(X)                                                    \
	X(connections_accepted, "meter/gateway sockets accepted")                 \
	X(connections_open, "sockets open now")                                   \
	X(connections_replaced, "older sockets closed by a newer one")            \
	X(meters_connected, "meters reachable now")                               \
	X(gateways_connected, "gateways connected now")                           \
	X(meters_seen_reported, "meters reported as seen (once a minute each)")   \
	X(frames_in, "good frames received")                                      \
	X(frames_out, "frames sent")                                              \
	X(bytes_in, "bytes received")                                             \
	X(bytes_out, "bytes sent")                                                \
	X(rejected_bad_checksum, "frames rejected: checksum")                     \
	X(rejected_bad_frame, "frames rejected: end byte / undecodable")          \
	X(rejected_garbage_bytes, "bytes skipped outside frames")                 \
	X(rejected_unknown_meter, "connections closed: unknown meter address")    \
	X(rejected_unknown_gateway, "connections closed: unknown gateway serial") \
	X(rejected_bad_json, "gateway lines that are not valid registration")     \
	X(rejected_unexpected, "frames that answer no request")                   \
	X(rejected_value, "reply values that could not be decoded")               \
	X(abnormal_replies, "abnormal (error) replies from meters")               \
	X(request_timeouts, "requests without a reply in time")                   \
	X(polls_started, "polls started")                                         \
	X(polls_failed, "polls abandoned (timeout, error, disconnect)")           \
	X(polls_skipped, "poll slots of meters not connected")                    \
	X(polls_delayed, "polls held back (writer behind, buffer full, busy)")    \
	X(polls_status_skipped, "energy polls without status word 3")             \
	X(polls_in_progress, "polls under way now (at most --poll-window)")       \
	X(polls_in_progress_max, "most polls under way at once")                  \
	X(readings_taken, "readings assembled and spooled")                       \
	X(readings_written, "readings inserted into prepaid.reading")             \
	X(readings_duplicate, "readings already present (skipped)")               \
	X(readings_buffered, "readings spooled and not yet committed")            \
	X(batches_committed, "batches committed")                                 \
	X(batches_duplicate, "batches found already committed (retries)")         \
	X(batch_errors, "batch attempts that failed")                             \
	X(pg_reconnects, "PostgreSQL (re)connections")                            \
	X(pg_errors, "PostgreSQL errors")                                         \
	X(quarantined, "frames written to prepaid.quarantine")                    \
	X(commands_claimed, "commands claimed")                                   \
	X(commands_acknowledged, "commands acknowledged")                         \
	X(commands_failed, "commands failed")                                     \
	X(commands_retried, "commands handed back for retry")

#define LAT_BUCKETS 1600 /* 0..999 ms by 1 ms, then by 100 ms to 60.9 s */

typedef struct ingest_stats
{
#define X(name, desc) uint64_t name;
	INGEST_COUNTERS(X)
#undef X
	uint64_t lat[LAT_BUCKETS]; /* command latency, INSERT -> meter reply */
	uint64_t lat_count;
	int64_t lat_max_us;
} ingest_stats;

extern void stats_latency_add(ingest_stats *s, int64_t us);

/* Latency percentile (0..100) in milliseconds; -1 when empty. */
extern double stats_latency_ms(const ingest_stats *s, double pct);

/* "name value  # description" lines; returns the length. */
extern size_t stats_text(const ingest_stats *s, char *buf, size_t cap);

/* One JSON object of every counter and latency p50/p99/max. */
extern size_t stats_json(const ingest_stats *s, char *buf, size_t cap);

#endif /* INGEST_STATS_H */
