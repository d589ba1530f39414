#!/usr/bin/env bash
# The scheduler's own idle cost (called by scripts/bench.sh, cluster preloaded
# with pg_prepaid, schedulers in database "postgres"). With the extension
# installed and every job enabled but nothing to do, the scheduler's CPU time
# (/proc/PID/schedstat, nanoseconds) and wake-ups (voluntary context
# switches) are measured over a window; the baseline is a naive scheduler in
# the same cluster: one backend polling prepaid.job every 100 ms, measured
# over the same window.
set -euo pipefail
SECS=60
[ -n "${SMOKE:-}" ] && SECS=5
P=(psql -qXAt -d postgres -v ON_ERROR_STOP=1)

"${P[@]}" -c "DROP EXTENSION IF EXISTS pg_prepaid CASCADE" -c "CREATE EXTENSION pg_prepaid CASCADE" >/dev/null 2>&1
deadline=$((SECONDS + 60))
until pid=$("${P[@]}" -c "SELECT prepaid.scheduler_pid()") && [ -n "$pid" ]; do
	[ $SECONDS -lt $deadline ] || { echo "idle: no scheduler running (is pg_prepaid preloaded?)"; exit 1; }
	sleep 0.5
done
# let every job run once (they are all due at creation), then measure
until [ "$("${P[@]}" -c "SELECT bool_and(run_count > 0) FROM prepaid.job")" = t ]; do
	[ $SECONDS -lt $deadline ] || { echo "idle: jobs did not run"; exit 1; }
	sleep 0.5
done
sleep 1

cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }
wakeups() { awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$1/status"; }

c0=$(cpu_ns "$pid"); w0=$(wakeups "$pid"); r0=$("${P[@]}" -c "SELECT sum(run_count) FROM prepaid.job")
sleep "$SECS"
c1=$(cpu_ns "$pid"); w1=$(wakeups "$pid"); r1=$("${P[@]}" -c "SELECT sum(run_count) FROM prepaid.job")

# baseline: a backend that polls the job table every 100 ms
"${P[@]}" -c "DO \$\$ DECLARE t timestamptz := clock_timestamp() + make_interval(secs => $SECS + 2); BEGIN
	WHILE clock_timestamp() < t LOOP
		PERFORM job_name FROM prepaid.job WHERE enabled AND next_run <= now() ORDER BY next_run LIMIT 1;
		PERFORM pg_sleep(0.1);
	END LOOP; END \$\$" >/dev/null &
poller=$!
sleep 1
bpid=$("${P[@]}" -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'DO \$\$ DECLARE t timestamptz%' AND pid <> pg_backend_pid() LIMIT 1")
b0=$(cpu_ns "$bpid"); bw0=$(wakeups "$bpid")
sleep "$SECS"
b1=$(cpu_ns "$bpid"); bw1=$(wakeups "$bpid")
wait "$poller"

awk -v s="$SECS" -v c=$((c1 - c0)) -v w=$((w1 - w0)) -v r=$((r1 - r0)) -v b=$((b1 - b0)) -v bw=$((bw1 - bw0)) 'BEGIN {
	cm = c / 1e6 * 60 / s; bm = b / 1e6 * 60 / s;
	printf "idle: scheduler %.2f ms CPU and %.0f wake-ups per minute (%d job runs in %d s); ", cm, w * 60 / s, r, s;
	printf "naive 100-ms poller %.2f ms CPU and %.0f wake-ups per minute, ", bm, bw * 60 / s;
	if (cm > 0) printf "ratio %.0fx", bm / cm; else printf "ratio: the scheduler used no CPU at all in the window";
	printf " [target: no busy polling]\n" }'
"${P[@]}" -c "DROP EXTENSION pg_prepaid CASCADE" >/dev/null
