#!/usr/bin/env bash
# The background scheduler, on the test cluster (started by make test with
# shared_preload_libraries = 'pg_prepaid'; schedulers run in database
# "postgres"): jobs run on schedule and on demand, SIGHUP picks up a changed
# interval, a failing job does not stop the others, a killed scheduler comes
# back, and the scheduler survives DROP/CREATE EXTENSION.
set -u
PSQL=(psql -qXAt -d postgres)
n=0
fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
# wait_for SECONDS SQL: until the query returns 't'
wait_for() {
	local deadline=$((SECONDS + $1))
	while [ $SECONDS -lt $deadline ]; do
		[ "$("${PSQL[@]}" -c "$2" 2>/dev/null)" = "t" ] && return 0
		sleep 0.2
	done
	return 1
}
echo "1..14"

"${PSQL[@]}" -c "DROP EXTENSION IF EXISTS pg_prepaid CASCADE" -c "CREATE EXTENSION pg_prepaid CASCADE" >/dev/null
wait_for 15 "SELECT prepaid.scheduler_pid() IS NOT NULL"
ok $? "a scheduler runs in the database named by pg_prepaid.databases"

wait_for 15 "SELECT run_count >= 1 FROM prepaid.job WHERE job_name = 'settle'"
ok $? "the settle job runs on its own"

"${PSQL[@]}" -c "ALTER SYSTEM SET pg_prepaid.settle_interval = '2s'" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 20 "SELECT schedule_interval = interval '2 seconds' FROM prepaid.job WHERE job_name = 'settle'"
ok $? "SIGHUP: a changed pg_prepaid.settle_interval reaches the job"

before=$("${PSQL[@]}" -c "SELECT run_count FROM prepaid.job WHERE job_name = 'settle'")
wait_for 10 "SELECT run_count >= $before + 2 FROM prepaid.job WHERE job_name = 'settle'"
ok $? "the settle job runs every 2 seconds"

"${PSQL[@]}" -c "UPDATE prepaid.job SET next_run = now() + interval '1 day' WHERE job_name = 'partitions'" >/dev/null
runs=$("${PSQL[@]}" -c "SELECT run_count FROM prepaid.job WHERE job_name = 'partitions'")
woke=$("${PSQL[@]}" -c "SELECT prepaid.job_run_now('partitions')")
wait_for 3 "SELECT run_count = $runs + 1 FROM prepaid.job WHERE job_name = 'partitions'"
r=$?; [ "$woke" = "t" ] || r=1
ok $r "job_run_now runs a job at once (woken at commit, not at the next nap)"

# event-driven settlement: with a 10-minute interval, new readings are
# settled within seconds (the reading trigger makes the job due and wakes
# the scheduler at commit)
"${PSQL[@]}" -c "ALTER SYSTEM SET pg_prepaid.settle_interval = '600s'" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 20 "SELECT schedule_interval = interval '600 seconds' FROM prepaid.job WHERE job_name = 'settle'"
wait_for 20 "SELECT last_finish < now() - interval '2 seconds' FROM prepaid.job WHERE job_name = 'settle'"
"${PSQL[@]}" >/dev/null <<'SQL'
SELECT prepaid.tariff_put('{"name": "sched", "time_zone": "UTC", "prices": {"flat": 1},
	"schedule": [{"from": "00:00", "to": "24:00", "period": "flat"}]}');
INSERT INTO prepaid.property (property_id, name) VALUES (1, 'p');
INSERT INTO prepaid.customer (property_id, customer_id, name) VALUES (1, 1, 'c');
INSERT INTO prepaid.account (property_id, account_id, customer_id) VALUES (1, 1, 1);
INSERT INTO prepaid.meter (property_id, meter_id, address, account_id, tariff_id)
VALUES (1, 1, '000000000001', 1, (SELECT tariff_id FROM prepaid.tariff WHERE name = 'sched'));
INSERT INTO prepaid.reading (property_id, meter_id, read_at, energy_wh)
VALUES (1, 1, now() - interval '1 hour', 0), (1, 1, now() - interval '30 minutes', 500);
SQL
wait_for 5 "SELECT count(*) = 1 FROM prepaid.ledger WHERE kind = 'energy' AND meter_id = 1"
ok $? "new readings are settled within seconds, not at the next 10-minute run"
"${PSQL[@]}" -c "ALTER SYSTEM SET pg_prepaid.settle_interval = '2s'" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 20 "SELECT schedule_interval = interval '2 seconds' FROM prepaid.job WHERE job_name = 'settle'"

"${PSQL[@]}" -c "INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES ('broken', 'SELECT 1/0', '1 second')" >/dev/null
wait_for 10 "SELECT last_status = 'failed' AND last_error LIKE '%division by zero%' AND fail_count >= 1 FROM prepaid.job WHERE job_name = 'broken'"
ok $? "a failing job records its error"
before=$("${PSQL[@]}" -c "SELECT run_count FROM prepaid.job WHERE job_name = 'settle'")
wait_for 10 "SELECT run_count >= $before + 2 AND last_status = 'success' FROM prepaid.job WHERE job_name = 'settle'"
ok $? "other jobs keep running next to a failing one"
"${PSQL[@]}" -c "DELETE FROM prepaid.job WHERE job_name = 'broken'" >/dev/null

old=$("${PSQL[@]}" -c "SELECT prepaid.scheduler_pid()")
"${PSQL[@]}" -c "SELECT prepaid.scheduler_restart()" >/dev/null
wait_for 30 "SELECT prepaid.scheduler_pid() IS NOT NULL AND prepaid.scheduler_pid() <> $old"
ok $? "scheduler_restart(): the launcher starts a new scheduler"

# a job that logs each run: across a SIGKILL no run is lost or repeated
"${PSQL[@]}" -c "CREATE TABLE public.tick_log (at timestamptz DEFAULT clock_timestamp(), mode text DEFAULT current_setting('plan_cache_mode'))" \
	-c "INSERT INTO prepaid.job (job_name, command, schedule_interval) VALUES ('tick', 'INSERT INTO public.tick_log DEFAULT VALUES', '1 second')" >/dev/null
wait_for 10 "SELECT run_count >= 2 FROM prepaid.job WHERE job_name = 'tick'"
old=$("${PSQL[@]}" -c "SELECT prepaid.scheduler_pid()")
kill -KILL "$old"
# SIGKILL of a backend makes the postmaster reset all backends; wait for it
sleep 1
wait_for 60 "SELECT prepaid.scheduler_pid() IS NOT NULL AND prepaid.scheduler_pid() <> $old"
r=$?
before=$("${PSQL[@]}" -c "SELECT run_count FROM prepaid.job WHERE job_name = 'settle'")
wait_for 10 "SELECT run_count >= $before + 1 FROM prepaid.job WHERE job_name = 'settle'" || r=1
ok $r "after SIGKILL the scheduler comes back and jobs run again"
wait_for 10 "SELECT run_count >= 4 FROM prepaid.job WHERE job_name = 'tick'"
"${PSQL[@]}" -c "UPDATE prepaid.job SET enabled = false WHERE job_name = 'tick'" >/dev/null
sleep 1.5
r=$("${PSQL[@]}" -c "SELECT (SELECT count(*) FROM public.tick_log) = run_count FROM prepaid.job WHERE job_name = 'tick'")
[ "$r" = t ]; ok $? "every run of a job is recorded exactly once, across the SIGKILL (log rows = run_count)"
r=$("${PSQL[@]}" -c "SELECT string_agg(DISTINCT mode, ',') FROM public.tick_log")
[ "$r" = force_custom_plan ]; ok $? "jobs run with plan_cache_mode = force_custom_plan (got '$r'): plans follow the tables as they grow"
"${PSQL[@]}" -c "DELETE FROM prepaid.job WHERE job_name = 'tick'" -c "DROP TABLE public.tick_log" >/dev/null

# a database named in pg_prepaid.databases that does not exist yet gets its
# scheduler once it is created
psql -qX -d postgres -c "DROP DATABASE IF EXISTS prepaid_later" >/dev/null
"${PSQL[@]}" -c "ALTER SYSTEM SET pg_prepaid.databases = 'postgres, prepaid_later'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
psql -qX -d postgres -c "CREATE DATABASE prepaid_later" >/dev/null
psql -qX -d prepaid_later -c "CREATE EXTENSION pg_prepaid CASCADE" >/dev/null
deadline=$((SECONDS + 40)); r=1
while [ $SECONDS -lt $deadline ]; do
	[ -n "$(psql -qXAt -d prepaid_later -c "SELECT prepaid.scheduler_pid()")" ] && { r=0; break; }
	sleep 0.5
done
ok $r "a database created after start-up gets its scheduler"
"${PSQL[@]}" -c "ALTER SYSTEM RESET pg_prepaid.databases" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
psql -qX -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'prepaid_later'" >/dev/null
psql -qX -d postgres -c "DROP DATABASE IF EXISTS prepaid_later" >/dev/null 2>&1

"${PSQL[@]}" -c "DROP EXTENSION pg_prepaid CASCADE" >/dev/null
sleep 1
"${PSQL[@]}" -c "CREATE EXTENSION pg_prepaid CASCADE" >/dev/null
"${PSQL[@]}" -c "UPDATE prepaid.job SET next_run = now()" >/dev/null
wait_for 20 "SELECT bool_and(run_count >= 1) FROM prepaid.job"
ok $? "DROP EXTENSION / CREATE EXTENSION: the scheduler carries on with the new jobs"

"${PSQL[@]}" -c "ALTER SYSTEM RESET pg_prepaid.settle_interval" -c "SELECT pg_reload_conf()" \
	-c "DROP EXTENSION pg_prepaid CASCADE" >/dev/null
exit $fail
