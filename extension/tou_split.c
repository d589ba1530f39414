/*
 * tou_split.c
 *	  SQL entry points over the compiled tariff calendars:
 *	    prepaid.tou_split(tariff_id, t_from, t_to, kwh) -> (period, kwh)
 *	    prepaid.tou_price(tariff_id, t, period) -> numeric
 *	    prepaid._tariff_invalidate()
 *
 * tou_split splits energy over an interval in proportion to the time spent in
 * each period; the parts are exact to 1e-6 kWh and add up to the input
 * exactly (largest remainder).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "exact.h"
#include "registers.h"
#include "tou_calendar.h"

PG_FUNCTION_INFO_V1(prepaid_tou_split);
PG_FUNCTION_INFO_V1(prepaid_tou_price);
PG_FUNCTION_INFO_V1(prepaid_tariff_invalidate);

extern void tou_calendar_broadcast(void);

typedef struct SplitState
{
	int n;
	int next;
	int16 period[TOU_NPERIODS];
	int64 part[TOU_NPERIODS];
} SplitState;

static TupleDesc split_desc = NULL;
static Datum period_text[TOU_NPERIODS];

static void
split_prepare(FunctionCallInfo fcinfo)
{
	MemoryContext old;
	TupleDesc desc;

	if (split_desc != NULL)
		return;
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "tou_split must return a composite type");
	old = MemoryContextSwitchTo(TopMemoryContext);
	split_desc = BlessTupleDesc(CreateTupleDescCopy(desc));
	for (int i = 0; i < TOU_NPERIODS; i++)
		period_text[i] = PointerGetDatum(cstring_to_text(tou_period_names[i]));
	MemoryContextSwitchTo(old);
}

/* Validated arguments common to the SQL functions. */
static void
check_interval(TimestampTz from, TimestampTz to)
{
	if (TIMESTAMP_NOT_FINITE(from) || TIMESTAMP_NOT_FINITE(to))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("interval bounds must be finite")));
	if (to <= from)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("t_to must be later than t_from"),
		                errdetail("Got %s to %s.", timestamptz_to_str(from),
		                          timestamptz_to_str(to))));
}

/*
 * Splits energy (1e-6 kWh) over [from, to) by the time spent in each
 * period; fills period[] and part[] (periods in order, only those with
 * time) and returns how many. The parts add up to energy exactly.
 */
static int
split_by_time(TouCalendar *cal, TimestampTz from, TimestampTz to, int64 energy,
              int16 *period, int64 *part)
{
	TouSliceList slices;
	int64 usec[TOU_NPERIODS] = {0};
	int64 weights[TOU_NPERIODS];
	int n = 0;

	tou_slices_init(&slices);
	tou_calendar_slices(cal, from, to, &slices);
	for (int i = 0; i < slices.n; i++)
		usec[slices.s[i].period] += slices.s[i].usec;
	for (int p = 0; p < TOU_NPERIODS; p++)
		if (usec[p] > 0)
		{
			period[n] = (int16) p;
			weights[n++] = usec[p];
		}
	split_exact(energy, weights, n, part);
	return n;
}

/*
 * prepaid.tou_split(): computes all parts on the first call. In a FROM
 * clause (materialize mode allowed) the rows go straight into the
 * executor's tuplestore, with no per-row re-entry; in a select list they
 * are returned one per call.
 */
Datum
prepaid_tou_split(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FuncCallContext *funcctx;
	SplitState *st;
	SplitState local;

	if (rsinfo != NULL && IsA(rsinfo, ReturnSetInfo) &&
	    (rsinfo->allowedModes & SFRM_Materialize) != 0)
		st = &local;
	else if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		st = palloc(sizeof(SplitState));
		MemoryContextSwitchTo(old);
		st->n = -1;
		funcctx->user_fctx = st;
	}
	else
		st = NULL;

	if (st != NULL)
	{
		int64 tariff_id = PG_GETARG_INT64(0);
		TimestampTz from = PG_GETARG_TIMESTAMPTZ(1);
		TimestampTz to = PG_GETARG_TIMESTAMPTZ(2);
		int64 energy = numeric_to_fixed(PG_GETARG_NUMERIC(3), 6, "kwh");

		if (energy < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			                errmsg("kwh must not be negative")));
		check_interval(from, to);
		split_prepare(fcinfo);
		st->next = 0;
		st->n = split_by_time(tou_calendar_get(tariff_id), from, to, energy,
		                      st->period, st->part);
	}

	if (st == &local)
	{
		InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
		for (int i = 0; i < st->n; i++)
		{
			Datum values[2];
			bool nulls[2] = {false, false};

			values[0] = period_text[st->period[i]];
			values[1] = NumericGetDatum(fixed_to_numeric(st->part[i], 6));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
			                     nulls);
		}
		return (Datum) 0;
	}

	funcctx = SRF_PERCALL_SETUP();
	st = (SplitState *) funcctx->user_fctx;
	if (st->next < st->n)
	{
		Datum values[2];
		bool nulls[2] = {false, false};
		int i = st->next++;

		values[0] = period_text[st->period[i]];
		values[1] = NumericGetDatum(fixed_to_numeric(st->part[i], 6));
		SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(heap_form_tuple(
		                             split_desc, values, nulls)));
	}
	SRF_RETURN_DONE(funcctx);
}

Datum
prepaid_tou_price(PG_FUNCTION_ARGS)
{
	int64 tariff_id = PG_GETARG_INT64(0);
	TimestampTz t = PG_GETARG_TIMESTAMPTZ(1);
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	int period = tou_period_from_name(name);
	int64 price;

	if (period < 0)
		ereport(ERROR,
		        (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		         errmsg("unknown period \"%s\"", name),
		         errhint("Periods are sharp, peak, flat, valley and deep.")));
	if (TIMESTAMP_NOT_FINITE(t))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("the instant must be finite")));
	price = tou_calendar_price_at(tou_calendar_get(tariff_id), t, period);
	if (price == TOU_NO_PRICE)
		PG_RETURN_NULL();
	PG_RETURN_NUMERIC(fixed_to_numeric(price, 6));
}

Datum
prepaid_tariff_invalidate(PG_FUNCTION_ARGS)
{
	tou_calendar_broadcast();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(prepaid_interval_kwh);

/*
 * prepaid._interval_kwh(tariff_id, mult, modulus, t_from, t_to, wh,
 *                       prev_rate int8[], rate int8[]) -> numeric[5]
 * The energy of one reading interval per period (sharp, peak, flat,
 * valley, deep), kWh to 1e-6 on the primary side, for the rollups: from
 * the per-rate registers when both readings have the same number of them
 * (mapped to periods by the tariff version in force at the interval's
 * end), otherwise wh x mult split over the calendar by time. The rollup
 * calls it once per interval, so it does in C what a SQL function with a
 * UNION would do per row.
 */
Datum
prepaid_interval_kwh(PG_FUNCTION_ARGS)
{
	int64 tariff_id = PG_GETARG_INT64(0);
	int64 mult = PG_GETARG_INT64(1);
	int64 modulus = PG_GETARG_INT64(2);
	TimestampTz from = PG_GETARG_TIMESTAMPTZ(3);
	TimestampTz to = PG_GETARG_TIMESTAMPTZ(4);
	int64 wh = PG_GETARG_INT64(5);
	int64 units[TOU_NPERIODS] = {0};
	Datum out[TOU_NPERIODS];
	TouCalendar *cal;
	int nprev = 0, ncur = 0;
	int64 prev[TOU_MAX_REGISTERS], cur[TOU_MAX_REGISTERS];

	check_interval(from, to);
	cal = tou_calendar_get(tariff_id);
	if (!PG_ARGISNULL(6) && !PG_ARGISNULL(7))
	{
		nprev = registers_read(PG_GETARG_DATUM(6), prev);
		ncur = registers_read(PG_GETARG_DATUM(7), cur);
	}
	if (ncur > 0 && ncur == nprev)
	{
		int16 reg_period[TOU_MAX_REGISTERS];
		int nmap = tou_calendar_registers(cal, to - 1, reg_period);

		for (int i = 0; i < ncur && i < nmap; i++)
			if (reg_period[i] >= 0)
				/* a step backwards without a rollover counts 0 */
				units[reg_period[i]] +=
				    Max(registers_delta(prev[i], cur[i], modulus), 0) * mult *
				    UNITS_PER_WH;
	}
	else if (wh > 0)
	{
		int16 period[TOU_NPERIODS];
		int64 parts[TOU_NPERIODS];
		int n = split_by_time(cal, from, to, wh * mult * UNITS_PER_WH, period,
		                      parts);

		for (int i = 0; i < n; i++)
			units[period[i]] = parts[i];
	}
	for (int p = 0; p < TOU_NPERIODS; p++)
		out[p] = NumericGetDatum(fixed_to_numeric(units[p], 6));
	PG_RETURN_ARRAYTYPE_P(construct_array(out, TOU_NPERIODS, NUMERICOID, -1,
	                                      false, TYPALIGN_INT));
}
