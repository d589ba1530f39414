#!/usr/bin/env bash
# Ingest benchmarks (called by scripts/bench.sh with BENCH_DB, BENCH_TMP,
# SMOKE and PGHOST/PGPORT): prepaid-sim meters over loopback TCP ->
# prepaid-ingest -> committed rows, in its own database "<BENCH_DB>_ingest".
#   0. the floor: request/reply exchanges per second loopback TCP sustains
#      on this machine with as many connections (bench/echo_bench.c), back to
#      back and an interval apart, and the CPU each exchange costs
#   1. end-to-end readings/s with 10,000 meters polled in accelerated time
#      (--poll energy), against a raw COPY of exactly the rows the run
#      produced into prepaid.reading itself (same triggers, indexes,
#      partitions), timed in the same run; CPU per reading of the daemon and
#      the simulator and exchanges per reading over the measured window; the
#      bound the floor and the COPY cost put on readings/s on these cores
#   2. command latency (INSERT of a pending command -> claimed by the daemon,
#      -> the meter's 9C reply, -> recorded in the database) while (1) runs,
#      against the same measured on an idle daemon
#   3. 20,000 idle connections: daemon RSS per connection beyond its base,
#      against the 2 KiB budget
# SMOKE: 1,000 meters for 5 s, 2,000 connections.
# INGEST_PER_GATEWAY=K: the meters of (1) behind gateways of K meters each
# (one socket per gateway, requests serialised on it) instead of direct.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=${BENCH_DB:-prepaid_bench}_ingest
TMP=${BENCH_TMP:-$(mktemp -d)}/ingest
mkdir -p "$TMP"
chmod 755 "$TMP"
if [ -n "${SMOKE:-}" ]; then
	METERS=1000 SECS=5 WARM=2 IDLE_CONNS=2000 COMMANDS=20 SCALE=${INGEST_SCALE:-18000} ECHO_SECS=1
else
	METERS=10000 SECS=30 WARM=5 IDLE_CONNS=20000 COMMANDS=200 SCALE=${INGEST_SCALE:-27000} ECHO_SECS=5
fi
INGEST=$ROOT/worker/prepaid-ingest
SIM=$ROOT/worker/prepaid-sim
make -s -C "$ROOT" workers >/dev/null # rebuilt when a source changed: never a stale binary
q() { psql -qXAt -d "$DB" -v ON_ERROR_STOP=1 "$@"; }
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
}
trap cleanup EXIT
port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 10000)) # below the ephemeral ports and the clusters of lib.sh
		(echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
PER_GW=${INGEST_PER_GATEWAY:-0}
fresh_db() { # fresh_db METERS [PER_GATEWAY]
	psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
	q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_prepaid CASCADE" \
		-c "UPDATE prepaid.job SET enabled = false" >/dev/null
	local k=${2:-0}
	q -v meters="$1" -v gateways=$((k > 0 ? $1 / k : 0)) -v per_gateway="$k" -v prepaid=0 \
		-f "$ROOT/tests/tap/ingest_fleet.sql" >/dev/null
	q -c "VACUUM ANALYZE" >/dev/null
}
wait_sql() {
	local deadline=$((SECONDS + $1))
	until [ "$(q -c "$2")" = t ]; do
		[ $SECONDS -lt $deadline ] || { echo "ingest bench: timed out: $2"; return 1; }
		sleep 0.2
	done
}
stop_pid() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# queue N commands on distinct meters, one transaction each, spread over the window
send_commands() {
	local n=$1 gap=$2 first=$3
	for i in $(seq 0 $((n - 1))); do
		echo "SELECT prepaid.command_queue($((first + i)), CASE WHEN $i % 2 = 0 THEN 'relay_open' ELSE 'relay_close' END);"
		echo "SELECT pg_sleep($gap);"
	done | q >/dev/null
}
latency() { # p50 and p99 of reply->>'ack_ms', p99 of sent (claimed) - created and of finished - created, ms
	q -F ' ' -c "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (reply->>'ack_ms')::float8)::numeric, 1),
		round(percentile_cont(0.99) WITHIN GROUP (ORDER BY (reply->>'ack_ms')::float8)::numeric, 1),
		round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at) * 1000)::numeric, 1),
		round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000)::numeric, 1),
		count(*) FILTER (WHERE status = 'acknowledged'), count(*)
		FROM prepaid.command WHERE command_id > $1"
}
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f", ($14 + $15) * 1000000 / hz}' "/proc/$1/stat"; }
counter() { # counter NAME: from the daemon's --stats-port text
	local text
	text=$(exec 3<>"/dev/tcp/127.0.0.1/$SP" && cat <&3)
	awk -v n="$1" '$1 == n {print $2}' <<<"$text"
}

# --- 0: the floor -----------------------------------------------------------
cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$TMP/echo_bench" "$ROOT/bench/echo_bench.c"
# 10,000 connections 50 ms apart offer 200,000 exchanges/s: more than the
# machine takes, so the rate measured is its capacity (also in smoke mode)
floor_b2b=$("$TMP/echo_bench" -c 10000 -t "$ECHO_SECS")
floor_gap=$("$TMP/echo_bench" -c 10000 -t "$ECHO_SECS" -g 50)
echo "$floor_b2b"
echo "$floor_gap"
# exchanges/s and CPU (both sides) per exchange of the realistic case: a
# meter's next request comes an interval later (a separate ACK each time)
read -r floor_rate floor_cpu <<<"$(awk '{for (i = 1; i < NF; i++) {if ($(i + 1) == "exchanges/s") r = $i; if ($i == "both") c = $(i + 1)}} END {print r, c}' <<<"$floor_gap")"

# --- 1 + 2: throughput under load, command latency under load ------------
fresh_db "$METERS" "$PER_GW"
P=$(port)
SP=$(port)
T=$(date -u -d '-40 days' +%Y-%m-%dT%H:%M:%SZ)
W=$(date +%s.%N)
rm -rf "$TMP/spool"
"$INGEST" --dsn "dbname=$DB" --name bench --listen "127.0.0.1:$P" --spool-dir "$TMP/spool" \
	--spool-sync none --time-scale $SCALE --time-start "$T@$W" --poll energy --batch-size 10000 \
	--batch-delay 200 --max-connections $((METERS + 100)) --stats-port "$SP" --log-level warn \
	>"$TMP/ingest.log" 2>&1 &
ING=$!
pids+=("$ING")
"$SIM" --db "dbname=$DB" --port "$P" --time-scale $SCALE --time-start "$T@$W" --stats 0 --quiet \
	--no-history --preamble 0 >"$TMP/sim.log" 2>&1 &
SIMPID=$!
pids+=("$SIMPID")
wait_sql 120 "SELECT count(*) >= $METERS FROM prepaid.meter_connection"
sleep "$WARM"
c0=$(q -c "SELECT coalesce(max(command_id), 0) FROM prepaid.command")
t0=$(q -c "SELECT now()")
icpu0=$(cpu_us "$ING")
scpu0=$(cpu_us "$SIMPID")
fo0=$(counter frames_out)
rt0=$(counter readings_taken)
send_commands "$COMMANDS" "$(awk -v s="$SECS" -v n="$COMMANDS" 'BEGIN { printf "%.3f", s / n }')" 1 &
cmdpid=$!
sleep "$SECS"
t1=$(q -c "SELECT now()")
icpu1=$(cpu_us "$ING")
scpu1=$(cpu_us "$SIMPID")
fo1=$(counter frames_out)
rt1=$(counter readings_taken)
wait "$cmdpid"
read -r rows secs <<<"$(q -F ' ' -c "SELECT coalesce(sum(inserted), 0), extract(epoch FROM '$t1'::timestamptz - '$t0'::timestamptz)
	FROM prepaid.ingest_batch WHERE committed_at > '$t0' AND committed_at <= '$t1'")"
wait_sql 30 "SELECT count(*) FILTER (WHERE status IN ('pending', 'sent')) = 0 FROM prepaid.command WHERE command_id > $c0" || true
read -r l50 l99 s99 r99 acked ncmd <<<"$(latency "$c0")"
stop_pid "$SIMPID"
stop_pid "$ING"
total=$(q -c "SELECT count(*) FROM prepaid.reading")

# baseline: the same rows, COPYed raw into prepaid.reading (emptied) at once
q -c "\\copy (SELECT property_id, meter_id, read_at, energy_wh, rate_wh, relay_open, status_words, batch_id FROM prepaid.reading) TO '$TMP/rows.copy'"
q -c "TRUNCATE prepaid.reading, prepaid.meter_latest" -c "CHECKPOINT" >/dev/null
copy_ms=$(q -c "\\timing on" -c "\\copy prepaid.reading (property_id, meter_id, read_at, energy_wh, rate_wh, relay_open, status_words, batch_id) FROM '$TMP/rows.copy'" \
	| awk '/^Time:/ {print $2}')
copied=$(q -c "SELECT count(*) FROM prepaid.reading")
awk -v r="$rows" -v s="$secs" -v n="$copied" -v ms="$copy_ms" -v m="$METERS" -v tot="$total" \
	-v ic=$((icpu1 - icpu0)) -v sc=$((scpu1 - scpu0)) -v fo=$((fo1 - fo0)) -v rt=$((rt1 - rt0)) \
	-v fr="$floor_rate" -v fc="$floor_cpu" -v cores="$(nproc)" -v gw="$PER_GW" 'BEGIN {
	e2e = r / s; raw = n / (ms / 1000); k = fo / rt;
	printf "ingest: %d readings committed in %.1f s = %.0f readings/s end to end (%d meters over TCP%s, poll energy; run total %d rows); ", r, s, e2e, m, (gw > 0 ? sprintf(", %d per gateway", gw) : ""), tot;
	printf "raw COPY of the same %d rows into prepaid.reading %.0f rows/s; ratio %.2f [targets: >= 100000/s, >= 0.50]\n", n, raw, e2e / raw;
	printf "ingest CPU per reading: daemon %.1f us, simulator %.1f us (%d readings taken in the window, %.2f exchanges per reading)\n", ic / rt, sc / rt, rt, k;
	printf "ingest bound on %d cores: floor %.0f exchanges/s at %.1f us CPU each (both ends) -> at most %.0f readings/s with no database, ", cores, fr, fc, cores * 1e6 / (k * fc);
	printf "%.0f with the raw COPY cost per row (%.1f us); target 100000 needs <= %.1f us of CPU per reading in all\n", cores * 1e6 / (k * fc + 1e6 / raw), 1e6 / raw, cores * 1e6 / 100000 }'

# --- 3: idle connections; command latency on an idle daemon --------------
# both programs need a descriptor per connection: stay under the hard limit
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$IDLE_CONNS" -gt $((hard - 200)) ]; then
	echo "ingest memory: open-file hard limit $hard here: measuring $((hard - 200)) connections instead of $IDLE_CONNS"
	IDLE_CONNS=$((hard - 200))
fi
fresh_db "$IDLE_CONNS"
P=$(port)
rm -rf "$TMP/spool"
"$INGEST" --dsn "dbname=$DB" --name idle --listen "127.0.0.1:$P" --spool-dir "$TMP/spool" \
	--max-connections $((IDLE_CONNS + 100)) --log-level warn >"$TMP/ingest-idle.log" 2>&1 &
ING=$!
pids+=("$ING")
wait_sql 60 "SELECT count(*) = 1 FROM prepaid.ingest_stats WHERE daemon = 'idle' AND stats ? 'frames_in'"
rss() { awk '/^Rss:/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
rss0=$(rss "$ING")
"$SIM" --db "dbname=$DB" --port "$P" --idle --stats 0 --quiet --no-history --connect-rate 5000 \
	--ready-file "$TMP/ready" >"$TMP/sim-idle.log" 2>&1 &
SIMPID=$!
pids+=("$SIMPID")
wait_sql 180 "SELECT count(*) >= $IDLE_CONNS FROM prepaid.meter_connection WHERE daemon = 'idle'"
sleep 2
rss1=$(rss "$ING")
c0=$(q -c "SELECT coalesce(max(command_id), 0) FROM prepaid.command")
send_commands "$COMMANDS" 0.02 1
wait_sql 60 "SELECT count(*) FILTER (WHERE status IN ('pending', 'sent')) = 0 FROM prepaid.command WHERE command_id > $c0" || true
read -r i50 i99 is99 ir99 iacked incmd <<<"$(latency "$c0")"
rss2=$(rss "$ING")
stop_pid "$SIMPID"
stop_pid "$ING"
awk -v n="$IDLE_CONNS" -v a="$rss0" -v b="$rss1" -v c="$rss2" 'BEGIN {
	per = (b - a) * 1024 / n;
	printf "ingest memory: %d idle meter connections: daemon RSS %.1f MiB -> %.1f MiB = %.0f bytes per connection beyond the base (%.1f MiB after %s commands); budget 2048 bytes, ratio %.2f [target <= 2048 B]\n", n, a / 1024, b / 1024, per, c / 1024, "'"$COMMANDS"'", per / 2048 }'
echo "ingest command latency under load: $acked/$ncmd acknowledged; INSERT -> meter ack p50 ${l50:-?} ms, p99 ${l99:-?} ms (-> claimed p99 ${s99:-?} ms, -> recorded p99 ${r99:-?} ms); idle daemon: p50 ${i50:-?} ms, p99 ${i99:-?} ms (claimed p99 ${is99:-?} ms; $iacked/$incmd); ratio loaded/idle p99 $(awk -v a="${l99:-0}" -v b="${i99:-0}" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }') [target: p99 <= 100 ms under load]"
