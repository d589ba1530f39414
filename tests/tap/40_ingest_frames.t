#!/usr/bin/env bash
# prepaid-ingest against hand-built DL/T 645 traffic (ingest_client.pl), the
# daemon running under valgrind memcheck the whole time: identification of
# direct meters and gateways, readings, quarantine of unknown meters,
# unknown gateways and bad frames, relay commands confirmed by read-back, a
# refused write, the stats port, SIGTERM (flush, exit 0, no memory errors)
# and --replay.
set -u
cd "$(dirname "$0")"
source ./ingest_lib.sh
echo "1..20"
setup_db prepaid_ing40 20 1 5 0
PORT=$(free_tcp_port)
SPORT=$(free_tcp_port)

"$INGEST" --help >"$WORK/help.txt"
missing=$(for o in listen dsn name max-connections poll status-every poll-window batch-size batch-delay max-buffer spool-dir \
	spool-sync time-scale time-start replay request-timeout ident-wait idle-timeout command-poll \
	reload-interval password operator config log-level stats-interval stats-port; do
	grep -q -- "--$o" "$WORK/help.txt" || echo "$o"; done)
[ -z "$missing" ]; ok $? "--help documents every option${missing:+ (missing: $missing)}"

INGEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	start_daemon d40 "$PORT" --time-scale 1800 --time-start now-2d --poll energy \
	--batch-delay 100 --stats-interval 1 --stats-port "$SPORT" --command-poll 500
wait_for 60 "SELECT count(*) = 1 FROM prepaid.ingest_stats WHERE daemon = 'd40' AND stats ? 'frames_in'"
ok $? "the daemon starts under valgrind and reports its counters"

perl "$CLIENT" meter "$PORT" 000000000001 120 &
PIDS[m1]=$!
perl "$CLIENT" gateway "$PORT" GW0001 120 000000000016 000000000017 000000000018 000000000019 000000000020 &
PIDS[gw]=$!
wait_for 30 "SELECT count(*) = 6 FROM prepaid.meter_connection WHERE daemon = 'd40'"
ok $? "a direct meter (read-address) and a gateway's five meters are connected to d40"
wait_for 10 "SELECT online AND last_seen IS NOT NULL FROM prepaid.gateway WHERE serial = 'GW0001'"
ok $? "the gateway is online"
wait_for 60 "SELECT count(DISTINCT meter_id) = 6 AND min(energy_wh) >= 1000010 FROM prepaid.reading"
ok $? "readings arrive from the direct meter and from every meter behind the gateway"

perl "$CLIENT" raw "$PORT" "68 01 72 00 72 00 00 68 93 06 34 A5 33 A5 33 33 65 16" 5000 >/dev/null
closed=$?
wait_for 10 "SELECT count(*) = 1 FROM prepaid.quarantine WHERE source = 'frame' AND reason = 'unknown_meter'
	AND address = '000072007201' AND encode(frame, 'hex') = '6801720072000068930634a533a533336516'"
[ $? = 0 ] && [ $closed = 0 ]
ok $? "an unknown meter is quarantined (unknown_meter, its address and frame) and disconnected"

perl "$CLIENT" raw "$PORT" "$(printf '{"type":"register","gateway":"GW9999","imei":"1"}\n' | od -An -tx1 | tr -d ' \n')" 5000 >/dev/null
closed=$?
wait_for 10 "SELECT count(*) = 1 FROM prepaid.quarantine WHERE reason = 'unknown_gateway' AND detail LIKE '%GW9999%'"
[ $? = 0 ] && [ $closed = 0 ]
ok $? "an unknown gateway serial is quarantined (unknown_gateway) and disconnected"

perl "$CLIENT" raw "$PORT" "68 01 72 00 72 00 00 68 91 08 33 33 34 33 33 33 33 33 E8 16 00 11 22" 1000 >/dev/null
wait_for 10 "SELECT count(*) = 1 FROM prepaid.quarantine WHERE reason = 'bad_frame' AND detail LIKE 'checksum mismatch%'
	AND encode(frame, 'hex') = '68017200720000689108333334333333333' || '3e816'"
ok $? "a frame with a bad checksum is quarantined (bad_frame, with the frame)"
wait_for 10 "SELECT (stats->>'rejected_bad_checksum')::int >= 1 AND (stats->>'rejected_unknown_meter')::int = 1
	AND (stats->>'rejected_unknown_gateway')::int = 1 FROM prepaid.ingest_stats WHERE daemon = 'd40'"
ok $? "rejections are counted by reason in prepaid.ingest_stats"

q -c "SELECT prepaid.command_queue(1, 'relay_open')" -c "SELECT prepaid.command_queue(17, 'relay_open')" >/dev/null
wait_for 15 "SELECT count(*) = 2 FROM prepaid.command WHERE kind = 'relay_open' AND status = 'acknowledged'
	AND claimed_by = 'd40' AND (reply->>'relay_open')::boolean"
ok $? "relay_open to a direct meter and to a gateway meter: acknowledged after status word 3 shows the relay open"
[ "$(q -c "SELECT string_agg(relay_actual, ',' ORDER BY meter_id) FROM prepaid.meter WHERE meter_id IN (1, 17)")" = "open,open" ]
ok $? "meter.relay_actual is open for both"
q -c "SELECT prepaid.command_queue(1, 'relay_close')" >/dev/null
wait_for 15 "SELECT status = 'acknowledged' AND NOT (reply->>'relay_open')::boolean FROM prepaid.command WHERE kind = 'relay_close'"
r=$?
[ $r = 0 ] && [ "$(q -c "SELECT relay_actual FROM prepaid.meter WHERE meter_id = 1")" = closed ]
ok $? "relay_close: acknowledged, relay_actual closed"
q -c "SELECT prepaid.command_queue(16, 'write_price', '{\"tariff\": 1, \"price\": \"0.5200\"}')" >/dev/null
wait_for 15 "SELECT status = 'failed' AND error LIKE 'meter refused (SERR 02%' FROM prepaid.command WHERE kind = 'write_price'"
r=$?
[ $r = 0 ] && [ "$(q -c "SELECT count(*) FROM prepaid.alarm WHERE kind = 'command_failed' AND meter_id = 16")" = 1 ]
ok $? "a write the meter refuses fails with its SERR and raises command_failed"

stats=$(exec 3<>"/dev/tcp/127.0.0.1/$SPORT" && cat <&3)
grep -q '^frames_in  *[1-9]' <<<"$stats" && grep -q '^command_latency_p99_ms' <<<"$stats"
ok $? "the stats port answers with the counters"

stop m1; stop gw
stop d40 TERM
rc=$?
[ $rc = 0 ]; ok $? "SIGTERM: the daemon drains and exits 0 with no valgrind error (exit $rc)"
taken=$(grep -o 'readings_taken *[0-9]*' "$WORK/d40.log" | tail -1 | awk '{print $2}')
written=$(grep -o 'readings_written *[0-9]*' "$WORK/d40.log" | tail -1 | awk '{print $2}')
rows=$(q -c "SELECT count(*) FROM prepaid.reading")
spool_open=$(cat "$WORK"/spool-d40/*.spool | awk '$1 == "E" {e[$2] = 1} $1 == "K" {delete e[$2]} END {print length(e)}')
[ -n "$taken" ] && [ "$taken" = "$written" ] && [ "$rows" = "$written" ] && [ "$spool_open" = 0 ]
ok $? "every reading taken was written before exit ($taken taken, $written written, $rows rows, $spool_open batches open in the spool)"
[ "$(q -c "SELECT count(*) FROM prepaid.meter_connection")" = 0 ] && \
	[ "$(q -c "SELECT online FROM prepaid.gateway WHERE serial = 'GW0001'")" = f ]
ok $? "after the drain no meter is recorded as connected and the gateway is offline"

# --replay: two polls of meter 2 (energy block + status word 3) at two instants
energy() { perl "$CLIENT" frame 000000000002 91 "00FF0100${1}00000000000000000000000000000000"; }
{
	echo "# time, frame"
	echo "2026-11-01T00:00:00Z $(energy 00897645)"
	echo "2026-11-01T00:00:00Z $(perl "$CLIENT" frame 000000000002 91 030500040000)"
	echo "2026-11-01T00:30:00Z $(energy 00897745)"
	echo "2026-11-01T00:30:00Z $(perl "$CLIENT" frame 000000000002 91 03050004)"
} >"$WORK/replay.fixed"
"$INGEST" --dsn "dbname=$DB" --name replay40 --spool-dir "$WORK/spool-replay" --replay "$WORK/replay.fixed" \
	>"$WORK/replay.log" 2>&1
rc=$?
got=$(q -c "SELECT string_agg(read_at || '=' || energy_wh || '/' || coalesce(relay_open::text, '-'), ' ' ORDER BY read_at)
	FROM prepaid.reading WHERE meter_id = 2 AND batch_id IN (SELECT batch_id FROM prepaid.ingest_batch WHERE daemon = 'replay40')")
[ $rc = 0 ] && [ "$got" = "2026-11-01 00:00:00+00=457689000/false 2026-11-01 00:30:00+00=457789000/-" ]
ok $? "--replay decodes the frames into readings (exact Wh, relay state) and exits 0 (got: $got)"

# SIGHUP re-reads --config: a file with an error is refused whole (no line of
# it applied) and the daemon runs on with its settings; a good file applies
log_has() {	# log_has FILE TEXT: waits up to 10 s for a line containing TEXT
	local i
	for i in $(seq 1 100); do grep -qF -- "$2" "$1" && return 0; sleep 0.1; done
	return 1
}
HPORT=$(free_tcp_port)
printf 'log-level = info\nbatch-size = 500\n' >"$WORK/h40.conf"
start_daemon h40 "$HPORT" --config "$WORK/h40.conf"
printf 'log-level = debug\nbatch-size = lots\n' >"$WORK/h40.conf"
kill -HUP "${PIDS[h40]}"
log_has "$WORK/h40.log" "keeping the current settings" && \
	log_has "$WORK/h40.log" "SIGHUP: reloading the meter map (log level info)" && \
	grep -qF -- '--batch-size: expected an integer' "$WORK/h40.log" && kill -0 "${PIDS[h40]}"
ok $? "SIGHUP with an invalid --config: the error is logged, nothing of the file is applied, the daemon runs on"
printf 'log-level = debug\nbatch-size = 800\n' >"$WORK/h40.conf"
kill -HUP "${PIDS[h40]}"
log_has "$WORK/h40.log" "SIGHUP: reloading the meter map (log level debug)"
r=$?
stop h40 TERM
rc=$?
[ $r = 0 ] && [ $rc = 0 ]
ok $? "SIGHUP with a valid --config applies it (log level debug), and SIGTERM still exits 0"
exit $fail
