# pg_prepaid — PGXS build of the extension, plus the project's own targets.
#
#   make            build pg_prepaid.so and the install script
#   make install    install into the PostgreSQL found by pg_config
#   make test       everything CI runs (installs Debian packages when missing)
#   make demo       throwaway cluster with a simulated park, left running
#   make bench      benchmarks (BENCH_SMOKE=1 for the short CI mode)
#   make format     clang-format every C file in place
#
# The targets test/demo/bench work on a machine without PostgreSQL yet: they
# run scripts that install the packages first and then call make again.

EXTENSION   = pg_prepaid
MODULE_big  = pg_prepaid
EXT_SRCS    = $(sort $(wildcard extension/*.c bgw/*.c codec/*.c))
OBJS        = $(EXT_SRCS:.c=.o)
SQL_PARTS   = $(sort $(wildcard sql/src/*.sql))
DATA_built  = sql/pg_prepaid--0.1.sql
DATA        = $(filter-out $(DATA_built),$(wildcard sql/pg_prepaid--*.sql))
PG_CPPFLAGS = -I$(CURDIR)/codec -I$(CURDIR)/extension -I$(CURDIR)/bgw
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK  = -lcurl
EXTRA_CLEAN = tests/unit/*_test tests/fuzz/fuzz_dlt645 bench/decode_bench worker/prepaid-ingest worker/prepaid-sim

PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

.PHONY: test demo bench bench-decode format unit fuzz workers

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all install:
	@echo "PostgreSQL server headers (postgresql-server-dev-15) are not installed;"
	@echo "run 'make test' or 'make demo', which install them, or scripts/deps.sh."
	@exit 1
endif

sql/pg_prepaid--0.1.sql: $(SQL_PARTS)
	cat $(SQL_PARTS) > $@

# --- plain C: codec unit tests, fuzz target, daemon and simulator ----------
CC_PLAIN   ?= cc
PLAIN_FLAGS = -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Icodec
UNIT_TESTS  = $(patsubst %.c,%,$(wildcard tests/unit/*_test.c))

unit: $(UNIT_TESTS)
tests/unit/%_test: tests/unit/%_test.c codec/dlt645.c codec/dlt645.h tests/unit/tap.h
	$(CC_PLAIN) $(PLAIN_FLAGS) -o $@ $< codec/dlt645.c

# The meter-facing daemon and the simulator: plain C + libpq, no server headers.
# worker/common/ is shared by both (logging, accelerated clock, ...).
PQ_INCLUDE  := $(shell $(PG_CONFIG) --includedir 2>/dev/null)
WORKER_FLAGS = $(PLAIN_FLAGS) -Iworker/common -I$(PQ_INCLUDE)
COMMON_SRCS  = $(sort $(wildcard worker/common/*.c))
INGEST_SRCS  = $(sort $(wildcard worker/ingest/*.c))
SIM_SRCS     = $(sort $(wildcard worker/sim/*.c))
WORKER_DEPS  = codec/dlt645.c codec/dlt645.h $(wildcard worker/common/*.h)

workers: worker/prepaid-ingest worker/prepaid-sim
worker/prepaid-ingest: $(INGEST_SRCS) $(COMMON_SRCS) $(WORKER_DEPS) $(wildcard worker/ingest/*.h)
	$(CC_PLAIN) $(WORKER_FLAGS) -Iworker/ingest -o $@ $(INGEST_SRCS) $(COMMON_SRCS) codec/dlt645.c -lpq
worker/prepaid-sim: $(SIM_SRCS) $(COMMON_SRCS) $(WORKER_DEPS) $(wildcard worker/sim/*.h)
	$(CC_PLAIN) $(WORKER_FLAGS) -Iworker/sim -o $@ $(SIM_SRCS) $(COMMON_SRCS) codec/dlt645.c -lpq

fuzz: tests/fuzz/fuzz_dlt645
tests/fuzz/fuzz_dlt645: tests/fuzz/fuzz_dlt645.c codec/dlt645.c codec/dlt645.h
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Icodec -o $@ $< codec/dlt645.c

# decoder benchmark: bench/decode_bench (BENCH_SMOKE=1: a 0.1 s run)
bench-decode: bench/decode_bench
bench/decode_bench: bench/decode_bench.c codec/dlt645.c codec/dlt645.h
	$(CC_PLAIN) $(PLAIN_FLAGS) -o $@ $< codec/dlt645.c

test:
	@bash scripts/test.sh

demo:
	@bash scripts/demo.sh

bench:
	@bash scripts/bench.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
