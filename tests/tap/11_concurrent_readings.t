#!/usr/bin/env bash
# Readings inserted by real concurrent sessions (extension/reading_accept.c,
# 91_rollups_apply.sql). A session appending to a meter whose meter_latest
# row another transaction has just moved waits for it and then follows its
# newest version (a later row moves meter_latest, an earlier one takes the
# SQL path and leaves it). Then four sessions insert readings out of order
# and delete some, while a fifth runs the rollup catch-up in a loop: at the
# end meter_latest and the rollup cursors are the newest readings and the
# rollups equal a rebuild from the readings. Runs on the test cluster
# (PGHOST/PGPORT from make test).
set -u
db=prepaid_readings_$$
PSQL=(psql -qXAt -v ON_ERROR_STOP=1 -d "$db")
n=0
fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
is() { [ "$1" = "$2" ]; local r=$?; [ $r = 0 ] || echo "# got '$1', expected '$2'"; ok $r "$3"; }
tmp=${PREPAID_TEST_TMP:-/tmp}/readings_$$
mkdir -p "$tmp"
psql -qX -d postgres -c "CREATE DATABASE $db" >/dev/null || { echo "1..0 # cannot create database"; exit 1; }
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null; rm -rf "$tmp"' EXIT
echo "1..9"

"${PSQL[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_prepaid CASCADE;
UPDATE prepaid.job SET enabled = false;
SELECT prepaid.tariff_put('{"name": "conc", "time_zone": "Asia/Shanghai", "prices": {"valley": 0.3, "peak": 1},
	"schedule": [{"from": "00:00", "to": "08:00", "period": "valley"}, {"from": "08:00", "to": "24:00", "period": "peak"}]}');
INSERT INTO prepaid.property (property_id, name, time_zone) VALUES (1, 'p', 'Asia/Shanghai');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (1, 1, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id) VALUES (1, 1, 1);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id, mode)
SELECT 1, m, lpad(m::text, 12, '0'), 1, 1, 'postpaid' FROM generate_series(1, 200) m;
-- reading k of meter m: every 50 minutes from 2026-11-10 00:00+08
CREATE FUNCTION public.r_at(k integer) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS
	$$ SELECT timestamptz '2026-11-10 00:00+08' + k * interval '50 min' $$;
CREATE FUNCTION public.r_wh(m integer, k integer) RETURNS bigint LANGUAGE sql IMMUTABLE AS
	$$ SELECT m * 100000 + k * (m % 7 + 1) * 137 + k * k $$;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
SELECT 1, m, public.r_at(0), public.r_wh(m, 0), 220.0 FROM generate_series(1, 200) m;
SELECT prepaid.rollup_catch_up();
SQL

# --- one meter, two sessions ---------------------------------------------
# A moves meter 1 to reading 2 and holds its transaction; B appends reading
# 3 meanwhile: B waits, then moves meter_latest to 3
"${PSQL[@]}" -c "BEGIN" \
	-c "INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES (1, 1, public.r_at(2), public.r_wh(1, 2))" \
	-c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null 2>"$tmp/a.err" &
apid=$!
a_sleeping="SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(2)%' AND state = 'active'"
for _ in $(seq 1 100); do
	[ "$("${PSQL[@]}" -c "$a_sleeping")" = 1 ] && break
	sleep 0.1
done
t0=$(date +%s.%N)
"${PSQL[@]}" -c "INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES (1, 1, public.r_at(3), public.r_wh(1, 3))" 2>"$tmp/b.err"
t1=$(date +%s.%N)
wait $apid
is "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a > 0.5) ? "waited" : "did not wait" }')" "waited" \
	"B waited for A's meter_latest row"
is "$("${PSQL[@]}" -c "SELECT read_at = public.r_at(3) FROM prepaid.meter_latest WHERE meter_id = 1")" "t" \
	"then moved meter_latest past A's reading to its own"
# the same with B's reading earlier than A's: meter_latest stays A's
"${PSQL[@]}" -c "BEGIN" \
	-c "INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES (1, 2, public.r_at(2), public.r_wh(2, 2))" \
	-c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null 2>>"$tmp/a.err" &
apid=$!
for _ in $(seq 1 100); do
	[ "$("${PSQL[@]}" -c "$a_sleeping")" = 1 ] && break
	sleep 0.1
done
"${PSQL[@]}" -c "INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh) VALUES (1, 2, public.r_at(1), public.r_wh(2, 1))" 2>>"$tmp/b.err"
wait $apid
is "$("${PSQL[@]}" -c "SELECT read_at = public.r_at(2) FROM prepaid.meter_latest WHERE meter_id = 2")" "t" \
	"an earlier reading inserted meanwhile leaves meter_latest at A's"
is "$(cat "$tmp/a.err" "$tmp/b.err" | grep -c ERROR)" "0" "no errors"

# --- four writers out of order, a catch-up in a loop ---------------------
# writer s owns meters s, s+4, ...; inserts readings 1..30 in a shuffled
# order (k*7 mod 30), one statement each, and deletes every 6th reading it
# has inserted; the catch-up session loops until the writers are done
writer() {
	local s=$1
	for i in $(seq 0 29); do
		k=$(( (i * 7) % 30 + 1 ))
		"${PSQL[@]}" -c "INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a)
			SELECT 1, m, public.r_at($k), public.r_wh(m, $k), 200.0 + $k FROM generate_series($s, 200, 4) m
			ON CONFLICT DO NOTHING" >/dev/null || echo "ERROR insert $k" >&2
		if [ $((i % 6)) = 5 ]; then
			"${PSQL[@]}" -c "DELETE FROM prepaid.reading WHERE meter_id % 4 = $s % 4 AND read_at = public.r_at($k)" \
				>/dev/null || echo "ERROR delete $k" >&2
		fi
	done
}
for s in 1 2 3 4; do writer $s 2>"$tmp/w$s.err" & done
wpids=$(jobs -p)
(while [ ! -f "$tmp/done" ]; do "${PSQL[@]}" -c "SELECT prepaid.rollup_catch_up()" || echo ERROR catch-up; done) \
	2>"$tmp/c.err" >"$tmp/c.out" &
cpid=$!
for p in $wpids; do [ "$p" = "$cpid" ] || wait "$p"; done
touch "$tmp/done"
wait $cpid
is "$(cat "$tmp"/w*.err "$tmp/c.err" "$tmp/c.out" | grep -c ERROR)" "0" "writers and catch-up raised no error"
echo "# the catch-up ran $(wc -l <"$tmp/c.out") times meanwhile, $(grep -vc '^0$' "$tmp/c.out") of them rolling readings up"
"${PSQL[@]}" -c "SELECT prepaid.rollup_catch_up()" >/dev/null
is "$("${PSQL[@]}" -c "SELECT count(*) FROM prepaid.meter m
	JOIN prepaid.meter_latest l USING (property_id, meter_id)
	WHERE l.read_at IS DISTINCT FROM (SELECT max(read_at) FROM prepaid.reading r WHERE r.meter_id = m.meter_id)")" "0" \
	"meter_latest is every meter's newest reading"
is "$("${PSQL[@]}" -c "SELECT count(*) FROM prepaid.rollup_cursor c JOIN prepaid.meter_latest l USING (property_id, meter_id)
	WHERE (c.read_at, c.energy_wh) IS DISTINCT FROM (l.read_at, l.energy_wh)")" "0" \
	"every rollup cursor is its meter's newest reading after the last catch-up"
digest="SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
	SELECT concat_ws(':', 'd', meter_id, day, energy_wh, peak_kwh, valley_kwh) AS x FROM prepaid.meter_energy_daily WHERE energy_wh <> 0
	UNION ALL SELECT concat_ws(':', 'm', meter_id, month, energy_wh, peak_kwh, valley_kwh) FROM prepaid.meter_energy_monthly WHERE energy_wh <> 0
	UNION ALL SELECT concat_ws(':', 'h', hour, energy_wh) FROM prepaid.property_energy_hourly WHERE energy_wh <> 0
	UNION ALL SELECT concat_ws(':', 'e', meter_id, day, samples, voltage_a_sum, voltage_a_min, voltage_a_max) FROM prepaid.electrical_daily) s"
before=$("${PSQL[@]}" -c "$digest")
rebuilt=$("${PSQL[@]}" -c "SELECT prepaid.rollup_rebuild(1)")
after=$("${PSQL[@]}" -c "$digest")
is "$before" "$after" "the rollups kept under concurrency equal a rebuild from the $rebuilt readings"
is "$("${PSQL[@]}" -c "SELECT count(*) > 0 FROM prepaid.meter_energy_daily")" "t" "(and there are rollups)"
exit $fail
