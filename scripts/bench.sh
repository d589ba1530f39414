#!/usr/bin/env bash
# make bench: every benchmark of the project, each printing its figure and its
# ratio against a baseline measured in the same run. Figures are recorded by
# hand in docs/performance.md.
#
#   make bench                       full size (about 40 minutes on 2 cores)
#   BENCH_SMOKE=1 make bench         short mode, as CI runs it (sizes cut down;
#                                    the figures are not judged, the runs must work)
#   BENCH_ONLY="settle tou" make bench   a subset of: settle tou park jobs idle
#                                    decode ingest api reading
#
# Uses its own throwaway cluster, or the caller's (BENCH_REUSE_CLUSTER=1 with
# PGHOST/PGPORT set, as make test does in smoke mode).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=${BENCH_SMOKE:-}
ONLY=${BENCH_ONLY:-settle tou park jobs idle decode ingest api reading}
want() { [[ " $ONLY " == *" $1 "* ]]; }

if [ -z "${BENCH_REUSE_CLUSTER:-}" ]; then
	bash scripts/deps.sh
	source scripts/lib.sh
	build_and_install
	TMP=$(mktemp -d /tmp/pg_prepaid_bench.XXXXXX)
	chmod 755 "$TMP"
	trap 'cluster_stop "$TMP/pg"; rm -rf "$TMP"' EXIT
	cluster_start "$TMP/pg" pg_prepaid
else
	source scripts/lib.sh
	TMP=$(mktemp -d /tmp/pg_prepaid_bench.XXXXXX)
	chmod 755 "$TMP"
	trap 'rm -rf "$TMP"' EXIT
fi

if [ -n "$SMOKE" ]; then
	METERS=2000 PARK=500 TOU_CALLS=20000 ALARM_METERS=2000
else
	METERS=100000 PARK=5407 TOU_CALLS=1000000 ALARM_METERS=100000
fi
DB=prepaid_bench
echo "== benchmarks ($([ -n "$SMOKE" ] && echo smoke || echo full); $(nproc) cores, $(date -u +%F))"

bench_db() {
	psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
	# no scheduler interferes: jobs disabled in the bench database
	psql -qX -d "$DB" -v ON_ERROR_STOP=1 \
		-c "CREATE EXTENSION pg_prepaid CASCADE" \
		-c "UPDATE prepaid.job SET enabled = false" \
		-f bench/setup_settle.sql -f bench/baseline_settle.sql >/dev/null
}
q() { psql -qXAt -d "$DB" -v ON_ERROR_STOP=1 "$@"; }

# Prints a RESULT line as "name: figure (baseline ..., ratio ...x)".
report_settle() {
	local line=$1 what=$2
	IFS='|' read -r _ label c_secs b_secs meters readings entries kwh amount quar cutoffs match <<<"$line"
	awk -v l="$label" -v c="$c_secs" -v b="$b_secs" -v m="$meters" -v r="$readings" \
		-v e="$entries" -v q="$quar" -v k="$cutoffs" -v ok="$match" -v w="$what" 'BEGIN {
		printf "%s: %s meters, %s readings in %.3f s = %.0f meters/s, %.0f readings/s; ", l, m, r, c, m / c, r / c;
		printf "PL/pgSQL baseline %.3f s, ratio %.1fx; %s entries, %s quarantined, %s cut off; same result as baseline: %s", b, b / c, e, q, k, ok;
		if (w != "") printf " [%s]", w;
		printf "\n" }'
	[ "$match" = "ok" ]
}

# settle_floor DB SESSIONS: the bare writes under a settlement of the waiting
# readings (bench/settle_floor.sql), in SESSIONS sessions at once, rolled back;
# prints the wall-clock seconds from the first start to the last end.
settle_floor() {
	local db=$1 n=$2 k out
	out=$(for ((k = 0; k < n; k++)); do
		psql -qXAt -d "$db" -v part=$k -v parts=$n -f bench/settle_floor.sql &
	done
	wait)
	psql -qX -d "$db" -c "VACUUM ANALYZE prepaid.ledger, prepaid.account, prepaid.settle_cursor"
	awk -F'|' '$1 == "FLOOR" { if (s == "" || $2 < s) s = $2; if ($3 > e) e = $3; m += $4 }
		END { if (m == 0) exit 1; printf "%.4f\n", e - s }' <<<"$out"
}

# floor_report RESULT-LINE FLOOR-SECS SESSIONS: settlement against its floor.
floor_report() {
	local c_secs
	c_secs=$(cut -d'|' -f3 <<<"$1")
	awk -v c="$c_secs" -v f="$2" -v n="$3" 'BEGIN {
		printf "  floor: the bare writes of the same readings in plain SQL, %d session(s): %.3f s; settle = %.2fx the floor\n", n, f, c / f }'
}

# settle_run DB LABEL WORKERS TARGET: on a database whose meters have new
# readings, the floor under settling them, then the settlement (and its
# PL/pgSQL baseline, bench/settle_bench.sql), each reported.
settle_run() {
	local db=$1 label=$2 w=$3 target=$4 floor res
	psql -qX -d "$db" -c "VACUUM ANALYZE"
	floor=$(settle_floor "$db" "$w")
	res=$(psql -qXAt -d "$db" -v label="$label" -v workers="$w" -f bench/settle_bench.sql | grep '^RESULT')
	report_settle "$res" "$target" || fail=1
	floor_report "$res" "$floor" "$w"
}

fail=0
day=$(date -u -d '-3 days' +%F)

if want settle; then
	bench_db
fi

if want settle; then
	echo "-- settlement: $METERS prepaid meters (half with T1..T4 registers), one new 30-minute reading each"
	q -c "SELECT bench.setup_tariffs()" >/dev/null
	prop=$(q -c "SELECT bench.setup_park('bench', $METERS, '$day')")
	for w in 1 2; do
		q -c "SELECT bench.add_readings($prop, $w + 1, $w + 1)" >/dev/null
		settle_run "$DB" "settle_one_reading_${w}_worker" $w "target <= 1 s"
	done
	echo "-- settlement: a day of backlog, 48 readings per meter, 2 workers"
	q -c "SELECT bench.add_readings($prop, 4, 51)" >/dev/null
	q -c "VACUUM ANALYZE"
	res=$(psql -qXAt -d "$DB" -v label=settle_day_backlog_2_workers -v workers=2 -f bench/settle_bench.sql | grep '^RESULT')
	report_settle "$res" "target <= 10 s" || fail=1
	q -c "SELECT CASE WHEN count(*) = 0 THEN 'verify_ledger: ok' ELSE 'verify_ledger: ' || count(*) || ' accounts differ' END FROM prepaid.verify_ledger()"
fi

if want park; then
	# a park is a database of its own: 5,407 meters, nothing else
	echo "-- settlement: one park ($PARK meters, a database of its own), one new reading each"
	DB=prepaid_bench_park bench_db
	DB=prepaid_bench_park q -c "SELECT bench.setup_tariffs()" >/dev/null
	pprop=$(DB=prepaid_bench_park q -c "SELECT bench.setup_park('park', $PARK, '$day')")
	DB=prepaid_bench_park q -c "SELECT bench.add_readings($pprop, 2, 2)" >/dev/null
	settle_run prepaid_bench_park settle_park 1 "target < 0.1 s"
	# the next half hour on the same park: the steady state the settle job
	# runs in (the first run above also pays for the park's first entries,
	# balances crossing their initial levels and an empty ledger)
	DB=prepaid_bench_park q -c "SELECT bench.add_readings($pprop, 3, 3)" >/dev/null
	settle_run prepaid_bench_park settle_park_next 1 "target < 0.1 s"
	# and the half hour after with two workers (pg_prepaid.settle_workers = 2)
	DB=prepaid_bench_park q -c "SELECT bench.add_readings($pprop, 4, 4)" >/dev/null
	settle_run prepaid_bench_park settle_park_next_2_workers 2 "target < 0.1 s"
	psql -qX -d postgres -c "DROP DATABASE prepaid_bench_park" >/dev/null
fi

if want tou; then
	[ -n "${prop:-}" ] || { bench_db; q -c "SELECT bench.setup_tariffs()" >/dev/null; }
	echo "-- tou_split: $TOU_CALLS calls from SQL, one backend"
	out=$(psql -qXAt -d "$DB" -v calls="$TOU_CALLS" -f bench/tou_bench.sql)
	echo "$out"
	grep -q '^tou_split check: ok' <<<"$out" || fail=1
fi

if want decode; then
	echo "-- DL/T 645 decoder: the worked frames, frame + values, one core"
	make -s bench-decode >/dev/null
	BENCH_SMOKE=$SMOKE bench/decode_bench || fail=1
fi

for f in bench/run_*.sh; do
	[ -f "$f" ] || continue
	name=$(basename "$f" .sh); name=${name#run_}
	want "$name" || continue
	# the jobs run on a park of their own, like one that has run for a while,
	# not in the settlement database after its 4.8 M-reading backlog and
	# rolled-back baselines (bloated tables: alarms took 1.9 s there, 0.8 s here)
	bdb=$DB
	[ "$name" = jobs ] && bdb=${DB}_jobs
	BENCH_DB=$bdb BENCH_TMP=$TMP METERS=$METERS ALARM_METERS=$ALARM_METERS SMOKE=$SMOKE \
		bash "$f" || fail=1
done

if [ "$fail" -ne 0 ]; then
	echo "bench: a benchmark failed or disagreed with its baseline"
	exit 1
fi
echo "bench: done"
