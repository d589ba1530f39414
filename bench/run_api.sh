#!/usr/bin/env bash
# The api report benchmarks (called by scripts/bench.sh with BENCH_DB and
# SMOKE): bench/api_bench.sql on a fresh database "<BENCH_DB>_api" (it
# builds its own park and needs one without data), printing each figure
# with its naive baseline from the RESULT lines.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${BENCH_DB:-prepaid_bench}_api
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
psql -qX -d "$DB" -c "CREATE EXTENSION pg_prepaid CASCADE" \
	-c "UPDATE prepaid.job SET enabled = false" >/dev/null
out=$(BENCH_SMOKE=${SMOKE:-} psql -qXAt -d "$DB" -v ON_ERROR_STOP=1 -f bench/api_bench.sql)
echo "$out" | awk -F'|' '$1 == "RESULT" {
	printf "api %s: %.3f s", $2, $3;
	if ($4 != "") printf "; naive baseline %.3f s, ratio %sx", $4, $5;
	if ($6 != "") printf " (%s)", $6;
	printf "\n" }'
echo "$out" | grep -q '^RESULT|' || { echo "api bench printed no result"; exit 1; }
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
