#!/usr/bin/env bash
# How prepaid-ingest makes its polls, against hand-built traffic
# (ingest_client.pl): an energy poll reads status word 3 only when the relay
# may be open or have changed -- relay_open is NULL otherwise, never while
# the relay is open, and read at least every --status-every polls; a
# command for a meter behind a slow gateway goes out ahead of the other
# meters' polls queued on that socket; at most --poll-window polls are
# under way at once.
set -u
cd "$(dirname "$0")"
source ./ingest_lib.sh
echo "1..12"
setup_db prepaid_ing44 12 2 5 0 # 1-2 direct, 3-7 behind GW0001, 8-12 behind GW0002
PORT=$(free_tcp_port)
SPORT=$(free_tcp_port)
stat() { (exec 3<>"/dev/tcp/127.0.0.1/$SPORT" && cat <&3) | awk -v n="$1" '$1 == n {print $2}'; }

# --- status word 3 --------------------------------------------------------
start_daemon s44 "$PORT" --time-scale 1800 --time-start now-2d --poll energy --batch-delay 100 \
	--command-poll 500 --stats-port "$SPORT"
CONTROL_LOG=$WORK/control.log perl "$CLIENT" meter "$PORT" 000000000001 120 &
PIDS[m1]=$!
perl "$CLIENT" gateway "$PORT" GW0001 120 000000000003 000000000004 000000000005 000000000006 =000000000007 &
PIDS[gw1]=$!
wait_for 60 "SELECT count(*) >= 25 FROM prepaid.reading WHERE meter_id = 3"
# k-th reading of meter 3 (its register moves, relay closed): status word 3
# at the first poll, then at least every 10th, NULL in between
res=$(q -c "WITH r AS (SELECT relay_open, status_words, row_number() OVER (ORDER BY read_at) AS k
		FROM prepaid.reading WHERE meter_id = 3),
	nn AS (SELECT k, k - lag(k, 1, 0::bigint) OVER (ORDER BY k) AS gap FROM r WHERE relay_open IS NOT NULL)
	SELECT (SELECT min(k) FROM nn) || '/' || (SELECT max(gap) FROM nn) || '/'
		|| count(*) FILTER (WHERE relay_open IS NULL) || '/' || count(*) || '/'
		|| bool_and((relay_open IS NULL) = (status_words IS NULL)) || '/' || bool_or(relay_open)
	FROM r")
IFS=/ read -r first gap nulls total same anyopen <<<"$res"
[ "$first" = 1 ] && [ "$gap" -le 10 ] && [ $((nulls * 3)) -gt $((total * 2)) ] && [ "$same" = true ] && [ "$anyopen" = false ]
ok $? "a meter whose register moves: status word 3 at its first poll and at least every 10th, relay_open and status_words NULL in between (first/longest gap/NULL/all/consistent/open: $res)"
res=$(q -c "SELECT count(*) || '/' || count(*) FILTER (WHERE relay_open = false) FROM prepaid.reading WHERE meter_id = 7")
[ "${res%/*}" -ge 3 ] && [ "${res%/*}" = "${res#*/}" ]
ok $? "a meter whose register does not move has status word 3 read at every poll (readings / relay closed: $res)"
[ "$(stat polls_status_skipped)" -gt 0 ]
ok $? "the skipped status reads are counted (polls_status_skipped)"
# six meters answering every second for 25 s and more: each is reported as
# seen once (meter.last_seen is written at most once a minute anyway)
seen=$(stat meters_seen_reported)
[ "$seen" -ge 6 ] && [ "$seen" -le 12 ] && \
	[ "$(q -c "SELECT count(*) FROM prepaid.meter WHERE meter_id IN (1, 3, 4, 5, 6, 7) AND last_seen IS NOT NULL")" = 6 ]
ok $? "meters are reported as seen at most once a minute, and meter.last_seen is set ($seen reports for 6 meters)"

q -c "SELECT prepaid.command_queue(1, 'relay_open')" >/dev/null
wait_for 15 "SELECT status = 'acknowledged' FROM prepaid.command WHERE meter_id = 1 AND kind = 'relay_open'"
acked=$(q -c "SELECT finished_at FROM prepaid.command WHERE meter_id = 1 AND kind = 'relay_open'")
wait_for 20 "SELECT count(*) >= 4 FROM prepaid.reading WHERE meter_id = 1 AND received_at > '$acked'::timestamptz + interval '1 s'"
res=$(q -c "SELECT count(*) || '/' || count(*) FILTER (WHERE relay_open) FROM prepaid.reading
	WHERE meter_id = 1 AND received_at > '$acked'::timestamptz + interval '1 s'")
[ "${res%/*}" -ge 4 ] && [ "${res%/*}" = "${res#*/}" ]
ok $? "while the relay is open every poll reads it: relay_open is true, never NULL (readings / open: $res)"
# valid-until (N3..N8, the meter's local time) of the trip: at 1800x an hour
# of the meter's clock is 2 wall seconds; the command stays valid for twice
# the request timeout (5 s) instead, 5 simulated hours
until=$(awk '$2 == "1A" {print $3 " " $4}' "$WORK/control.log" | tail -1)
hours=$(q -c "SELECT round(extract(epoch FROM '$until'::timestamp AT TIME ZONE 'Asia/Shanghai' - max(read_at)) / 3600, 1)
	FROM prepaid.reading WHERE meter_id = 1 AND received_at <= '$acked'")
awk -v h="${hours:-0}" 'BEGIN { exit !(h >= 4 && h <= 7) }'
ok $? "under accelerated time a relay command stays valid for twice the request timeout (valid until $until: $hours simulated hours after the last reading)"
q -c "SELECT prepaid.command_queue(1, 'relay_close')" >/dev/null
wait_for 15 "SELECT status = 'acknowledged' FROM prepaid.command WHERE meter_id = 1 AND kind = 'relay_close'"
closed=$(q -c "SELECT finished_at FROM prepaid.command WHERE meter_id = 1 AND kind = 'relay_close'")
wait_for 20 "SELECT count(*) FILTER (WHERE relay_open IS NULL) >= 3 FROM prepaid.reading
	WHERE meter_id = 1 AND received_at > '$closed'::timestamptz"
r=$?
res=$(q -c "SELECT count(*) FILTER (WHERE relay_open = false) || '/' || count(*) FILTER (WHERE relay_open)
	FROM prepaid.reading WHERE meter_id = 1 AND received_at > '$closed'::timestamptz + interval '1 s'")
[ $r = 0 ] && [ "${res#*/}" = 0 ]
ok $? "closed again and consuming: back to one exchange per poll (closed / open after: $res)"

# --- a command overtakes the polls queued on a slow gateway ---------------
DELAY_MS=400 perl "$CLIENT" gateway "$PORT" GW0002 120 000000000008 000000000009 000000000010 \
	000000000011 000000000012 &
PIDS[gw2]=$!
wait_for 30 "SELECT count(DISTINCT meter_id) = 5 FROM prepaid.reading WHERE meter_id BETWEEN 8 AND 12"
# every meter of GW0002 is always due (5 polls of 400 ms each per simulated
# half hour of one wall second): behind one request in flight, a command
# waits 400 ms at most, then its own reply takes 400 ms
slow=""
for i in 12 10 8 11; do # not in the socket's round-robin order
	q -c "SELECT prepaid.command_queue($i, 'relay_open')" >/dev/null
	wait_for 15 "SELECT status = 'acknowledged' FROM prepaid.command WHERE meter_id = $i AND kind = 'relay_open'"
	slow="$slow $(q -c "SELECT round((reply->>'ack_ms')::numeric) FROM prepaid.command WHERE meter_id = $i AND kind = 'relay_open'")"
done
max=$(tr ' ' '\n' <<<"$slow" | sort -n | tail -1)
[ -n "$max" ] && [ "$max" -lt 1100 ]
ok $? "relay commands to meters behind a gateway busy with polls are acknowledged within two replies (ack ms:$slow)"
res=$(q -c "SELECT count(*) FILTER (WHERE (reply->>'claimed_ms')::numeric <= (reply->>'sent_ms')::numeric
		AND (reply->>'sent_ms')::numeric <= (reply->>'ack_ms')::numeric) || '/' || count(*)
	FROM prepaid.command WHERE meter_id BETWEEN 8 AND 12")
[ "$res" = 4/4 ]
ok $? "each reply records when the daemon had the claim and sent the frame, before the meter's acknowledgement ($res)"
stop gw1
stop gw2
stop m1
stop s44 TERM
ok $? "the daemon stops cleanly"

# --- the poll window --------------------------------------------------------
start_daemon w44 "$PORT" --time-scale 1800 --time-start now-2d --poll energy --batch-delay 100 \
	--poll-window 2 --stats-port "$SPORT"
perl "$CLIENT" gateway "$PORT" GW0001 120 000000000003 000000000004 000000000005 000000000006 000000000007 &
PIDS[gw1]=$!
DELAY_MS=100 perl "$CLIENT" gateway "$PORT" GW0002 120 000000000008 000000000009 000000000010 \
	000000000011 000000000012 &
PIDS[gw2]=$!
t0=$(q -c "SELECT now()")
wait_for 30 "SELECT count(DISTINCT meter_id) = 10 FROM prepaid.reading WHERE received_at > '$t0'"
ok $? "with --poll-window 2 every meter is still read"
[ "$(stat polls_in_progress_max)" = 2 ]
ok $? "and never more than 2 polls are under way (polls_in_progress_max $(stat polls_in_progress_max))"
stop gw1
stop gw2
stop w44 TERM
exit $fail
