/*
 * settle.c
 *	  prepaid.settle(): prices every prepaid meter's new readings since its
 *	  settlement cursor and debits its account, in batches of meters.
 *
 * Per batch:
 *	 1. + 2. one statement picks the next meters with unsettled readings,
 *	    locks their cursors (FOR UPDATE SKIP LOCKED: a concurrent settle()
 *	    takes other meters; a cursor moved by one that committed meanwhile
 *	    is re-read) and streams their new readings in (meter, read_at)
 *	    order (see sql_batch);
 *	 3. price each interval in C: per-rate register deltas priced at their
 *	    period's price, or total energy split over the tariff calendar;
 *	    register rollover is priced, any other backwards step is moved to
 *	    prepaid.quarantine with an alarm and never charged;
 *	 4. write one ledger entry per meter (the ledger trigger moves balances
 *	    and runs the supply decision), move the cursors, carry the sub-fen
 *	    remainder so many small intervals charge exactly what one big one
 *	    would.
 * Everything happens in the caller's transaction.
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "common/int.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "storage/itemptr.h"

#include "exact.h"
#include "pg_prepaid.h"
#include "registers.h"
#include "settle.h"
#include "tou_calendar.h"

PG_FUNCTION_INFO_V1(prepaid_settle);

#define MAX_COMBOS 32

/* SQL of the prepared plans */
/*
 * One statement per batch picks the next meters with readings after their
 * cursor, locks their cursors and streams the new readings, in (meter,
 * read_at) order:
 *  - meters are found through meter_latest (each meter's newest accepted
 *    reading, kept by a trigger on reading) rather than by probing the
 *    partitioned reading table once per meter; cursor, meter_latest and
 *    meter are read in key order from the batch's first key on and merge
 *    joined (no probe per meter);
 *  - FOR UPDATE SKIP LOCKED: a concurrent settle() takes other meters, and a
 *    cursor moved by a settlement that committed after this statement began
 *    is re-read (READ COMMITTED re-checks the locked row's newest version),
 *    so its readings are never priced twice. The locked version's ctid is
 *    where the cursor is moved (sql_cursor): nobody else can move it while
 *    the lock is held;
 *  - the readings are a lateral subquery that cannot be flattened (OFFSET 0),
 *    so the plan is a nested loop driven by the ordered, locked meters: one
 *    index range per meter, rows grouped by meter in key order (process_row
 *    checks it), with no sort in SQL: each meter's readings are put in
 *    time order in C (settle_meter). LEFT JOIN: every picked meter yields a
 *    row, so the batch's last key is exact even when a meter's readings are
 *    all beyond $6;
 *  - $6 (no reading can be later: the reading trigger quarantines clocks
 *    ahead of the server) lets the executor prune future partitions;
 *  - a parallel run's partitions ($4, $5) are blocks of 64 account ids
 *    taken modulo $4, not single ids: accounts, cursors and meters are
 *    stored about in id order, so each process mostly writes pages of its
 *    own (with single ids the two halves of a park took as long as the
 *    whole, each waiting for the other's page locks).
 */
static const char *const sql_batch =
    "SELECT p.property_id, p.meter_id, p.account_id, p.tariff_id, p.mult, "
    "       p.register_modulus_wh, p.read_at, p.energy_wh, p.rate_wh, "
    "       p.carry_pico, r.read_at, r.energy_wh, r.rate_wh, p.ctid "
    "FROM (SELECT c.property_id, c.meter_id, m.account_id, m.tariff_id, "
    "             m.pt_ratio::int8 * m.ct_ratio::int8 AS mult, "
    "             m.register_modulus_wh, c.read_at, c.energy_wh, c.rate_wh, "
    "             c.carry_pico, c.ctid "
    "        FROM prepaid.settle_cursor c "
    "        JOIN prepaid.meter_latest l ON l.property_id = c.property_id "
    "         AND l.meter_id = c.meter_id "
    "        JOIN prepaid.meter m ON m.property_id = c.property_id "
    "         AND m.meter_id = c.meter_id "
    "       WHERE (c.property_id, c.meter_id) > ($1, $2) "
    "         AND (l.property_id, l.meter_id) > ($1, $2) "
    "         AND (m.property_id, m.meter_id) > ($1, $2) "
    "         AND m.mode = 'prepaid' "
    "         AND l.read_at > coalesce(c.read_at, '-infinity') "
    "         AND ($4 <= 1 OR m.account_id / 64 % $4 = $5) "
    "       ORDER BY c.property_id, c.meter_id LIMIT $3 "
    "         FOR UPDATE OF c SKIP LOCKED) p "
    "LEFT JOIN LATERAL (SELECT r.read_at, r.energy_wh, r.rate_wh "
    "    FROM prepaid.reading r WHERE r.property_id = p.property_id "
    "     AND r.meter_id = p.meter_id "
    "     AND r.read_at > coalesce(p.read_at, '-infinity') "
    "     AND r.read_at <= $6 OFFSET 0) r ON true";

static const char *const sql_ledger =
    "INSERT INTO prepaid.ledger (property_id, account_id, meter_id, kind, "
    "amount, kwh, "
    "       detail, period_from, period_to) "
    "SELECT p, a, m, 'energy', amt, kwh, d, f, t "
    "FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::numeric[], "
    "$5::numeric[], "
    "            $6::jsonb[], $7::timestamptz[], $8::timestamptz[]) AS u(p, "
    "a, "
    "m, amt, kwh, d, f, t)";

/* the locked cursors, by their ctid (a TID scan per row, no index probe) */
static const char *const sql_cursor =
    "UPDATE prepaid.settle_cursor c SET read_at = u.t, energy_wh = u.e, "
    "       rate_wh = u.r::int8[], carry_pico = u.carry, settled_at = now() "
    "FROM unnest($1::tid[], $2::timestamptz[], $3::int8[], $4::text[], "
    "            $5::int8[]) AS u(tid, t, e, r, carry) "
    "WHERE c.ctid = u.tid";

static const char *const sql_quarantine =
    "WITH bad AS (SELECT * FROM unnest($1::int8[], $2::int8[], "
    "$3::timestamptz[], $4::text[]) "
    "             AS b(p, m, t, detail)), "
    "moved AS (DELETE FROM prepaid.reading r USING bad b "
    "          WHERE r.property_id = b.p AND r.meter_id = b.m AND r.read_at = "
    "b.t "
    "          RETURNING r.property_id, r.meter_id, r.read_at, b.detail, "
    "to_jsonb(r) AS j), "
    "q AS (INSERT INTO prepaid.quarantine (property_id, meter_id, read_at, "
    "source, reason, "
    "          detail, reading) "
    "      SELECT property_id, meter_id, read_at, 'settlement', "
    "'energy_backwards', detail, j "
    "      FROM moved RETURNING property_id, meter_id, read_at, detail) "
    "SELECT prepaid.alarm_raise(property_id, meter_id, 'energy_backwards', "
    "       jsonb_build_object('read_at', read_at, 'detail', detail), "
    "'critical') FROM q";

static SPIPlanPtr plan_batch, plan_ledger, plan_cursor, plan_quarantine;

/* One (period, price) combination priced in an entry. */
typedef struct Combo
{
	int16 period;
	int64 price_u;
	int64 energy;  /* 1e-6 kWh */
	int128 amount; /* pico-yuan */
} Combo;

/* State of the meter being settled. */
typedef struct Meter
{
	ItemPointerData tid; /* of its locked cursor */
	int64 property_id;
	int64 meter_id;
	int64 account_id;
	int64 tariff_id;
	int64 mult;    /* PT x CT */
	int64 modulus; /* register wrap, Wh */
	bool has_at;
	TimestampTz at; /* cursor position */
	int64 e;        /* total register at cursor, Wh */
	int nr;         /* number of rate registers at cursor */
	int64 r[TOU_MAX_REGISTERS];
	int64 carry; /* pico-yuan, < 1 fen */
	TimestampTz first_from;
	int nreadings;
	bool moved;
	int ncombos;
	Combo combos[MAX_COMBOS];
} Meter;

/* Column vectors of one batch's writes. */
typedef struct Vec
{
	int n;
	int cap;
	Datum *d;
	bool *nulls;
} Vec;

typedef struct Batch
{
	/* ledger */
	Vec l_p, l_a, l_m, l_amt, l_kwh, l_detail, l_from, l_to;
	/* cursor */
	Vec c_tid, c_t, c_e, c_r, c_carry;
	/* quarantine */
	Vec q_p, q_m, q_t, q_detail;
} Batch;

static void
vec_push(Vec *v, Datum d, bool isnull)
{
	if (v->n == v->cap)
	{
		v->cap = v->cap ? v->cap * 2 : 1024;
		v->d = v->d ? repalloc(v->d, sizeof(Datum) * v->cap)
		            : palloc(sizeof(Datum) * v->cap);
		v->nulls = v->nulls ? repalloc(v->nulls, sizeof(bool) * v->cap)
		                    : palloc(sizeof(bool) * v->cap);
	}
	v->d[v->n] = d;
	v->nulls[v->n] = isnull;
	v->n++;
}

static Datum
vec_array(Vec *v, Oid elemtype)
{
	int16 typlen;
	bool typbyval;
	char typalign;
	int dims[1] = {v->n};
	int lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(
	    v->d, v->nulls, 1, dims, lbs, elemtype, typlen, typbyval, typalign));
}

/*
 * Plans are kept for the backend's life but always planned for the run's
 * parameters (CURSOR_OPT_CUSTOM_PLAN): a long-lived session (the scheduler)
 * would otherwise switch to a generic plan after five runs, and a generic
 * plan over the meter and reading arrays can miss the partitions' indexes
 * (a run of seconds took minutes). Planning costs a millisecond a run.
 */
static SPIPlanPtr
prepare(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr plan =
	    SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_CUSTOM_PLAN);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for settlement: %s",
		     SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

static void
prepare_plans(void)
{
	Oid batch[6] = {INT8OID, INT8OID, INT4OID,
	                INT8OID, INT8OID, TIMESTAMPTZOID};
	Oid ledger[8] = {INT8ARRAYOID,        INT8ARRAYOID,       INT8ARRAYOID,
	                 NUMERICARRAYOID,     NUMERICARRAYOID,    JSONBARRAYOID,
	                 TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID};
	Oid cursor[5] = {TIDARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID,
	                 TEXTARRAYOID, INT8ARRAYOID};
	Oid quarantine[4] = {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID,
	                     TEXTARRAYOID};

	if (plan_batch == NULL)
		plan_batch = prepare(sql_batch, 6, batch);
	if (plan_ledger == NULL)
		plan_ledger = prepare(sql_ledger, 8, ledger);
	if (plan_cursor == NULL)
		plan_cursor = prepare(sql_cursor, 5, cursor);
	if (plan_quarantine == NULL)
		plan_quarantine = prepare(sql_quarantine, 4, quarantine);
}

static void
combo_add(Meter *m, int period, int64 price, int64 energy)
{
	int128 amount = (int128) energy * price;
	int i;

	for (i = 0; i < m->ncombos; i++)
		if (m->combos[i].period == period && m->combos[i].price_u == price)
			break;
	if (i == m->ncombos)
	{
		if (m->ncombos == MAX_COMBOS)
			ereport(
			    ERROR,
			    (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			     errmsg("meter %lld has more than %d price combinations in "
			            "one settlement",
			            (long long) m->meter_id, MAX_COMBOS),
			     errhint("Settle more often, or with a smaller backlog.")));
		m->combos[i].period = (int16) period;
		m->combos[i].price_u = price;
		m->combos[i].energy = 0;
		m->combos[i].amount = 0;
		m->ncombos++;
	}
	m->combos[i].energy += energy;
	m->combos[i].amount += amount;
}

static int64
wh_to_units(Meter *m, int64 wh)
{
	int64 units;

	if (pg_mul_s64_overflow(wh, m->mult, &units) ||
	    pg_mul_s64_overflow(units, UNITS_PER_WH, &units))
		ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
		                errmsg("energy of meter %lld is out of range",
		                       (long long) m->meter_id)));
	return units;
}

/* Prices one interval (m->at, at] ending at a reading. */
static void
price_interval(Meter *m, TouCalendar *cal, TouSliceList *slices,
               TimestampTz at, int64 delta_wh, int nregs, int64 *reg_delta)
{
	int64 weights[64];
	int64 parts[64];
	int64 price;
	int n;

	tou_calendar_slices(cal, m->at, at, slices);
	if (slices->n > 64)
		ereport(ERROR,
		        (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
		         errmsg("interval of meter %lld spans too many tariff prices",
		                (long long) m->meter_id)));
	if (nregs > 0)
	{
		int16 reg_period[TOU_MAX_REGISTERS];
		int nmap = tou_calendar_registers(cal, at - 1, reg_period);

		for (int r = 0; r < nregs; r++)
		{
			int period = (r < nmap) ? reg_period[r] : -1;
			int64 energy = wh_to_units(m, reg_delta[r]);

			if (energy == 0)
				continue;
			if (period < 0)
				ereport(ERROR,
				        (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				         errmsg("meter %lld reports register T%d, which its "
				                "tariff does not map to a period",
				                (long long) m->meter_id, r + 1),
				         errhint("List the period of every register in the "
				                 "tariff's \"registers\".")));
			/* spread over the slices of that period (they may differ in price) */
			n = 0;
			for (int i = 0; i < slices->n; i++)
				weights[n++] =
				    (slices->s[i].period == period) ? slices->s[i].usec : 0;
			if (n > 0 && slices->n > 0)
			{
				int64 wsum = 0;

				for (int i = 0; i < n; i++)
					wsum += weights[i];
				if (wsum > 0)
				{
					split_exact(energy, weights, n, parts);
					for (int i = 0; i < n; i++)
						if (parts[i] != 0)
							combo_add(m, period, slices->s[i].price_u,
							          parts[i]);
					continue;
				}
			}
			/*
			 * The meter's own TOU table put energy in a period our calendar
			 * had no time in: use that period's price now, or, when the
			 * tariff has no price for it, price the energy by time.
			 */
			price = tou_calendar_price_at(cal, at - 1, period);
			if (price != TOU_NO_PRICE)
			{
				combo_add(m, period, price, energy);
				continue;
			}
			for (int i = 0; i < slices->n; i++)
				weights[i] = slices->s[i].usec;
			split_exact(energy, weights, slices->n, parts);
			for (int i = 0; i < slices->n; i++)
				if (parts[i] != 0)
					combo_add(m, slices->s[i].period, slices->s[i].price_u,
					          parts[i]);
		}
	}
	else
	{
		int64 energy = wh_to_units(m, delta_wh);

		if (energy == 0)
			return;
		for (int i = 0; i < slices->n; i++)
			weights[i] = slices->s[i].usec;
		split_exact(energy, weights, slices->n, parts);
		for (int i = 0; i < slices->n; i++)
			if (parts[i] != 0)
				combo_add(m, slices->s[i].period, slices->s[i].price_u,
				          parts[i]);
	}
}

/* jsonb helpers for the entry detail, built in binary form (no parsing) */
static void
jb_key(JsonbParseState **st, const char *key)
{
	JsonbValue v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &v);
}

static void
jb_string(JsonbParseState **st, const char *key, const char *str)
{
	JsonbValue v;

	jb_key(st, key);
	v.type = jbvString;
	v.val.string.val = (char *) str;
	v.val.string.len = strlen(str);
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
jb_fixed(JsonbParseState **st, const char *key, int64 value, int scale)
{
	JsonbValue v;

	jb_key(st, key);
	v.type = jbvNumeric;
	v.val.numeric = fixed_to_numeric(value, scale);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * {"readings": n, "periods": [{"period", "kwh", "price", "amount"}, ...]}:
 * kWh and price of each (period, price) priced in the entry; amounts to
 * 1e-6 yuan, truncated (the entry's amount is the exact sum, in fen, after
 * the sub-fen carry).
 */
static Datum
entry_detail(Meter *m)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	jb_fixed(&st, "readings", m->nreadings, 0);
	jb_key(&st, "periods");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < m->ncombos; i++)
	{
		Combo *c = &m->combos[i];

		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		jb_string(&st, "period", tou_period_names[c->period]);
		jb_fixed(&st, "kwh", c->energy, 6);
		jb_fixed(&st, "price", c->price_u, 6);
		jb_fixed(&st, "amount", (int64) (c->amount / 1000000), 6);
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/* End of a meter: queue its ledger entry and cursor update. */
static void
finish_meter(Meter *m, Batch *b, SettleTotals *tot)
{
	int128 total = m->carry;
	int64 energy = 0;
	int64 fen;

	if (!m->moved)
		return;
	for (int i = 0; i < m->ncombos; i++)
	{
		total += m->combos[i].amount;
		energy += m->combos[i].energy;
	}
	fen = (int64) (total / PICO_PER_FEN);
	m->carry = (int64) (total % PICO_PER_FEN);
	tot->meters++;
	tot->readings += m->nreadings;

	if (energy > 0 || fen > 0)
	{
		vec_push(&b->l_p, Int64GetDatum(m->property_id), false);
		vec_push(&b->l_a, Int64GetDatum(m->account_id), false);
		vec_push(&b->l_m, Int64GetDatum(m->meter_id), false);
		vec_push(&b->l_amt, NumericGetDatum(fixed_to_numeric(-fen, 2)), false);
		vec_push(&b->l_kwh, NumericGetDatum(fixed_to_numeric(energy, 6)),
		         false);
		vec_push(&b->l_detail, entry_detail(m), false);
		vec_push(&b->l_from, TimestampTzGetDatum(m->first_from), false);
		vec_push(&b->l_to, TimestampTzGetDatum(m->at), false);
		tot->entries++;
		tot->energy += energy;
		tot->fen += fen;
	}

	{
		ItemPointer tid = palloc(sizeof(ItemPointerData));

		ItemPointerCopy(&m->tid, tid);
		vec_push(&b->c_tid, PointerGetDatum(tid), false);
	}
	vec_push(&b->c_t, TimestampTzGetDatum(m->at), false);
	vec_push(&b->c_e, Int64GetDatum(m->e), false);
	if (m->nr > 0)
	{
		/* "{r1,...,rn}": at most 8 registers of 20 digits, on the stack */
		char regs[TOU_MAX_REGISTERS * 21 + 3];
		int len = 0;

		regs[len++] = '{';
		for (int i = 0; i < m->nr; i++)
			len += snprintf(regs + len, sizeof(regs) - len, "%s" INT64_FORMAT,
			                i ? "," : "", m->r[i]);
		regs[len++] = '}';
		regs[len] = '\0';
		vec_push(&b->c_r, CStringGetTextDatum(regs), false);
	}
	else
		vec_push(&b->c_r, (Datum) 0, true);
	vec_push(&b->c_carry, Int64GetDatum(m->carry), false);
}

static void
quarantine_reading(Meter *m, Batch *b, TimestampTz at, int64 e,
                   const char *why)
{
	char detail[256];

	snprintf(detail, sizeof(detail),
	         "energy went from " INT64_FORMAT " Wh at %s to " INT64_FORMAT
	         " Wh "
	         "(%s); not a register rollover",
	         m->e, timestamptz_to_str(m->at), e, why);
	vec_push(&b->q_p, Int64GetDatum(m->property_id), false);
	vec_push(&b->q_m, Int64GetDatum(m->meter_id), false);
	vec_push(&b->q_t, TimestampTzGetDatum(at), false);
	vec_push(&b->q_detail, CStringGetTextDatum(detail), false);
}

/* A reading of the meter being settled, buffered until its last row. */
typedef struct Pending
{
	TimestampTz at;
	int64 e;
	int nregs;
	int64 regs[TOU_MAX_REGISTERS];
} Pending;

typedef struct PendingList
{
	int n;
	int cap;
	bool sorted;
	Pending *r;
} PendingList;

static int
pending_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const Pending *) a)->at;
	TimestampTz y = ((const Pending *) b)->at;

	return (x > y) - (x < y);
}

/* Prices one reading of the meter, in time order. */
static void
price_reading(Meter *m, Batch *b, SettleTotals *tot, TouSliceList *slices,
              TouCalendar *cal, const Pending *p)
{
	int64 delta;
	int64 reg_delta[TOU_MAX_REGISTERS];
	int use_regs;

	if (!m->has_at)
	{
		/* baseline: nothing to price before the first reading */
		m->has_at = true;
		m->at = p->at;
		m->e = p->e;
		m->nr = p->nregs;
		memcpy(m->r, p->regs, sizeof(int64) * p->nregs);
		m->moved = true;
		m->first_from = p->at;
		return;
	}
	delta = registers_delta(m->e, p->e, m->modulus);
	if (delta < 0)
	{
		quarantine_reading(m, b, p->at, p->e, "register went backwards");
		tot->quarantined++;
		return;
	}
	use_regs = (p->nregs > 0 && p->nregs == m->nr) ? p->nregs : 0;
	for (int i = 0; i < use_regs; i++)
	{
		reg_delta[i] = registers_delta(m->r[i], p->regs[i], m->modulus);
		if (reg_delta[i] < 0)
			use_regs = 0; /* inconsistent registers: price the total */
	}
	if (!m->moved)
		m->first_from = m->at;
	price_interval(m, cal, slices, p->at, delta, use_regs, reg_delta);
	m->at = p->at;
	m->e = p->e;
	m->nr = p->nregs;
	memcpy(m->r, p->regs, sizeof(int64) * p->nregs);
	m->moved = true;
	m->nreadings++;
}

/*
 * End of a meter's rows: prices its buffered readings in time order (the
 * partitions' index scans deliver them sorted, except a row from the
 * default partition, which comes last), then queues its entry and cursor.
 */
static void
settle_meter(Meter *m, PendingList *pend, Batch *b, SettleTotals *tot,
             TouSliceList *slices, TouCalendar *cal)
{
	if (!pend->sorted)
		qsort(pend->r, pend->n, sizeof(Pending), pending_cmp);
	for (int i = 0; i < pend->n; i++)
		price_reading(m, b, tot, slices, cal, &pend->r[i]);
	pend->n = 0;
	pend->sorted = true;
	finish_meter(m, b, tot);
}

/* Everything one batch's rows are priced into. */
typedef struct BatchState
{
	Meter m;
	PendingList pend;
	Batch b;
	SettleTotals *tot;
	TouSliceList slices;
	TouCalendar *cal;
	int64 picked;
	MemoryContext
	    cxt; /* where the batch's results live (not the executor's) */
} BatchState;

/*
 * Handles one row of the batch statement (columns as in sql_batch): starts
 * a new meter (settling the previous one) or buffers one more reading.
 */
static void
process_row(const Datum *v, const bool *isnull, BatchState *st)
{
	int64 property_id = DatumGetInt64(v[0]);
	int64 meter_id = DatumGetInt64(v[1]);
	Meter *m = &st->m;
	PendingList *pend = &st->pend;
	Pending *p;

	if (meter_id != m->meter_id || property_id != m->property_id)
	{
		/* the plan streams meters in key order, each once (see sql_batch) */
		if (property_id < m->property_id ||
		    (property_id == m->property_id && meter_id < m->meter_id))
			elog(ERROR, "settlement rows out of order: meter %lld after %lld",
			     (long long) meter_id, (long long) m->meter_id);
		settle_meter(m, pend, &st->b, st->tot, &st->slices, st->cal);
		st->picked++;
		memset(m, 0, offsetof(Meter, combos));
		m->property_id = property_id;
		m->meter_id = meter_id;
		m->account_id = DatumGetInt64(v[2]);
		m->tariff_id = DatumGetInt64(v[3]);
		m->mult = DatumGetInt64(v[4]);
		m->modulus = DatumGetInt64(v[5]);
		m->has_at = !isnull[6];
		if (m->has_at)
			m->at = DatumGetTimestampTz(v[6]);
		if (isnull[7])
			m->has_at =
			    false; /* no baseline energy: the first reading is it */
		else
			m->e = DatumGetInt64(v[7]);
		m->nr = isnull[8] ? 0 : registers_read(v[8], m->r);
		m->carry = DatumGetInt64(v[9]);
		ItemPointerCopy((ItemPointer) DatumGetPointer(v[13]), &m->tid);
		st->cal = tou_calendar_get(m->tariff_id);
	}

	if (isnull[10])
		return; /* picked, but no reading in range */
	if (pend->n == pend->cap)
	{
		pend->cap = pend->cap ? pend->cap * 2 : 64;
		pend->r = pend->r ? repalloc(pend->r, sizeof(Pending) * pend->cap)
		                  : palloc(sizeof(Pending) * pend->cap);
	}
	p = &pend->r[pend->n];
	p->at = DatumGetTimestampTz(v[10]);
	if (pend->n > 0 && p->at < pend->r[pend->n - 1].at)
		pend->sorted = false;
	p->e = DatumGetInt64(v[11]);
	p->nregs = isnull[12] ? 0 : registers_read(v[12], p->regs);
	pend->n++;
}

/*
 * The batch statement's rows go straight from the executor to process_row
 * (no copy of each row into an SPI tuple table, no SPI_getbinval).
 */
typedef struct BatchReceiver
{
	DestReceiver pub;
	BatchState *st;
} BatchReceiver;

static bool
batch_receive(TupleTableSlot *slot, DestReceiver *self)
{
	BatchState *st = ((BatchReceiver *) self)->st;
	MemoryContext old = MemoryContextSwitchTo(st->cxt);

	slot_getallattrs(slot);
	process_row(slot->tts_values, slot->tts_isnull, st);
	MemoryContextSwitchTo(old);
	return true;
}

static void
batch_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	if (typeinfo->natts != 14)
		elog(ERROR, "settlement batch returned %d columns", typeinfo->natts);
}

static void
batch_noop(DestReceiver *self)
{
}

/*
 * Runs the batch statement into st, planned for this batch with sorts,
 * hash joins and nested loops off: the only plan left is the ordered one
 * (the meters' index scans merge joined in key order, stopped by the LIMIT;
 * the lateral readings, which can only be a nested loop, stay one), which
 * reads one batch of meters. The planner cannot know how many meters have
 * new readings, nor how many fall in a worker's share of the accounts, and
 * it misjudges the row comparisons on the keys (it took a batch's 20,000
 * meters for one and chose nested loops that rescanned every remaining
 * meter per meter: 100 s a batch); when it guesses fewer than the batch it
 * would also join and sort every remaining meter for every batch.
 */
/*
 * Turns the given planner methods off until AtEOXact_GUC(true, level) with
 * the level returned. The run's statements are planned for each batch, and
 * the planner's estimates (of a row comparison, of arrays) are wrong in
 * ways that cost whole-table scans:
 *  - the batch: merge joins in key order (see sql_batch);
 *  - the cursor update: a TID scan per locked cursor, not a hash of every
 *    cursor of the table per batch (a sixth of the cursor phase).
 */
static const char *const batch_off[] = {"enable_sort", "enable_hashjoin",
                                        "enable_nestloop", NULL};
static const char *const cursor_off[] = {"enable_hashjoin", "enable_mergejoin",
                                         NULL};

static int
planner_off(const char *const *methods)
{
	int level = NewGUCNestLevel();

	for (; *methods; methods++)
		(void) set_config_option(*methods, "off", PGC_USERSET, PGC_S_SESSION,
		                         GUC_ACTION_SAVE, true, 0, false);
	return level;
}

static void
run_batch(Datum *batch_args, BatchState *st)
{
	static const Oid types[6] = {INT8OID, INT8OID, INT4OID,
	                             INT8OID, INT8OID, TIMESTAMPTZOID};
	ParamListInfo params = makeParamList(6);
	BatchReceiver recv;
	SPIExecuteOptions opts;
	int nestlevel;
	int rc;

	for (int i = 0; i < 6; i++)
	{
		params->params[i].value = batch_args[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	memset(&recv, 0, sizeof(recv));
	recv.pub.receiveSlot = batch_receive;
	recv.pub.rStartup = batch_startup;
	recv.pub.rShutdown = batch_noop;
	recv.pub.rDestroy = batch_noop;
	recv.pub.mydest = DestNone; /* SPI stores nothing; rc is SPI_OK_UTILITY */
	recv.st = st;
	memset(&opts, 0, sizeof(opts));
	opts.params = params;
	opts.dest = &recv.pub;

	nestlevel = planner_off(batch_off);
	rc = SPI_execute_plan_extended(plan_batch, &opts);
	AtEOXact_GUC(true, nestlevel);
	if (rc < 0)
		elog(ERROR, "settlement batch failed: %s", SPI_result_code_string(rc));
}

static void
exec_plan(SPIPlanPtr plan, Datum *args, int expect)
{
	int rc = SPI_execute_plan(plan, args, NULL, false, 0);

	if (rc != expect)
		elog(ERROR, "settlement statement failed: %s",
		     SPI_result_code_string(rc));
}

static void
write_batch(Batch *b)
{
	if (b->q_p.n > 0)
	{
		Datum args[4] = {vec_array(&b->q_p, INT8OID),
		                 vec_array(&b->q_m, INT8OID),
		                 vec_array(&b->q_t, TIMESTAMPTZOID),
		                 vec_array(&b->q_detail, TEXTOID)};

		exec_plan(plan_quarantine, args, SPI_OK_SELECT);
	}
	if (b->l_p.n > 0)
	{
		Datum args[8] = {vec_array(&b->l_p, INT8OID),
		                 vec_array(&b->l_a, INT8OID),
		                 vec_array(&b->l_m, INT8OID),
		                 vec_array(&b->l_amt, NUMERICOID),
		                 vec_array(&b->l_kwh, NUMERICOID),
		                 vec_array(&b->l_detail, JSONBOID),
		                 vec_array(&b->l_from, TIMESTAMPTZOID),
		                 vec_array(&b->l_to, TIMESTAMPTZOID)};

		exec_plan(plan_ledger, args, SPI_OK_INSERT);
	}
	if (b->c_tid.n > 0)
	{
		Datum args[5] = {
		    vec_array(&b->c_tid, TIDOID), vec_array(&b->c_t, TIMESTAMPTZOID),
		    vec_array(&b->c_e, INT8OID), vec_array(&b->c_r, TEXTOID),
		    vec_array(&b->c_carry, INT8OID)};
		int level = planner_off(cursor_off);

		exec_plan(plan_cursor, args, SPI_OK_UPDATE);
		AtEOXact_GUC(true, level);
		/* the cursors were locked by this transaction: all of them move */
		if (SPI_processed != (uint64) b->c_tid.n)
			elog(ERROR, "settlement moved %llu of %d locked cursors",
			     (unsigned long long) SPI_processed, b->c_tid.n);
	}
}

/*
 * The settlement loop: batches of meters picked in key order from
 * partition part_k of part_n (accounts split by blocks of account_id,
 * so concurrent partitions never touch the same account), in the current
 * transaction, with SPI connected by the caller. Adds to *tot.
 */
void
settle_run(const SettleArgs *args, SettleTotals *tot)
{
	int64 last_p = PG_INT64_MIN;
	int64 last_m = PG_INT64_MIN;
	int64 done = 0;
	MemoryContext batch_cxt;
	MemoryContext old;
	int guc_nest;

#ifdef __GLIBC__
	/*
	 * Every batch allocates and frees the same tens of megabytes (SPI
	 * results, arrays, executor state); by default glibc returns them to the
	 * kernel after each statement and every batch faults them in again,
	 * page by page (a sixth of a run on a virtual machine). Keep freed
	 * memory in the process for reuse during the run instead (the peak is
	 * bounded by pg_prepaid.settle_batch_size); it is released at the end.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
#endif
	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "settle batch",
	                                  ALLOCSET_DEFAULT_SIZES);
	prepare_plans();
	/*
	 * No JIT for the run's statements: they are planned for every batch,
	 * and compiling them cost more than it saved (tens of ms per batch).
	 */
	guc_nest = NewGUCNestLevel();
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
	                         GUC_ACTION_SAVE, true, 0, false);
	/*
	 * One partition of a parallel run: its revenue totals go to a slot of
	 * their own, so the run's processes never wait for each other's row
	 * (settle_parallel.c).
	 */
	if (args->part_n > 1)
	{
		char slot[12];

		snprintf(slot, sizeof(slot), INT64_FORMAT, args->part_k);
		(void) set_config_option("pg_prepaid.rollup_slot", slot, PGC_USERSET,
		                         PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
		                         false);
	}

	while (done < args->max_meters)
	{
		Datum batch_args[6];
		BatchState st;
		int64 want = Min((int64) args->batch_size, args->max_meters - done);

		old = MemoryContextSwitchTo(batch_cxt);
		memset(&st, 0, sizeof(st));
		st.m.property_id = PG_INT64_MIN;
		st.m.meter_id = PG_INT64_MIN;
		st.pend.sorted = true;
		st.tot = tot;
		st.cxt = batch_cxt;
		tou_slices_init(&st.slices);

		/* 1.-3. pick and lock meters, stream their readings, price */
		batch_args[0] = Int64GetDatum(last_p);
		batch_args[1] = Int64GetDatum(last_m);
		batch_args[2] = Int32GetDatum((int32) want);
		batch_args[3] = Int64GetDatum(args->part_n);
		batch_args[4] = Int64GetDatum(args->part_k);
		batch_args[5] = TimestampTzGetDatum(
		    GetCurrentTimestamp() +
		    (int64) (prepaid_max_clock_skew + 60) * USECS_PER_SEC);
		run_batch(batch_args, &st);
		settle_meter(&st.m, &st.pend, &st.b, tot, &st.slices, st.cal);
		if (st.picked == 0)
		{
			MemoryContextSwitchTo(old);
			break;
		}
		last_p = st.m.property_id;
		last_m = st.m.meter_id;

		/* 4. write */
		write_batch(&st.b);
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
		done += st.picked;
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(batch_cxt);
	AtEOXact_GUC(true, guc_nest);
#ifdef __GLIBC__
	/*
	 * The run is over: give back what its batches freed, and let what the
	 * transaction frees at its end go back too (glibc's default threshold).
	 */
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
	malloc_trim(0);
#endif
}

Datum
prepaid_settle(PG_FUNCTION_ARGS)
{
	SettleArgs args;
	SettleTotals tot = {0};
	int workers;
	TupleDesc rdesc;
	Datum values[6];
	bool nulls[6] = {false};

	args.max_meters = PG_ARGISNULL(0) ? PG_INT64_MAX : PG_GETARG_INT32(0);
	args.batch_size =
	    PG_ARGISNULL(1) ? prepaid_settle_batch : PG_GETARG_INT32(1);
	args.part_n = 1;
	args.part_k = 0;
	workers = PG_ARGISNULL(2) ? prepaid_settle_workers : PG_GETARG_INT32(2);
	if (args.max_meters <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("max_meters must be positive")));
	if (args.batch_size <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("batch_size must be positive")));
	if (workers < 1 || workers > SETTLE_MAX_WORKERS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("workers must be between 1 and %d",
		                       SETTLE_MAX_WORKERS)));
	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "settle must return a composite type");
	rdesc = BlessTupleDesc(rdesc);

	if (workers > 1)
		settle_parallel(&args, workers, &tot);
	else
	{
		SPI_connect();
		settle_run(&args, &tot);
		SPI_finish();
	}

	values[0] = Int64GetDatum(tot.meters);
	values[1] = Int64GetDatum(tot.readings);
	values[2] = Int64GetDatum(tot.entries);
	values[3] = NumericGetDatum(fixed_to_numeric(tot.energy, 6));
	values[4] = NumericGetDatum(fixed_to_numeric(tot.fen, 2));
	values[5] = Int64GetDatum(tot.quarantined);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, values, nulls)));
}
