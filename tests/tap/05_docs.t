#!/usr/bin/env bash
# Every public function of schema prepaid is documented in docs/sql.md, and
# every function docs/sql.md documents exists. Runs against the test cluster
# (PGHOST/PGPORT from make test) in a scratch database.
set -u
cd "$(dirname "$0")/../.."
db=prepaid_docs_$$
psql -qX -d postgres -c "CREATE DATABASE $db" >/dev/null || { echo "1..0 # cannot create db"; exit 1; }
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null' EXIT
psql -qX -d "$db" -c "CREATE EXTENSION pg_prepaid CASCADE" >/dev/null
funcs=$(psql -qXAt -d "$db" -c "SELECT DISTINCT p.proname FROM pg_proc p
	JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'prepaid' AND p.proname !~ '^_' ORDER BY 1")
documented=$(grep -o 'prepaid\.[a-z0-9_]*(' docs/sql.md | sed 's/prepaid\.//; s/($//' | sort -u)
n=0; fail=0
echo "1..$(( $(echo "$funcs" | wc -l) + $(echo "$documented" | wc -l) ))"
for f in $funcs; do
	n=$((n + 1))
	if echo "$documented" | grep -qx "$f"; then echo "ok $n - prepaid.$f is documented"
	else echo "not ok $n - prepaid.$f is missing from docs/sql.md"; fail=1; fi
done
for f in $documented; do
	n=$((n + 1))
	if echo "$funcs" | grep -qx "$f"; then echo "ok $n - documented prepaid.$f exists"
	else echo "not ok $n - docs/sql.md documents prepaid.$f, which does not exist"; fail=1; fi
done
exit $fail
