#!/usr/bin/env bash
# prepaid-ingest with prepaid-sim: 200 meters (40 behind 4 gateways) read in
# accelerated time (1 h per wall second); every reading matches what the
# simulator reported (ground-truth CSV: energy, rate registers, voltages,
# currents, powers, PF, frequency, demand, status word 3, meter clock);
# unknown meters, an unknown gateway and bad checksums are quarantined; a
# cut-off decided by settlement reaches the simulated meter and its
# consumption stops, a recharge restores it; SIGTERM flushes everything.
set -u
cd "$(dirname "$0")"
source ./ingest_lib.sh
echo "1..15"
setup_db prepaid_ing41 200 4 10 1
PORT=$(free_tcp_port)
SCALE=3600
T=$(date -u -d '-6 days' +%Y-%m-%dT%H:%M:%SZ)
W=$(date +%s.%N)
FAULTY=000000000005

start_daemon d41 "$PORT" --time-scale $SCALE --time-start "$T@$W" --poll full \
	--batch-delay 200 --request-timeout 500 --stats-interval 1 --command-poll 1000
start_sim sim41 --port "$PORT" --time-scale $SCALE --time-start "$T@$W" --truth "$WORK/truth.csv" \
	--reconnect 200 --faults "bad_checksum~5%@$FAULTY,unknown_meter:2,unknown_gateway:1"

wait_for 40 "SELECT count(DISTINCT meter_id) = 200 FROM prepaid.reading"
ok $? "readings arrive from all 200 meters, direct and behind gateways"
wait_for 20 "SELECT count(*) = 200 FROM prepaid.meter_connection WHERE daemon = 'd41'"
ok $? "prepaid.meter_connection lists the 200 meters as held by d41"

wait_for 20 "SELECT count(*) FILTER (WHERE reason = 'unknown_meter') >= 2
	AND count(*) FILTER (WHERE reason = 'unknown_gateway') >= 1
	AND count(*) FILTER (WHERE reason = 'bad_frame' AND frame IS NOT NULL) >= 1
	FROM prepaid.quarantine WHERE source = 'frame'"
ok $? "the simulator's unknown meters, unknown gateway and bad checksums are quarantined, each with its reason"

# cut-off: meter 1 is prepaid with a zero balance; settling its consumption
# takes it below the credit limit, the supply decision queues relay_open
wait_for 40 "SELECT (SELECT count(*) FROM prepaid.settle()) >= 0 AND EXISTS (
	SELECT 1 FROM prepaid.command WHERE meter_id = 1 AND kind = 'relay_open' AND status = 'acknowledged')"
ok $? "settlement cuts meter 1 off: relay_open queued, sent and acknowledged"
cut=$(q -c "SELECT (reply->>'relay_open') || ',' || claimed_by FROM prepaid.command WHERE meter_id = 1 AND kind = 'relay_open'")
[ "$cut" = "true,d41" ] && [ "$(q -c "SELECT relay_actual FROM prepaid.meter WHERE meter_id = 1")" = open ]
ok $? "the read-back of status word 3 shows the relay open; meter.relay_actual = open ($cut)"
acked=$(q -c "SELECT finished_at FROM prepaid.command WHERE meter_id = 1 AND kind = 'relay_open'")
wait_for 20 "SELECT count(*) >= 3 AND count(DISTINCT energy_wh) = 1 AND bool_and(relay_open)
	FROM prepaid.reading WHERE meter_id = 1 AND received_at > '$acked'::timestamptz + interval '0.5 s'"
ok $? "while cut off the meter reports its relay open and its consumption stops"

q -c "SELECT prepaid.recharge(1, 100.00, 'platform', 'test-41')" >/dev/null
wait_for 20 "SELECT status = 'acknowledged' AND NOT (reply->>'relay_open')::boolean
	FROM prepaid.command WHERE meter_id = 1 AND kind = 'relay_close'"
ok $? "a recharge queues relay_close; acknowledged with the relay closed"
closed_at=$(q -c "SELECT finished_at FROM prepaid.command WHERE meter_id = 1 AND kind = 'relay_close'")
wait_for 20 "SELECT count(*) >= 3 AND NOT bool_or(relay_open) AND max(energy_wh) > (
	SELECT max(energy_wh) FROM prepaid.reading WHERE meter_id = 1 AND received_at <= '$closed_at')
	FROM prepaid.reading WHERE meter_id = 1 AND received_at > '$closed_at'::timestamptz + interval '0.5 s'"
ok $? "after the recharge consumption resumes"

# freeze reads (F9) and a broadcast time sync, as the freeze job queues them
q -c "INSERT INTO prepaid.command (property_id, meter_id, kind, payload) VALUES
	(1, 4, 'read_frozen', jsonb_build_object('freeze', 'month', 'frozen_at', '2026-11-01 00:00+08', 'di', '0001FF01')),
	(1, 8, 'read_daily_frozen', jsonb_build_object('freeze', 'day', 'frozen_at', '2026-11-20 00:00+08', 'di', '05060101')),
	(1, 3, 'time_sync', NULL)" -c "NOTIFY prepaid_command" >/dev/null
wait_for 20 "SELECT count(*) = 3 FROM prepaid.command WHERE kind IN ('read_frozen', 'read_daily_frozen', 'time_sync')
	AND status = 'acknowledged'"
r=$?
frz=$(q -c "SELECT string_agg(f.meter_id || ':' || f.kind || ':' || (f.energy_wh = (c.reply->>'energy_wh')::bigint)
	|| ':' || cardinality(f.rate_wh), ' ' ORDER BY f.meter_id)
	FROM prepaid.freeze f JOIN prepaid.command c ON c.meter_id = f.meter_id AND c.kind LIKE 'read%frozen'")
[ $r = 0 ] && [ "$frz" = "4:month:true:4 8:day:true:4" ]
ok $? "month and daily freeze reads land in prepaid.freeze with their rate registers; time sync is broadcast ($frz)"

stop sim41 TERM
stop d41 TERM
rc=$?
[ $rc = 0 ]; ok $? "SIGTERM: the daemon exits 0"
taken=$(grep -o 'readings_taken *[0-9]*' "$WORK/d41.log" | tail -1 | awk '{print $2}')
rows=$(q -c "SELECT count(*) FROM prepaid.reading")
quar=$(q -c "SELECT count(*) FROM prepaid.quarantine WHERE source = 'reading'")
inserted=$(q -c "SELECT sum(inserted) FROM prepaid.ingest_batch WHERE daemon = 'd41'")
[ "$taken" = "$rows" ] && [ "$rows" = "$inserted" ] && [ "$quar" = 0 ]
ok $? "every reading taken is stored once ($taken taken, $rows rows, $inserted inserted by batches, $quar quarantined)"

# --- compare with the simulator's ground truth ---------------------------
q -c "CREATE TABLE truth (sim_time timestamptz, address text, event text, di text, value text,
	energy_wh bigint, rate_wh text, relay text, meter_time text, fault text, line serial)" >/dev/null
q -c "\\copy truth (sim_time, address, event, di, value, energy_wh, rate_wh, relay, meter_time, fault) FROM '$WORK/truth.csv' (FORMAT csv, HEADER)"
# k-th read reply of a DI against the k-th reading of the meter (meter 1's
# commands read status word 3 besides its polls: left out of that DI)
cmp() {
	q -c "WITH t AS (SELECT address, value, energy_wh, rate_wh,
			row_number() OVER (PARTITION BY address ORDER BY sim_time, line) AS k
			FROM truth WHERE event = 'read' AND di = '$1' AND address <> '$FAULTY'
			AND NOT (di = '04000503' AND address = '000000000001')),
		r AS (SELECT m.address, r.*, row_number() OVER (PARTITION BY r.meter_id ORDER BY r.read_at) AS k
			FROM prepaid.reading r JOIN prepaid.meter m USING (property_id, meter_id)
			WHERE m.address <> '$FAULTY' AND NOT ('$1' = '04000503' AND m.meter_id = 1))
		SELECT count(*) FILTER (WHERE t.k IS NULL) || '/' || count(*) FILTER (WHERE t.k IS NOT NULL AND ($2) IS DISTINCT FROM ($3))
		FROM r LEFT JOIN t USING (address, k)"
}
res=$(cmp 0001FF00 "r.energy_wh" "t.energy_wh")
res2=$(cmp 0001FF00 "coalesce(array_to_string(r.rate_wh, ';'), '')" "coalesce(t.rate_wh, '')")
[ "$res" = 0/0 ] && [ "$res2" = 0/0 ]
ok $? "energy and rate registers of every reading equal the simulator's (readings without truth / mismatches: $res, $res2)"
bad=""
for spec in "0201FF00|concat_ws(';', r.voltage_a, r.voltage_b, r.voltage_c)" \
	"0202FF00|concat_ws(';', r.current_a, r.current_b, r.current_c)" \
	"0203FF00|concat_ws(';', r.power_kw, r.power_a_kw, r.power_b_kw, r.power_c_kw)" \
	"02060000|r.power_factor::text" "02800002|r.frequency_hz::text" "02800004|r.demand_kw::text" \
	"04000503|r.status_words[3]::text" "04000102|to_char(r.meter_time AT TIME ZONE 'Asia/Shanghai', 'HH24:MI:SS')"; do
	res=$(cmp "${spec%%|*}" "${spec#*|}" "t.value")
	[ "$res" = 0/0 ] || bad="$bad ${spec%%|*}=$res"
done
[ -z "$bad" ]; ok $? "voltages, currents, powers, PF, frequency, demand, status word 3 and meter clock match too${bad:+ (bad:$bad)}"
missing=$(q -c "WITH t AS (SELECT address, energy_wh, row_number() OVER (PARTITION BY address ORDER BY sim_time, line) AS k,
		count(*) OVER (PARTITION BY address) AS n
		FROM truth WHERE event = 'read' AND di = '0001FF00' AND address <> '$FAULTY'),
	r AS (SELECT m.address, row_number() OVER (PARTITION BY r.meter_id ORDER BY r.read_at) AS k
		FROM prepaid.reading r JOIN prepaid.meter m USING (property_id, meter_id))
	SELECT count(*) FILTER (WHERE r.k IS NULL) || '/' || count(*) FILTER (WHERE r.k IS NULL AND t.k < t.n)
	FROM t LEFT JOIN r USING (address, k)")
[ "${missing#*/}" = 0 ]
ok $? "no reading the simulator answered is missing, except polls cut short when it stopped (missing / not last: $missing)"
res=$(q -c "SELECT count(*) FROM prepaid.reading r JOIN prepaid.meter m USING (property_id, meter_id)
	WHERE m.address = '$FAULTY' AND NOT EXISTS (SELECT 1 FROM truth t WHERE t.address = m.address
		AND t.di = '0001FF00' AND t.energy_wh = r.energy_wh AND coalesce(t.fault, '') = '')")
n5=$(q -c "SELECT count(*) FROM prepaid.reading WHERE meter_id = 5")
[ "$res" = 0 ] && [ "$n5" -gt 0 ]
ok $? "the meter with corrupted replies still gets readings ($n5), each one a value it really sent ($res not)"
exit $fail
