#!/usr/bin/env bash
# Reading insert benchmark (called by scripts/bench.sh with BENCH_DB,
# BENCH_TMP, METERS, SMOKE and PGHOST/PGPORT; BENCH_ONLY=reading): the
# park of bench/setup_settle.sql (METERS meters, readings up to slot 2,
# rolled up), then its next reading of every meter -- one appended reading
# per meter -- written into prepaid.reading:
#   1. COPY with every trigger (classification, meter_latest, settle wake-up)
#   2. the same COPY with the triggers disabled (session_replication_role =
#      replica): the baseline
#   3. the daemon's staged path: COPY into its temporary table, then
#      prepaid.ingest_batch_write() (exactly-once batch row, INSERT ... SELECT)
#   4. the rollup catch-up of those readings (prepaid.rollup_catch_up())
# Each timed run starts from a fresh copy of the prepared database with its
# tables in shared buffers (pg_prewarm), as a running park has them; the
# median of RUNS runs is printed. Checks: every meter_latest row moved to
# the new reading, nothing quarantined, and the caught-up rollups equal a
# rebuild from the readings.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=${BENCH_DB:-prepaid_bench}_reading
TMP=${BENCH_TMP:-$(mktemp -d)}/reading
METERS=${METERS:-100000}
RUNS=3
[ -n "${SMOKE:-}" ] && RUNS=1
mkdir -p "$TMP"
chmod 755 "$TMP"
q() { psql -qXAt -d "$1" -v ON_ERROR_STOP=1 "${@:2}"; }
cleanup() {
	for d in "$DB" "${DB}_run"; do
		psql -qX -d postgres -c "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT

# the prepared park: readings 0..2 of every meter, rolled up
cleanup
psql -qX -d postgres -c "CREATE DATABASE $DB" >/dev/null
q "$DB" -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_prepaid CASCADE" \
	-c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
	-c "UPDATE prepaid.job SET enabled = false" -f "$ROOT/bench/setup_settle.sql" >/dev/null
q "$DB" -c "SELECT bench.setup_tariffs()" >/dev/null
prop=$(q "$DB" -c "SELECT bench.setup_park('reading', $METERS, '$(date -u -d '-3 days' +%F)')")
q "$DB" -c "SELECT bench.add_readings($prop, 2, 2)" -c "SELECT prepaid.rollup_catch_up()" >/dev/null
# the next slot, as a COPY file (generated in a transaction that is rolled back)
q "$DB" >/dev/null <<SQL
BEGIN;
SELECT bench.add_readings($prop, 3, 3);
\copy (SELECT * FROM prepaid.reading r WHERE r.read_at > (SELECT max(read_at) FROM prepaid.rollup_cursor) ORDER BY r.property_id, r.meter_id) TO '$TMP/next.copy'
\copy (SELECT property_id, meter_id, read_at, energy_wh, rate_wh, voltage_a, voltage_b, voltage_c, current_a, current_b, current_c, power_kw, power_a_kw, power_b_kw, power_c_kw, power_factor, frequency_hz, demand_kw, status_words, relay_open, (meter_time AT TIME ZONE 'Asia/Shanghai') FROM prepaid.reading r WHERE r.read_at > (SELECT max(read_at) FROM prepaid.rollup_cursor) ORDER BY r.property_id, r.meter_id) TO '$TMP/stage.copy'
ROLLBACK;
VACUUM ANALYZE;
CHECKPOINT;
SQL
rows=$(wc -l <"$TMP/next.copy")

# fresh copy of the prepared database, warmed; prints nothing
fresh() {
	psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS ${DB}_run" \
		-c "CREATE DATABASE ${DB}_run TEMPLATE $DB" >/dev/null
	q "${DB}_run" -c "SELECT count(pg_prewarm(c.oid)) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'prepaid' AND c.relkind IN ('r', 'i')" >/dev/null
}
# runs a psql script on a fresh copy; prints the seconds of its timed step
timed() {
	fresh
	q "${DB}_run" -c "SET client_min_messages = warning" -f - <<SQL | tail -1
$1
SELECT clock_timestamp() AS t0 \gset
$2
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 3);
SQL
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
runs() { for _ in $(seq 1 "$RUNS"); do timed "$1" "$2"; done | median; }

copy="\\copy prepaid.reading FROM '$TMP/next.copy'"
with=$(runs "" "$copy")
without=$(runs "SET session_replication_role = replica;" "$copy")
stage="CREATE TEMP TABLE ingest_stage (property_id bigint, meter_id bigint, read_at timestamptz,
	energy_wh bigint, rate_wh bigint[], voltage_a numeric, voltage_b numeric, voltage_c numeric,
	current_a numeric, current_b numeric, current_c numeric, power_kw numeric, power_a_kw numeric,
	power_b_kw numeric, power_c_kw numeric, power_factor numeric, frequency_hz numeric,
	demand_kw numeric, status_words integer[], relay_open boolean, meter_time timestamp);"
staged=$(runs "$stage" "BEGIN;
\\copy pg_temp.ingest_stage FROM '$TMP/stage.copy'
SELECT inserted FROM prepaid.ingest_batch_write('bench', 1, $rows);
COMMIT;")
awk -v n="$rows" -v w="$with" -v wo="$without" -v s="$staged" 'BEGIN {
	printf "reading insert: %d rows in %.3f s = %.0f rows/s; same rows with triggers disabled: %.3f s; ratio %.2f [target <= 0.7 s at 100,000 rows]\n", n, w, n / w, wo, wo / w;
	printf "reading insert, staged (COPY into the daemon'"'"'s temporary table + ingest_batch_write): %d rows in %.3f s = %.0f rows/s; ratio to the raw COPY without triggers %.2f\n", n, s, n / s, wo / s }'

# a copy written with the triggers is checked, then caught up (timed)
fresh
q "${DB}_run" -c "\\copy prepaid.reading FROM '$TMP/next.copy'"
check=$(q "${DB}_run" -c "SELECT count(*) FILTER (WHERE l.read_at <> r.read_at) || ',' ||
	(SELECT count(*) FROM prepaid.quarantine)
	FROM prepaid.meter_latest l JOIN prepaid.reading r USING (property_id, meter_id)
	WHERE r.read_at > (SELECT max(read_at) FROM prepaid.rollup_cursor)")
cu=$(q "${DB}_run" -f - <<'SQL'
SELECT clock_timestamp() AS t0 \gset
SELECT prepaid.rollup_catch_up() AS n \gset
SELECT :n || ' ' || round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 3);
SQL
)
digest="SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
	SELECT concat_ws(':', 'd', meter_id, day, energy_wh, sharp_kwh, peak_kwh, flat_kwh, valley_kwh) AS x
	  FROM prepaid.meter_energy_daily
	UNION ALL SELECT concat_ws(':', 'm', meter_id, month, energy_wh, sharp_kwh, peak_kwh, flat_kwh, valley_kwh)
	  FROM prepaid.meter_energy_monthly
	UNION ALL SELECT concat_ws(':', 'h', hour, energy_wh) FROM prepaid.property_energy_hourly WHERE energy_wh <> 0
	UNION ALL SELECT concat_ws(':', 'e', meter_id, day, samples, voltage_a_sum, voltage_a_min, current_a_sum, power_sum, pf_sum)
	  FROM prepaid.electrical_daily) s"
before=$(q "${DB}_run" -c "$digest")
q "${DB}_run" -c "SELECT prepaid.rollup_rebuild(property_id) FROM prepaid.property" >/dev/null
after=$(q "${DB}_run" -c "$digest")
same=ok
[ "$before" = "$after" ] || same=DIFFERS
awk -v c="$cu" -v m="$METERS" -v s="$same" 'BEGIN { split(c, a, " ");
	printf "rollup catch-up: %d readings of %d meters in %.3f s = %.0f readings/s (one per meter, every rollup row updated); equal to a rebuild: %s\n", a[1], m, a[2], a[1] / a[2], s }'
[ "$check" = "0,0" ] || { echo "reading bench: meter_latest not moved or rows quarantined ($check)"; exit 1; }
[ "$same" = ok ] || { echo "reading bench: the caught-up rollups differ from a rebuild"; exit 1; }
