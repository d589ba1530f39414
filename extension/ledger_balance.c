/*
 * ledger_balance.c
 *	  prepaid._ledger_after_insert(): the ledger's AFTER INSERT statement
 *	  trigger. Moves every account's balance by the sum of its new entries
 *	  and runs the supply decision for the accounts that crossed a level, in
 *	  the inserting transaction, so balance = sum(ledger) at every commit
 *	  whoever writes entries.
 *
 * One pass over the transition table collects (property, account, amount);
 * the entries are sorted by account in C and summed per account, and one
 * UPDATE applies the sums in key order through a nested loop: each account
 * is locked and updated as it comes, so two statements that move many
 * balances queue behind each other instead of deadlocking (see
 * docs/architecture.md, "Lock order"). A settlement run of 100,000 entries
 * spent a sixth of its time grouping and sorting them in SQL.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(prepaid_ledger_after_insert);

/*
 * Applies the per-account sums in the order given (key order: the nested
 * loop over the arrays locks the accounts in that order) and returns how
 * many accounts it found and which of them crossed their warning level or
 * their cut-off (-credit_limit), either way; a new account's first entries
 * (from 0) may start below the warning level. Only those can change a
 * supply decision.
 */
static const char *const sql_apply =
    "WITH u AS ("
    "  UPDATE prepaid.account a SET balance = a.balance + u.d "
    "    FROM unnest($1::int8[], $2::int8[], $3::numeric[]) AS u(p, k, d) "
    "   WHERE a.property_id = u.p AND a.account_id = u.k "
    "  RETURNING a.account_id, a.balance AS new_bal, "
    "            a.balance - u.d AS old_bal, a.credit_limit, a.warning_level) "
    "SELECT count(*), array_agg(account_id) FILTER ("
    "         WHERE (new_bal < warning_level) <> (old_bal < warning_level) "
    "            OR (new_bal < -credit_limit) <> (old_bal < -credit_limit) "
    "            OR (old_bal = 0 AND new_bal < warning_level)) "
    "  FROM u";

static SPIPlanPtr plan_apply;
static SPIPlanPtr plan_supply;

/* One entry's account and amount. */
typedef struct Delta
{
	int64 property_id;
	int64 account_id;
	Datum amount; /* numeric */
} Delta;

static int
delta_cmp(const void *a, const void *b)
{
	const Delta *x = a;
	const Delta *y = b;

	if (x->property_id != y->property_id)
		return x->property_id < y->property_id ? -1 : 1;
	if (x->account_id != y->account_id)
		return x->account_id < y->account_id ? -1 : 1;
	return 0;
}

/* The 0-based index of a ledger column (PostgreSQL's own lookup by name). */
static int
column_index(TupleDesc desc, const char *name)
{
	int attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "prepaid.ledger has no column \"%s\"", name);
	return attnum - 1;
}

/* The new entries, one Delta each, in the trigger's memory context. */
static Delta *
collect(TriggerData *td, int *n_out)
{
	TupleDesc desc = RelationGetDescr(td->tg_relation);
	int at_p = column_index(desc, "property_id");
	int at_a = column_index(desc, "account_id");
	int at_amt = column_index(desc, "amount");
	int need = Max(at_p, Max(at_a, at_amt)) + 1;
	Tuplestorestate *ts = td->tg_newtable;
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int cap = 1024;
	int n = 0;
	Delta *d = palloc(sizeof(Delta) * cap);

	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		slot_getsomeattrs(slot, need);
		if (n == cap)
		{
			cap *= 2;
			d = repalloc_huge(d, sizeof(Delta) * cap);
		}
		/* all three are NOT NULL columns */
		d[n].property_id = DatumGetInt64(slot->tts_values[at_p]);
		d[n].account_id = DatumGetInt64(slot->tts_values[at_a]);
		d[n].amount = datumCopy(slot->tts_values[at_amt], false, -1);
		n++;
	}
	ExecDropSingleTupleTableSlot(slot);
	*n_out = n;
	return d;
}

static SPIPlanPtr
keep(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for the ledger trigger: %s",
		     SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

Datum
prepaid_ledger_after_insert(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Delta *d;
	int n;
	int k = 0;
	Datum *p, *a, *amt;
	Datum args[3];
	bool isnull;
	int64 updated;
	Datum crossed;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
	    !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
	    !TRIGGER_FIRED_BY_INSERT(td->tg_event) || td->tg_newtable == NULL)
		elog(ERROR, "prepaid._ledger_after_insert must be an AFTER INSERT "
		            "statement trigger with a NEW TABLE");

	d = collect(td, &n);
	if (n == 0)
		return PointerGetDatum(NULL);
	qsort(d, n, sizeof(Delta), delta_cmp);

	/* one sum per account, in key order */
	p = palloc(sizeof(Datum) * n);
	a = palloc(sizeof(Datum) * n);
	amt = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		if (k > 0 && d[i].property_id == DatumGetInt64(p[k - 1]) &&
		    d[i].account_id == DatumGetInt64(a[k - 1]))
		{
			amt[k - 1] =
			    DirectFunctionCall2(numeric_add, amt[k - 1], d[i].amount);
			continue;
		}
		p[k] = Int64GetDatum(d[i].property_id);
		a[k] = Int64GetDatum(d[i].account_id);
		amt[k] = d[i].amount;
		k++;
	}
	args[0] = PointerGetDatum(
	    construct_array(p, k, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(
	    construct_array(a, k, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(
	    construct_array(amt, k, NUMERICOID, -1, false, TYPALIGN_INT));

	SPI_connect();
	if (plan_apply == NULL)
	{
		Oid types[3] = {INT8ARRAYOID, INT8ARRAYOID, NUMERICARRAYOID};
		Oid supply[1] = {INT8ARRAYOID};

		plan_apply = keep(sql_apply, 3, types);
		plan_supply = keep("SELECT prepaid._supply_decide($1)", 1, supply);
	}
	/*
	 * The function is declared with search_path pinned and hash and merge
	 * joins off: the only plan is the nested loop over the arrays, in key
	 * order.
	 */
	if (SPI_execute_plan(plan_apply, args, NULL, false, 1) != SPI_OK_SELECT ||
	    SPI_processed != 1)
		elog(ERROR, "ledger balance update failed");
	updated = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
	                                      SPI_tuptable->tupdesc, 1, &isnull));
	crossed = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
	                        &isnull);
	if (updated != k)
		ereport(ERROR,
		        (errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
		         errmsg("ledger entry for an unknown account"),
		         errdetail("%d of the %d accounts of the new entries exist.",
		                   (int) updated, k)));
	if (!isnull)
	{
		Datum sargs[1] = {crossed};

		if (SPI_execute_plan(plan_supply, sargs, NULL, false, 0) !=
		    SPI_OK_SELECT)
			elog(ERROR, "supply decision failed");
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
