#!/usr/bin/env bash
# Exactly once under failure, with prepaid-sim under load (100 meters read
# every 0.25 s of wall time): PostgreSQL is stopped and started again while
# the daemon runs (it buffers, reconnects with backoff, flushes: nothing
# lost); then the daemon is killed with SIGKILL mid-stream, its spool is
# made to look as if every batch had been cut off between COMMIT and the
# spool's commit mark, and it is started again: every reading it had taken
# is stored exactly once, the batches already committed are skipped, and
# every stored reading is a value the simulator reported.
set -u
cd "$(dirname "$0")"
source ./ingest_lib.sh
source "$ROOT/scripts/lib.sh"
echo "1..9"
setup_db prepaid_ing42 100 1 10 0
DATA=$(q -c "SHOW data_directory")
# the binaries of the server that runs (make test may use a private copy)
PGBIN=$(dirname "$(readlink "/proc/$(head -1 "$DATA/postmaster.pid")/exe")")
PORT=$(free_tcp_port)
SCALE=7200
T=$(date -u -d '-20 days' +%Y-%m-%dT%H:%M:%SZ)
W=$(date +%s.%N)
opts=(--time-scale $SCALE --time-start "$T@$W" --poll energy --batch-delay 100 --batch-size 500
	--request-timeout 1000 --stats-interval 1)
start_daemon d42 "$PORT" "${opts[@]}"
start_sim sim42 --port "$PORT" --time-scale $SCALE --time-start "$T@$W" --truth "$WORK/truth.csv" --reconnect 100
rows() { q -c "SELECT count(*) FROM prepaid.reading"; }
wait_for 30 "SELECT count(*) > 1000 FROM prepaid.reading"
ok $? "readings flow (100 meters, 400 readings a second)"

# --- PostgreSQL goes away and comes back ---------------------------------
spool_rows() { cat "$WORK"/spool-d42/*.spool 2>/dev/null | grep -c '^[0-9]'; }
as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
before=$(spool_rows)
wait_until 30 bash -c "[ \$(cat '$WORK'/spool-d42/*.spool | grep -c '^[0-9]') -gt $((before + 2000)) ]"
ok $? "while PostgreSQL is down the daemon keeps reading meters into its spool"
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/../server.log" -w start >/dev/null
wait_for 60 "SELECT coalesce((stats->>'readings_buffered')::int < 1000 AND (stats->>'pg_reconnects')::int >= 6, false)
	FROM prepaid.ingest_stats WHERE daemon = 'd42'"
ok $? "after the restart it reconnects and flushes its buffer"
grep -q 'reconnecting in' "$WORK/d42.log"
ok $? "the outage is logged with the reconnect backoff"

# --- SIGKILL, then a restart from the spool --------------------------------
wait_for 30 "SELECT count(*) > $(rows) + 2000 FROM prepaid.reading"
stop d42 KILL
cp -r "$WORK/spool-d42" "$WORK/spool-at-kill"
sed -i '/^K /d' "$WORK"/spool-d42/*.spool
start_daemon d42 "$PORT" "${opts[@]}"
wait_until 30 grep -q 'taken over from the last run' "$WORK/d42.log"
ok $? "the restarted daemon takes over the spool's batches"
wait_for 60 "SELECT coalesce((stats->>'batches_duplicate')::int > 0 AND (stats->>'readings_buffered')::int < 1000, false)
	FROM prepaid.ingest_stats WHERE daemon = 'd42'"
ok $? "batches committed before the kill are recognised (prepaid.ingest_batch) and skipped"
wait_for 30 "SELECT count(*) > $(rows) + 1000 FROM prepaid.reading"
stop sim42 TERM
stop d42 TERM
ok $? "readings flow again; SIGTERM stops it cleanly"

# every reading in the spool at the kill is stored exactly once, same values
cat "$WORK"/spool-at-kill/*.spool | grep '^[0-9]' | cut -f2,3,4 | sort -u >"$WORK/taken.tsv"
q -c "CREATE TABLE taken (meter_id bigint, read_at timestamptz, energy_wh bigint)" \
	-c "\\copy taken FROM '$WORK/taken.tsv'" >/dev/null
res=$(q -c "SELECT count(*) || '/' || count(*) FILTER (WHERE r.meter_id IS NULL OR r.energy_wh <> t.energy_wh)
	FROM taken t LEFT JOIN prepaid.reading r USING (meter_id, read_at)")
[ "${res#*/}" = 0 ] && [ "${res%/*}" -gt 1000 ]
ok $? "every reading taken before the kill is stored once with its value (taken / lost: $res)"

q -c "CREATE TABLE truth (sim_time timestamptz, address text, event text, di text, value text,
	energy_wh bigint, rate_wh text, relay text, meter_time text, fault text)" \
	-c "\\copy truth FROM '$WORK/truth.csv' (FORMAT csv, HEADER)" >/dev/null
res=$(q -c "SELECT count(*) || '/' || count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM truth t
		WHERE t.address = m.address AND t.di = '0001FF00' AND t.energy_wh = r.energy_wh))
	FROM prepaid.reading r JOIN prepaid.meter m USING (property_id, meter_id)")
worst=$(q -c "SELECT max(n) FROM (SELECT t.address, count(*) AS n FROM truth t
	WHERE t.event = 'read' AND t.di = '0001FF00' AND NOT EXISTS (SELECT 1 FROM prepaid.reading r
		JOIN prepaid.meter m USING (property_id, meter_id) WHERE m.address = t.address AND r.energy_wh = t.energy_wh)
	GROUP BY 1) x")
[ "${res#*/}" = 0 ] && [ "${worst:-0}" -le 2 ]
ok $? "every stored reading is a value the simulator sent; per meter at most the polls cut by the kill and the stop are missing (rows / unknown: $res; most missing per meter: ${worst:-0})"
exit $fail
