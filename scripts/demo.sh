#!/usr/bin/env bash
# make demo: a throwaway PostgreSQL cluster with pg_prepaid preloaded, the
# demo park (demo/park.sql: 3 property companies, 224 gateways, 5,407
# meters), and a simulated month of 30-minute readings delivered the real
# way: prepaid-sim plays every meter and gateway over TCP in accelerated
# time, prepaid-ingest reads them over DL/T 645 and writes the readings, the
# scheduler inside PostgreSQL settles them as they arrive, cut-off and
# restore commands go back to the simulated relays, and tenants who were cut
# off pay again. At the end it prints the operator's report and leaves the
# cluster running with the line to connect.
#
#   DEMO_DAYS=30        simulated days (default 30)
#   DEMO_SCALE=N        simulated seconds per wall second (default: the month
#                       in about DEMO_MINUTES wall minutes)
#   DEMO_MINUTES=10     target wall time for the simulated month
#   DEMO_DIR=/tmp/...   where the cluster and logs live (default: new temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DAYS=${DEMO_DAYS:-30}
MINUTES=${DEMO_MINUTES:-10}
SCALE=${DEMO_SCALE:-$((DAYS * 86400 / (MINUTES * 60)))}
step() { printf '\n== %s\n' "$*"; }

step "installing what is missing, building"
bash scripts/deps.sh
source scripts/lib.sh
build_and_install
make -s workers >/dev/null

DIR=${DEMO_DIR:-$(mktemp -d /tmp/pg_prepaid_demo.XXXXXX)}
mkdir -p "$DIR"
chmod 755 "$DIR"
step "starting a throwaway cluster in $DIR"
cluster_start "$DIR/pg" pg_prepaid
DB=prepaid_demo
psql -qX -d postgres -c "ALTER SYSTEM SET pg_prepaid.databases = '$DB'" \
	-c "ALTER SYSTEM SET pg_prepaid.settle_interval = '10s'" \
	-c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "SELECT pg_reload_conf()" >/dev/null
psql -qX -d postgres -c "CREATE DATABASE $DB" >/dev/null
export PGDATABASE=$DB PGOPTIONS="-c client_min_messages=warning"
psql -qX -c "CREATE EXTENSION pg_prepaid CASCADE" >/dev/null
# the alarm rules compare readings with the real clock; while simulated time
# lags behind it every meter would look offline, so they run once at the end
psql -qX -c "UPDATE prepaid.job SET enabled = false WHERE job_name = 'alarms'" >/dev/null

step "loading the park"
psql -qXAt -f demo/park.sql

# the month ends now; meters start reading a month ago
START=$(date -u -d "-$DAYS days" +%Y-%m-%dT%H:%M:%SZ)
ANCHOR=$(date +%s.%N)
PORT=$(free_port)
step "starting prepaid-ingest (port $PORT) and prepaid-sim: $DAYS days from $START at ${SCALE}x"
mkdir -p "$DIR/spool"
worker/prepaid-ingest --listen "127.0.0.1:$PORT" --dsn "dbname=$DB" --name demo \
	--time-scale "$SCALE" --time-start "$START@$ANCHOR" --poll energy \
	--spool-dir "$DIR/spool" --log-level warn >"$DIR/ingest.log" 2>&1 &
INGEST=$!
sleep 0.5
# the simulator stops when simulated time reaches the present (less two
# minutes, so no reading is stamped ahead of the server clock)
DURATION=$(( (DAYS * 86400 - 120) / SCALE ))
worker/prepaid-sim --db "dbname=$DB" --host 127.0.0.1 --port "$PORT" \
	--time-scale "$SCALE" --time-start "$START@$ANCHOR" --quiet --duration "$DURATION" \
	--summary "$DIR/sim.summary" >"$DIR/sim.log" 2>&1 &
SIM=$!
cleanup_workers() {
	kill -TERM "$SIM" 2>/dev/null || true
	wait "$SIM" 2>/dev/null || true
	kill -TERM "$INGEST" 2>/dev/null || true
	wait "$INGEST" 2>/dev/null || true
}
trap 'cleanup_workers' EXIT

# While the month runs: progress every 10 s, and tenants who were cut off pay
# (about a third of them at each step, 50 to 500 yuan, through their
# collection account's channel).
step "running the month (progress every 10 s)"
printf '%-20s %10s %10s %9s %9s %9s %12s\n' "simulated time" readings settled "cut off" restored paid "revenue"
tick=0
while :; do
	sleep 10
	tick=$((tick + 1))
	kill -0 "$INGEST" 2>/dev/null || { echo "prepaid-ingest stopped; see $DIR/ingest.log"; tail -5 "$DIR/ingest.log"; exit 1; }
	sim_done=
	kill -0 "$SIM" 2>/dev/null || sim_done=1
	# each payment is a transaction of its own, as payment notifications are
	[ -n "$sim_done" ] || psql -qXAt >/dev/null <<SQL
SELECT format('SELECT prepaid.recharge(%s, %s, %L, %L, %L)', m.meter_id,
			  50 + (m.meter_id * 37 + $tick) % 10 * 50, ca.channel,
			  format('demo-pay-%s-%s', m.meter_id, $tick), 'tenant')
  FROM prepaid.meter m
  JOIN prepaid.account a ON a.property_id = m.property_id AND a.account_id = m.account_id
  JOIN prepaid.collection_account ca ON ca.property_id = a.property_id
	   AND ca.collection_account_id = a.collection_account_id
 WHERE m.relay_desired = 'open' AND (m.meter_id + $tick) % 3 = 0 \gexec
SQL
	line=$(psql -qXAt -F ' ' -c "SELECT to_char(max(read_at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI'),
		(SELECT count(*) FROM prepaid.reading),
		(SELECT count(*) FROM prepaid.ledger WHERE kind = 'energy'),
		(SELECT count(*) FROM prepaid.command WHERE kind = 'relay_open' AND status = 'acknowledged'),
		(SELECT count(*) FROM prepaid.command WHERE kind IN ('relay_close', 'relay_permit_close') AND status = 'acknowledged'),
		(SELECT count(*) FROM prepaid.ledger WHERE operator = 'tenant'),
		(SELECT coalesce(-sum(amount), 0) FROM prepaid.ledger WHERE kind = 'energy')
		FROM prepaid.meter_latest")
	read -r d t n s c r p rev <<<"$line"
	printf '%-20s %10s %10s %9s %9s %9s %12s\n' "$d $t" "$n" "$s" "$c" "$r" "$p" "$rev"
	# done when the simulator has reached the present and stopped
	[ -n "$sim_done" ] && break
done

step "stopping the simulator and the daemon (the daemon flushes what it holds)"
cleanup_workers
trap - EXIT
psql -qXAt -c "SELECT * FROM prepaid.settle()" >/dev/null
# the report's alarms as of the end of the simulated month (the simulated
# clock ends a little behind the real one); the job then runs on real time
psql -qXAt -c "UPDATE prepaid.job SET enabled = true WHERE job_name = 'alarms'" \
	-c "SELECT count(*) FROM prepaid.alarms_run((SELECT max(read_at) FROM prepaid.meter_latest))" \
	-c "SELECT count(*) FROM prepaid.demand_run(interval '$DAYS days')" >/dev/null

psql -qX -f demo/report.sql

cat <<EOF

The cluster is still running. Connect with:
    psql -h $PGHOST -p $PGPORT -U postgres $DB
Logs: $DIR/ingest.log, $DIR/sim.log, $DIR/pg/server.log
Stop it with:
    $( [ "$(id -u)" -eq 0 ] && echo "runuser -u postgres -- " )$PGBIN/pg_ctl -D $DIR/pg/data stop
EOF
