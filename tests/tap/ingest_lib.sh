# Shared helpers of the ingest end-to-end tests (tests/tap/4x_ingest*.t),
# sourced, not run: a scratch database with the test park, the daemon and
# the simulator as background processes, TAP output and waiting on
# conditions with a deadline (never fixed sleeps). Uses the cluster of
# make test (PGHOST/PGPORT).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
INGEST=${PREPAID_INGEST_BIN:-$ROOT/worker/prepaid-ingest}
SIM=$ROOT/worker/prepaid-sim
CLIENT=$ROOT/tests/tap/ingest_client.pl
WORK=$(mktemp -d /tmp/ingest_test.XXXXXX)
chmod 755 "$WORK"
n=0
fail=0
declare -A PIDS=()

ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}
diag() { echo "# $*"; }
q() { psql -qXAt -d "$DB" -v ON_ERROR_STOP=1 "$@"; }

# wait_for SECONDS SQL: until the query returns t
wait_for() {
	local deadline=$((SECONDS + $1))
	while [ $SECONDS -lt $deadline ]; do
		[ "$(q -c "$2" 2>/dev/null)" = "t" ] && return 0
		sleep 0.2
	done
	diag "timed out waiting for: $2"
	return 1
}
# wait_until SECONDS COMMAND...: until the command succeeds
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt $deadline ]; do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}
free_tcp_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 10000)) # below the ephemeral ports and the clusters of lib.sh
		(echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# setup_db NAME METERS GATEWAYS PER_GATEWAY PREPAID
setup_db() {
	DB=$1
	psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
	q -c "CREATE EXTENSION pg_prepaid CASCADE" -c "UPDATE prepaid.job SET enabled = false" >/dev/null
	q -v meters="$2" -v gateways="$3" -v per_gateway="$4" -v prepaid="$5" \
		-f "$ROOT/tests/tap/ingest_fleet.sql" >/dev/null
}

# start_daemon NAME PORT [OPTIONS...]: log in $WORK/NAME.log; PIDS[NAME];
# returns once it listens for meters (or has died)
start_daemon() {
	local name=$1 port=$2 before deadline
	shift 2
	mkdir -p "$WORK/spool-$name"
	before=$(grep -c 'listening for meters' "$WORK/$name.log" 2>/dev/null)
	${INGEST_WRAPPER:-} "$INGEST" --dsn "dbname=$DB" --name "$name" \
		--listen "127.0.0.1:$port" --spool-dir "$WORK/spool-$name" "$@" \
		>>"$WORK/$name.log" 2>&1 &
	PIDS[$name]=$!
	deadline=$((SECONDS + 60))
	while [ $SECONDS -lt $deadline ] && kill -0 "${PIDS[$name]}" 2>/dev/null; do
		[ "$(grep -c 'listening for meters' "$WORK/$name.log")" -gt "${before:-0}" ] && return 0
		sleep 0.1
	done
	diag "daemon $name is not listening"
	return 1
}
# stop NAME [SIGNAL]: signal it and wait; returns its exit status
stop() {
	local pid=${PIDS[$1]:-} rc
	[ -n "$pid" ] || return 0
	kill "-${2:-TERM}" "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	unset "PIDS[$1]"
	return $rc
}
start_sim() {
	local name=$1
	shift
	"$SIM" --db "dbname=$DB" --stats 0 "$@" >>"$WORK/$name.log" 2>&1 &
	PIDS[$name]=$!
}
# the daemon's counter from prepaid.ingest_stats
counter() { q -c "SELECT coalesce((stats->>'$2')::bigint, 0) FROM prepaid.ingest_stats WHERE daemon = '$1'"; }

cleanup() {
	local k
	for k in "${!PIDS[@]}"; do kill -9 "${PIDS[$k]}" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$fail" != 0 ] || [ -n "${KEEP_INGEST_TEST:-}" ]; then
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			diag "--- $(basename "$f") (last 30 lines)"
			tail -30 "$f" | sed 's/^/# /'
		done
	fi
	[ -n "${DB:-}" ] && psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
	[ -n "${KEEP_INGEST_TEST:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
