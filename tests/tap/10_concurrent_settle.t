#!/usr/bin/env bash
# Two real sessions settle at the same time and nothing is charged twice.
# Session A settles half the meters and holds its transaction open; session B
# runs meanwhile and must take only the other half (SKIP LOCKED); after A
# commits, a third run finds nothing left. Then many sessions race on the
# same meters with new readings; each meter's charged energy must equal its
# register advance exactly. Runs on the test cluster (PGHOST/PGPORT from make test).
set -u
db=prepaid_conc_$$
PSQL=(psql -qXAt -v ON_ERROR_STOP=1 -d "$db")
n=0
fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
is() { [ "$1" = "$2" ]; local r=$?; [ $r = 0 ] || echo "# got '$1', expected '$2'"; ok $r "$3"; }
psql -qX -d postgres -c "CREATE DATABASE $db" >/dev/null || { echo "1..0 # cannot create database"; exit 1; }
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null' EXIT
echo "1..17"

"${PSQL[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_prepaid CASCADE;
UPDATE prepaid.job SET enabled = false;
SELECT prepaid.tariff_put('{"name": "conc", "time_zone": "UTC", "prices": {"valley": 0.3, "peak": 1},
	"schedule": [{"from": "00:00", "to": "08:00", "period": "valley"}, {"from": "08:00", "to": "24:00", "period": "peak"}]}');
INSERT INTO prepaid.property (property_id, name) VALUES (1, 'p');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (1, 1, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id, credit_limit)
SELECT 1, a, 1, 1000 FROM generate_series(1, 200) a;
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id)
SELECT 1, m, lpad(m::text, 12, '0'), m, 1 FROM generate_series(1, 200) m;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
SELECT 1, m, t, (m * 1000 + k * (m % 7 + 1) * 137)
  FROM generate_series(1, 200) m,
	   LATERAL (SELECT k, timestamptz '2026-11-10 00:00Z' + k * interval '30 min' AS t
				  FROM generate_series(0, 6) k) s;
SQL

# A: the first 100 meters, transaction held open for 3 seconds
"${PSQL[@]}" -c "BEGIN" -c "SELECT meters FROM prepaid.settle(max_meters => 100)" \
	-c "SELECT pg_sleep(3)" -c "COMMIT" >"$PREPAID_TEST_TMP/a.out" 2>&1 &
apid=$!
# wait until A holds its locks (its settle has returned, it sleeps)
a_sleeping="SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(3)%' AND state = 'active'"
for _ in $(seq 1 100); do
	apg=$("${PSQL[@]}" -c "$a_sleeping")
	[ -n "$apg" ] && break
	sleep 0.1
done
# B in a session whose revenue slot (pid % 16) is not A's: concurrent writers
# add to different rows of the day's revenue, so B must not wait for A
b=again
for _ in $(seq 1 30); do
	b=$("${PSQL[@]}" -c "SELECT CASE WHEN pg_backend_pid() % 16 = ${apg:-0} % 16 THEN 'again'
		ELSE (SELECT meters || ',' || entries FROM prepaid.settle()) END")
	[ "$b" != again ] && break
done
is "$("${PSQL[@]}" -c "$a_sleeping")" "$apg" "B finished while A still held its transaction (no wait on the revenue rollup)"
wait $apid
a=$(head -1 "$PREPAID_TEST_TMP/a.out")
is "$a" "100" "session A settled 100 meters and held them"
is "$b" "100,100" "session B, concurrently, settled only the other 100 (SKIP LOCKED)"
is "$("${PSQL[@]}" -c "SELECT meters FROM prepaid.settle()")" "0" "after A commits nothing is left"
is "$("${PSQL[@]}" -c "SELECT count(*) FROM prepaid.ledger WHERE kind = 'energy'")" "200" \
	"one entry per meter, none twice"

# race: four sessions, each settling in small batches while readings arrive
for round in 1 2 3; do
	"${PSQL[@]}" -c "INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
		SELECT 1, m, timestamptz '2026-11-10 03:00Z' + ($round * 4 + k) * interval '30 min',
			   m * 1000 + (6 + $round * 4 + k) * (m % 7 + 1) * 137
		  FROM generate_series(1, 200) m, generate_series(1, 4) k" >/dev/null
	for s in 1 2 3 4; do
		"${PSQL[@]}" -c "SELECT prepaid.settle(batch_size => 7)" >/dev/null 2>>"$PREPAID_TEST_TMP/race.err" &
	done
	wait
done
"${PSQL[@]}" -c "SELECT prepaid.settle()" >/dev/null
is "$(cat "$PREPAID_TEST_TMP/race.err" 2>/dev/null | grep -c ERROR)" "0" "racing sessions raised no error"

# parallel settlement: three background workers split the accounts, each
# meter settled once, while a plain settle() races them
"${PSQL[@]}" -c "INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
	SELECT 1, m, timestamptz '2026-11-10 03:00Z' + (16 + k) * interval '30 min',
		   m * 1000 + (22 + k) * (m % 7 + 1) * 137
	  FROM generate_series(1, 200) m, generate_series(1, 2) k" >/dev/null
"${PSQL[@]}" -c "SELECT prepaid.settle()" >"$PREPAID_TEST_TMP/plain.out" 2>&1 &
par=$("${PSQL[@]}" -c "SELECT meters FROM prepaid.settle(workers => 3)")
wait
plain=$(grep -o '^([0-9]*' "$PREPAID_TEST_TMP/plain.out" | tr -d '(')
is "$((par + ${plain:-0}))" "200" "settle(workers => 3) and a concurrent settle() together settled each of the 200 meters once"
is "$("${PSQL[@]}" -c "SELECT count(DISTINCT meter_id) FROM prepaid.ledger WHERE kind = 'energy' AND period_to = timestamptz '2026-11-10 12:00Z'")" "200" \
	"every meter's entry reaches its last reading"
# every meter: charged energy = last register - first register
is "$("${PSQL[@]}" -c "SELECT count(*) FROM (
		SELECT m.meter_id, (max(r.energy_wh) - min(r.energy_wh)) / 1000.0 AS advance,
			   (SELECT sum(kwh) FROM prepaid.ledger l WHERE l.meter_id = m.meter_id AND l.kind = 'energy') AS charged
		  FROM prepaid.meter m JOIN prepaid.reading r USING (property_id, meter_id)
		 GROUP BY m.meter_id) x WHERE advance IS DISTINCT FROM charged")" "0" \
	"every meter was charged exactly its register advance"
is "$("${PSQL[@]}" -c "SELECT count(*) FROM prepaid.ledger a JOIN prepaid.ledger b
		ON a.meter_id = b.meter_id AND a.entry_id < b.entry_id AND a.kind = 'energy' AND b.kind = 'energy'
	   AND a.period_from < b.period_to AND b.period_from < a.period_to")" "0" \
	"no two entries of a meter cover the same time"
# lock order: a statement that moves many balances locks its accounts in key
# order, so it queues behind a session that takes accounts in that order too.
# Session A holds account 350; the bulk statement B (accounts 201 .. 400)
# must wait at 350 holding only 201 .. 349, so A can still take 357. (In the
# hash order of B's per-account sums, 357 comes before 350: locking in that
# order, as before, deadlocked here.)
"${PSQL[@]}" -c "INSERT INTO prepaid.account (property_id, account_id, customer_id)
	SELECT 1, a, 1 FROM generate_series(201, 400) a" >/dev/null
fee="INSERT INTO prepaid.ledger (property_id, account_id, kind, amount, note)"
"${PSQL[@]}" -c "BEGIN" -c "$fee VALUES (1, 350, 'property_fee', -1, 'A')" -c "SELECT pg_sleep(1)" \
	-c "$fee VALUES (1, 357, 'property_fee', -1, 'A')" -c "COMMIT" >"$PREPAID_TEST_TMP/lock_a.out" 2>&1 &
lpid=$!
sleep 0.5
"${PSQL[@]}" -c "$fee SELECT 1, a, 'property_fee', -2, 'B' FROM generate_series(400, 201, -1) a" \
	>"$PREPAID_TEST_TMP/lock_b.out" 2>&1
wait $lpid
is "$(cat "$PREPAID_TEST_TMP/lock_a.out" "$PREPAID_TEST_TMP/lock_b.out" | grep -c -i 'deadlock\|ERROR')" "0" \
	"a bulk balance change and a concurrent session end without a deadlock"
is "$("${PSQL[@]}" -c "SELECT count(*) FILTER (WHERE note = 'A') || ',' || count(*) FILTER (WHERE note = 'B') FROM prepaid.ledger WHERE kind = 'property_fee'")" "2,200" \
	"both committed all their entries"
# parallel settlement while its caller holds a row a worker needs (account
# 100 is in partition 1 of 2: blocks of 64 ids). The caller waits for its
# workers outside the lock manager, where the deadlock detector cannot see
# the cycle; the worker gives up at its lock_timeout, its work is rolled
# back, and the caller settles that partition itself instead of hanging.
"${PSQL[@]}" -c "INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
	SELECT 1, m, timestamptz '2026-11-10 12:30Z', m * 1000 + 25 * (m % 7 + 1) * 137
	  FROM generate_series(1, 200) m" >/dev/null
start=$(date +%s)
out=$(timeout 120 "${PSQL[@]}" -c "BEGIN" \
	-c "SELECT 'locked' FROM prepaid.account WHERE account_id = 100 FOR UPDATE" \
	-c "SELECT meters FROM prepaid.settle(workers => 2)" -c "COMMIT" 2>&1)
secs=$(($(date +%s) - start))
is "$(grep -c '^200$' <<<"$out")" "1" \
	"settle(workers => 2) settled all 200 meters while its caller held an account of the worker's partition"
is "$(grep -c 'settlement worker 1 failed: .*lock timeout' <<<"$out")" "1" \
	"the worker gave up waiting for the caller's lock; the caller settled its partition"
ok "$([ "$secs" -lt 60 ]; echo $?)" "no hang: the run ended in $secs s"
is "$("${PSQL[@]}" -c "SELECT count(*) FROM prepaid.verify_ledger()")" "0" "verify_ledger() is empty"
is "$("${PSQL[@]}" -c "SELECT (SELECT sum(entries) || '/' || sum(amount) FROM api.revenue_daily WHERE kind = 'energy')
		= (SELECT count(*) || '/' || sum(amount) FROM prepaid.ledger WHERE kind = 'energy')
	AND (SELECT count(*) FROM api.revenue_daily WHERE kind = 'energy')
		= (SELECT count(DISTINCT (l.created_at AT TIME ZONE p.time_zone)::date)
			 FROM prepaid.ledger l JOIN prepaid.property p USING (property_id) WHERE l.kind = 'energy')
	AND (SELECT count(*) FROM prepaid.revenue_daily WHERE kind = 'energy') > 1")" "t" \
	"the day's revenue, written by several sessions in their own slots, sums to the ledger: one row a day in api.revenue_daily"
exit $fail
