#!/usr/bin/env bash
# make test: installs what is missing, builds with -Werror, installs the
# extension, starts a throwaway cluster and runs every suite:
#   1. C unit tests (TAP, through prove)
#   2. pgTAP suites in tests/sql (through pg_prove)
#   3. end-to-end TAP scripts in tests/tap (real sessions, real processes)
#   4. a short libFuzzer run of the DL/T 645 codec
#   5. the benchmarks in smoke mode (they must run; their figures are not judged)
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/deps.sh
source scripts/lib.sh
export PGOPTIONS="-c client_min_messages=warning"

echo "== build"
make -s clean >/dev/null 2>&1 || true
build_and_install
make -s unit workers >/dev/null

TMP=$(mktemp -d /tmp/pg_prepaid_test.XXXXXX)
chmod 755 "$TMP"
cleanup() {
	cluster_stop "$TMP"
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

echo "== cluster"
cluster_start "$TMP/pg" pg_prepaid
export PREPAID_TEST_TMP=$TMP
echo "cluster on port $PGPORT (socket $PGHOST)"
psql -qX -c "CREATE EXTENSION IF NOT EXISTS pgtap" >/dev/null

fail=0
echo "== unit tests"
if ls tests/unit/*_test >/dev/null 2>&1; then
	prove tests/unit/*_test || fail=1
	if command -v valgrind >/dev/null 2>&1; then
		for t in tests/unit/*_test; do
			valgrind -q --error-exitcode=99 --leak-check=full "$t" >/dev/null \
				&& echo "valgrind: $t clean" \
				|| { echo "valgrind: $t FAILED"; fail=1; }
		done
	fi
fi

echo "== pgTAP suites"
psql -qX -c "CREATE DATABASE prepaid_test" >/dev/null
psql -qX -d prepaid_test -c "CREATE EXTENSION pgtap" \
	-c "CREATE EXTENSION pg_prepaid CASCADE" >/dev/null
PGDATABASE=prepaid_test pg_prove --failures tests/sql/*.sql || fail=1

echo "== end-to-end tests"
if ls tests/tap/*.t >/dev/null 2>&1; then
	prove --failures tests/tap/*.t || fail=1
fi

echo "== fuzz (short)"
if [ -f tests/fuzz/fuzz_dlt645.c ]; then
	make -s fuzz >/dev/null
	mkdir -p "$TMP/corpus"
	mkdir -p .tmp
	./tests/fuzz/fuzz_dlt645 -max_total_time="${FUZZ_SECONDS:-30}" \
		-print_final_stats=0 -artifact_prefix=.tmp/fuzz- \
		"$TMP/corpus" tests/fuzz/seeds \
		>"$TMP/fuzz.log" 2>&1 && echo "fuzz: ok" || {
		tail -50 "$TMP/fuzz.log"
		echo "fuzz: FAILED (the input is kept in .tmp/fuzz-*)"
		fail=1
	}
fi

if [ -f scripts/bench.sh ]; then
	echo "== benchmarks (smoke)"
	BENCH_SMOKE=1 BENCH_REUSE_CLUSTER=1 bash scripts/bench.sh || fail=1
fi

if [ "$fail" -ne 0 ]; then
	echo "make test: FAILED"
	exit 1
fi
echo "make test: all suites passed"
