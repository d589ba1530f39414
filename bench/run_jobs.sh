#!/usr/bin/env bash
# Job benchmarks (called by scripts/bench.sh with BENCH_DB, METERS, SMOKE):
#  - alarms: prepaid.alarms_run() over every meter with a fresh reading
#    (about 4 % of them in some alarm condition), first run and steady state,
#    against bench.alarms_plpgsql() (one meter at a time) on the same state;
#  - freeze: the month-start freeze on the 1st, for every meter: queuing the
#    frozen-register reads, then computing each meter's month usage from two
#    month-start freezes, against bench.month_usage_plpgsql().
# Baselines run in a transaction that is rolled back, then the real job runs
# and commits; both results are digested and must be equal.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${BENCH_DB:?}
q() { psql -qXAt -d "$DB" -v ON_ERROR_STOP=1 "$@"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
now() { date +%s.%N; }

if [ "$(q -c "SELECT to_regclass('bench.meter_param') IS NOT NULL AND EXISTS (SELECT 1 FROM bench.meter_param)" 2>/dev/null)" != t ]; then
	psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
	trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true' EXIT
	q -c "CREATE EXTENSION pg_prepaid CASCADE" -c "UPDATE prepaid.job SET enabled = false" \
		-f bench/setup_settle.sql -f bench/baseline_settle.sql >/dev/null
	q -c "SELECT bench.setup_tariffs()" >/dev/null
	q -c "SELECT bench.setup_park('jobs', $METERS, (now() - interval '3 days')::date)" >/dev/null
fi
q -f bench/baseline_jobs.sql >/dev/null
meters=$(q -c "SELECT count(*) FROM prepaid.meter")

# ---- alarms ---------------------------------------------------------------
q >/dev/null <<'SQL'
UPDATE prepaid.meter SET power_threshold_kw = 5 WHERE meter_id % 100 = 3;
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh, voltage_a, voltage_b, voltage_c,
							 current_a, power_kw, power_factor, relay_open)
SELECT l.property_id, l.meter_id, now() - interval '1 minute', l.energy_wh + 100,
	   CASE m.meter_id % 100 WHEN 1 THEN 251.0 WHEN 2 THEN 181.0 ELSE 221.5 END,
	   CASE WHEN m.phase = 3 THEN 220.4 END,
	   CASE WHEN m.phase = 3 THEN CASE WHEN m.meter_id % 100 IN (19, 39) THEN 12.0 ELSE 219.8 END END,
	   2.5, CASE WHEN m.meter_id % 100 = 3 THEN 8.0 ELSE 0.55 END, 0.950,
	   m.meter_id % 100 = 4
  FROM prepaid.meter_latest l JOIN prepaid.meter m USING (property_id, meter_id);
VACUUM ANALYZE prepaid.meter_latest, prepaid.meter, prepaid.alarm, prepaid.account;
CREATE OR REPLACE FUNCTION bench.alarm_digest() RETURNS text LANGUAGE sql AS $$
	SELECT md5(coalesce(string_agg(concat_ws(':', property_id, meter_id, gateway_id, kind), ','
							  ORDER BY property_id, meter_id, gateway_id, kind), ''))
	  FROM prepaid.alarm WHERE cleared_at IS NULL
$$;
SQL
alarm_round() { # label
	local t0 t1 b0 b1 braised craised bd cd
	b0=$(now)
	bd=$(q -c "BEGIN" -c "SELECT raised FROM bench.alarms_plpgsql()" -c "SELECT bench.alarm_digest()" -c "ROLLBACK" | tr '\n' ' ')
	b1=$(now)
	t0=$(now)
	craised=$(q -c "SELECT coalesce(sum(raised), 0) FROM prepaid.alarms_run()")
	t1=$(now)
	cd=$(q -c "SELECT bench.alarm_digest()")
	braised=${bd%% *}
	local same=ok
	[ "$braised $cd " = "$bd" ] || same="DIFFERS (baseline: $bd; set-based: $craised $cd)"
	awk -v l="$1" -v m="$meters" -v c="$(secs "$t0" "$t1")" -v b="$(secs "$b0" "$b1")" -v r="$craised" -v s="$same" 'BEGIN {
		printf "alarms (%s): %d meters in %.3f s (%d alarms raised); PL/pgSQL baseline %.3f s, ratio %.1fx; same alarms: %s [target <= 1 s]\n",
			l, m, c, r, b, b / c, s }'
	[ "$same" = ok ]
}
alarm_round "first run" && alarm_round "steady state" || exit 1

# ---- freeze ---------------------------------------------------------------
# month starts in the park's zone: S0 = last month, S1 = this month
s0=$(q -c "SELECT (date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') - interval '1 month') AT TIME ZONE 'Asia/Shanghai'")
s1=$(q -c "SELECT date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai'")
q >/dev/null <<SQL
DELETE FROM prepaid.command WHERE kind IN ('read_frozen', 'read_daily_frozen');
DELETE FROM prepaid.freeze_slot; DELETE FROM prepaid.freeze; DELETE FROM prepaid.month_usage;
-- last month's slot was done; this month's slot opens at the benchmarked run
INSERT INTO prepaid.freeze_slot (property_id, kind, frozen_at, completed_at)
SELECT property_id, 'month', '$s0', '$s0' FROM prepaid.property;
INSERT INTO prepaid.freeze_slot (property_id, kind, frozen_at, completed_at)
SELECT property_id, 'day', d AT TIME ZONE 'Asia/Shanghai', now() FROM prepaid.property,
	   generate_series(date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai'),
					   date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai'), interval '1 day') d;
INSERT INTO prepaid.freeze (property_id, meter_id, kind, frozen_at, energy_wh, rate_wh)
SELECT m.property_id, m.meter_id, 'month', '$s0', 1000000 + m.meter_id % 1000 * 1000,
	   CASE WHEN m.rate_registers > 0 THEN ARRAY[100000, 200000, 300000, 400000 + m.meter_id % 1000 * 1000] END
  FROM prepaid.meter m;
VACUUM ANALYZE prepaid.freeze, prepaid.freeze_slot, prepaid.command;
SQL
t0=$(now)
queued=$(q -c "SELECT coalesce(sum(meters), 0) FROM prepaid.freeze_run('$s1'::timestamptz + interval '1 minute') WHERE action = 'queued'")
t1=$(now)
awk -v m="$meters" -v c="$(secs "$t0" "$t1")" -v n="$queued" 'BEGIN {
	printf "freeze (00:01 on the 1st): %d meters, %d frozen-register reads queued in %.3f s\n", m, n, c }'
# the meters answer: this month's freezes arrive (register meters with T1..T4)
q >/dev/null <<SQL
INSERT INTO prepaid.freeze (property_id, meter_id, kind, frozen_at, energy_wh, rate_wh)
SELECT m.property_id, m.meter_id, 'month', '$s1', 1000000 + m.meter_id % 1000 * 1000 + 123456 + m.meter_id % 777,
	   CASE WHEN m.rate_registers > 0 THEN ARRAY[100000 + 11111, 200000 + 22222, 300000 + 33333,
											 400000 + m.meter_id % 1000 * 1000 + 56790 + m.meter_id % 777] END
  FROM prepaid.meter m
ON CONFLICT DO NOTHING;
VACUUM ANALYZE prepaid.freeze;
SQL
b0=$(now)
bd=$(q -c "BEGIN" -c "SELECT bench.month_usage_plpgsql('$s0', '$s1')" \
	-c "SELECT md5(string_agg(concat_ws(':', meter_id, month, energy_wh, period_wh, estimated), ',' ORDER BY meter_id)) FROM prepaid.month_usage" \
	-c "ROLLBACK" | tr '\n' ' ')
b1=$(now)
t0=$(now)
n=$(q -c "SELECT coalesce(sum(meters), 0) FROM prepaid.freeze_run('$s1'::timestamptz + interval '30 minutes') WHERE action = 'month_usage'")
t1=$(now)
cd=$(q -c "SELECT md5(string_agg(concat_ws(':', meter_id, month, energy_wh, period_wh, estimated), ',' ORDER BY meter_id)) FROM prepaid.month_usage")
same=ok
[ "$n $cd " = "$bd" ] || same="DIFFERS (baseline: $bd; set-based: $n $cd)"
awk -v m="$meters" -v c="$(secs "$t0" "$t1")" -v b="$(secs "$b0" "$b1")" -v n="$n" -v s="$same" 'BEGIN {
	printf "freeze (month usage): %d meters, %d month usages from two freezes in %.3f s; PL/pgSQL baseline %.3f s, ratio %.1fx; same result: %s [target <= 5 s]\n",
		m, n, c, b, b / c, s }'
[ "$same" = ok ]
