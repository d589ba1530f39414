#!/usr/bin/env bash
# Every view and function of schema api is documented in docs/api.md, and
# every api object docs/api.md names exists. Runs against the test cluster
# (PGHOST/PGPORT from make test) in a scratch database.
set -u
cd "$(dirname "$0")/../.."
db=prepaid_api_docs_$$
psql -qX -d postgres -c "CREATE DATABASE $db" >/dev/null || { echo "1..0 # cannot create db"; exit 1; }
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null' EXIT
psql -qX -d "$db" -c "CREATE EXTENSION pg_prepaid CASCADE" >/dev/null 2>&1
objects=$(psql -qXAt -d "$db" -c "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'api' AND c.relkind = 'v'
	UNION SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'api' ORDER BY 1")
documented=$(grep -o 'api\.[a-z_][a-z0-9_]*' docs/api.md | sed 's/^api\.//' | grep -v '^md$' | sort -u)
n=0; fail=0
echo "1..$(( $(echo "$objects" | wc -l) + $(echo "$documented" | wc -l) ))"
for f in $objects; do
	n=$((n + 1))
	if echo "$documented" | grep -qx "$f"; then echo "ok $n - api.$f is documented"
	else echo "not ok $n - api.$f is missing from docs/api.md"; fail=1; fi
done
for f in $documented; do
	n=$((n + 1))
	if echo "$objects" | grep -qx "$f"; then echo "ok $n - documented api.$f exists"
	else echo "not ok $n - docs/api.md names api.$f, which does not exist"; fail=1; fi
done
exit $fail
