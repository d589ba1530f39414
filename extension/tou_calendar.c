/*
 * tou_calendar.c
 *	  Compiles a tariff (all its versions) from the prepaid.tariff_* tables
 *	  into a compact per-backend structure and splits intervals with it.
 *
 * The compiled calendars live in a child of CacheMemoryContext, in a hash
 * table keyed by tariff id. Any change to the tariff tables fires a
 * statement trigger that broadcasts a relcache invalidation for
 * prepaid.tariff (prepaid._tariff_invalidate()); our relcache callback then
 * drops every compiled calendar, in this backend and all others.
 *
 * Walking an interval: between two DST transitions the UTC offset of the
 * tariff's zone is constant, so local wall time is UTC plus that offset and
 * every period boundary of a local day maps to one UTC instant. A slice ends
 * at the first of: the end of the current schedule slot, the next DST
 * transition, the end of the tariff version, the end of the interval.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "tou_calendar.h"

const char *const tou_period_names[TOU_NPERIODS] = {"sharp", "peak", "flat",
                                                    "valley", "deep"};

typedef struct TouDaySched
{
	int nslots;
	int16 *start; /* slot start minutes, ascending, start[0] = 0 */
	int8 *period;
} TouDaySched;

typedef struct TouVersion
{
	TimestampTz from;
	TimestampTz to;
	int version_no;
	int nseasons;
	int ndaytypes;
	int8 season_of_md[13][32]; /* [month][day] -> season index */
	int8 daytype_of_wd[7];     /* [j2day: 0 = Sunday] -> day type */
	int nholidays;
	int32 *hol_day; /* DateADT, ascending */
	int8 *hol_dt;
	TouDaySched *sched; /* [season * ndaytypes + daytype] */
	int64 *price;       /* [season * TOU_NPERIODS + period] */
	int nregs;
	int16 regs[TOU_MAX_REGISTERS];
} TouVersion;

struct TouCalendar
{
	int64 tariff_id; /* hash key */
	pg_tz *tz;
	int nversions;
	TouVersion *v;
	/* UTC offset cache: offset is off_usec for instants in [off_lo, off_hi) */
	bool off_valid;
	TimestampTz off_lo;
	TimestampTz off_hi;
	int64 off_usec;
	/* day cache: the schedule of local day cached_day under version cached_v */
	int32 cached_day;
	int cached_v;
	int cached_season;
	TouDaySched *cached_sched;
};

static MemoryContext tou_cxt = NULL;
static HTAB *tou_hash = NULL;
static TouCalendar *tou_last = NULL;
static Oid tariff_relid = InvalidOid;
static bool callback_registered = false;

int
tou_period_from_name(const char *name)
{
	for (int i = 0; i < TOU_NPERIODS; i++)
		if (strcmp(name, tou_period_names[i]) == 0)
			return i;
	return -1;
}

void
tou_calendar_invalidate_all(void)
{
	tou_last = NULL;
	tou_hash = NULL;
	if (tou_cxt != NULL)
		MemoryContextReset(tou_cxt);
}

static void
tou_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == tariff_relid)
	{
		tou_calendar_invalidate_all();
		tariff_relid =
		    InvalidOid; /* looked up again: survives DROP EXTENSION */
	}
}

static void
tou_ensure_cache(void)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(tou_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (tou_cxt == NULL)
		tou_cxt = AllocSetContextCreate(CacheMemoryContext,
		                                "pg_prepaid tariff calendars",
		                                ALLOCSET_SMALL_SIZES);
	if (tou_hash == NULL)
	{
		HASHCTL ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(TouCalendar);
		ctl.hcxt = tou_cxt;
		tou_hash = hash_create("pg_prepaid tariff calendars", 16, &ctl,
		                       HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (!OidIsValid(tariff_relid))
	{
		Oid nsp = get_namespace_oid("prepaid", true);

		if (OidIsValid(nsp))
			tariff_relid = get_relname_relid("tariff", nsp);
	}
}

/* Broadcast "tariffs changed" to every backend (at commit) and to us now. */
void tou_calendar_broadcast(void);
void
tou_calendar_broadcast(void)
{
	tou_ensure_cache();
	if (OidIsValid(tariff_relid))
		CacheInvalidateRelcacheByRelid(tariff_relid);
	tou_calendar_invalidate_all();
}

/* ---- compiling ---------------------------------------------------------- */

static int64
get_int8(HeapTuple tup, TupleDesc desc, int col)
{
	bool isnull;
	Datum d = SPI_getbinval(tup, desc, col, &isnull);

	if (isnull)
		elog(ERROR, "unexpected null in tariff column %d", col);
	return DatumGetInt64(d);
}

static void
run_query(const char *sql, int64 tariff_id)
{
	Oid argtypes[1] = {INT8OID};
	Datum args[1] = {Int64GetDatum(tariff_id)};
	int rc = SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tariff query failed: %s", SPI_result_code_string(rc));
}

static TouVersion *
version_by_no(TouCalendar *cal, int version_no)
{
	for (int i = 0; i < cal->nversions; i++)
		if (cal->v[i].version_no == version_no)
			return &cal->v[i];
	elog(ERROR, "tariff %lld has no version %d", (long long) cal->tariff_id,
	     version_no);
	return NULL; /* keep compiler quiet */
}

static void
compile_calendar(TouCalendar *cal)
{
	MemoryContext old;
	int i;

	SPI_connect();

	/* tariff and zone */
	run_query("SELECT time_zone FROM prepaid.tariff WHERE tariff_id = $1",
	          cal->tariff_id);
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
		                errmsg("tariff %lld does not exist",
		                       (long long) cal->tariff_id)));
	{
		char *tzname =
		    SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		cal->tz = pg_tzset(tzname);
		if (cal->tz == NULL)
			ereport(ERROR,
			        (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			         errmsg("tariff %lld has an unknown time zone \"%s\"",
			                (long long) cal->tariff_id, tzname)));
	}

	/* versions */
	run_query("SELECT version_no::int8, valid_from, valid_to, registers::text "
	          "FROM prepaid.tariff_version WHERE tariff_id = $1 "
	          "ORDER BY valid_from",
	          cal->tariff_id);
	if (SPI_processed == 0)
		ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
		                errmsg("tariff %lld has no version",
		                       (long long) cal->tariff_id)));
	old = MemoryContextSwitchTo(tou_cxt);
	cal->nversions = (int) SPI_processed;
	cal->v = palloc0(sizeof(TouVersion) * cal->nversions);
	MemoryContextSwitchTo(old);
	for (i = 0; i < cal->nversions; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		TouVersion *v = &cal->v[i];
		char *regs = SPI_getvalue(tup, desc, 4);
		char *tok;
		char *save = NULL;

		v->version_no = (int) get_int8(tup, desc, 1);
		v->from = DatumGetTimestampTz(get_int8(tup, desc, 2));
		v->to = DatumGetTimestampTz(get_int8(tup, desc, 3));
		memset(v->season_of_md, -1, sizeof(v->season_of_md));
		memset(v->daytype_of_wd, -1, sizeof(v->daytype_of_wd));
		/* registers come as text '{sharp,peak,...}' */
		regs[strlen(regs) - 1] = '\0';
		for (tok = strtok_r(regs + 1, ",", &save);
		     tok != NULL && v->nregs < TOU_MAX_REGISTERS;
		     tok = strtok_r(NULL, ",", &save))
			v->regs[v->nregs++] = (int16) tou_period_from_name(tok);
	}

	/* season and day-type counts */
	run_query(
	    "SELECT version_no::int8, "
	    " (SELECT count(*) FROM prepaid.tariff_season s "
	    "   WHERE s.tariff_id = v.tariff_id AND s.version_no = v.version_no), "
	    " (SELECT count(*) FROM prepaid.tariff_day_type d "
	    "   WHERE d.tariff_id = v.tariff_id AND d.version_no = v.version_no) "
	    "FROM prepaid.tariff_version v WHERE tariff_id = $1",
	    cal->tariff_id);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		TouVersion *v = version_by_no(cal, (int) get_int8(tup, desc, 1));

		v->nseasons = (int) get_int8(tup, desc, 2);
		v->ndaytypes = (int) get_int8(tup, desc, 3);
		old = MemoryContextSwitchTo(tou_cxt);
		v->sched =
		    palloc0(sizeof(TouDaySched) * Max(1, v->nseasons * v->ndaytypes));
		v->price = palloc(sizeof(int64) * TOU_NPERIODS * Max(1, v->nseasons));
		MemoryContextSwitchTo(old);
		for (int k = 0; k < TOU_NPERIODS * Max(1, v->nseasons); k++)
			v->price[k] = TOU_NO_PRICE;
	}

	/* seasons: fill the month-day table (ranges may wrap the year end) */
	run_query(
	    "SELECT version_no::int8, season_no::int8, from_md::int8, to_md::int8 "
	    "FROM prepaid.tariff_season WHERE tariff_id = $1",
	    cal->tariff_id);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		TouVersion *v = version_by_no(cal, (int) get_int8(tup, desc, 1));
		int season = (int) get_int8(tup, desc, 2);
		int from_md = (int) get_int8(tup, desc, 3);
		int to_md = (int) get_int8(tup, desc, 4);
		int m = from_md / 100;
		int d = from_md % 100;
		static const int mdays[13] = {0,  31, 29, 31, 30, 31, 30,
		                              31, 31, 30, 31, 30, 31};

		for (int guard = 0; guard < 400; guard++)
		{
			v->season_of_md[m][d] = (int8) season;
			if (m * 100 + d == to_md)
				break;
			if (++d > mdays[m])
			{
				d = 1;
				m = (m == 12) ? 1 : m + 1;
			}
		}
	}

	/* day types */
	run_query("SELECT version_no::int8, day_type_no::int8, weekdays::text "
	          "FROM prepaid.tariff_day_type WHERE tariff_id = $1",
	          cal->tariff_id);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		TouVersion *v = version_by_no(cal, (int) get_int8(tup, desc, 1));
		int dt = (int) get_int8(tup, desc, 2);
		char *wds = SPI_getvalue(tup, desc, 3);

		for (char *p = wds; *p; p++)
			if (*p >= '1' && *p <= '7')
				v->daytype_of_wd[(*p - '0') % 7] =
				    (int8) dt; /* ISO 7 = Sunday = 0 */
	}

	/* holidays */
	run_query("SELECT h.version_no::int8, (h.day - DATE '2000-01-01')::int8, "
	          " d.day_type_no::int8 "
	          "FROM prepaid.tariff_holiday h JOIN prepaid.tariff_day_type d "
	          " USING (tariff_id, version_no, day_type) "
	          "WHERE tariff_id = $1 ORDER BY h.version_no, h.day",
	          cal->tariff_id);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		TouVersion *v = version_by_no(cal, (int) get_int8(tup, desc, 1));

		if (v->hol_day == NULL)
		{
			old = MemoryContextSwitchTo(tou_cxt);
			v->hol_day = palloc(sizeof(int32) * SPI_processed);
			v->hol_dt = palloc(sizeof(int8) * SPI_processed);
			MemoryContextSwitchTo(old);
		}
		v->hol_day[v->nholidays] = (int32) get_int8(tup, desc, 2);
		v->hol_dt[v->nholidays] = (int8) get_int8(tup, desc, 3);
		v->nholidays++;
	}

	/* slots, in order of start minute within each (version, season, day type) */
	run_query(
	    "SELECT s.version_no::int8, s.season_no::int8, d.day_type_no::int8, "
	    " s.start_min::int8, CASE s.period WHEN 'sharp' THEN 0 WHEN 'peak' "
	    "THEN 1 "
	    " WHEN 'flat' THEN 2 WHEN 'valley' THEN 3 ELSE 4 END::int8, "
	    " count(*) OVER (PARTITION BY s.version_no, s.season_no, "
	    "d.day_type_no) "
	    "FROM prepaid.tariff_slot s JOIN prepaid.tariff_day_type d "
	    " USING (tariff_id, version_no, day_type) "
	    "WHERE tariff_id = $1 ORDER BY 1, 2, 3, 4",
	    cal->tariff_id);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		TouVersion *v = version_by_no(cal, (int) get_int8(tup, desc, 1));
		int season = (int) get_int8(tup, desc, 2);
		int dt = (int) get_int8(tup, desc, 3);
		TouDaySched *sch = &v->sched[season * v->ndaytypes + dt];

		if (sch->start == NULL)
		{
			int n = (int) get_int8(tup, desc, 6);

			old = MemoryContextSwitchTo(tou_cxt);
			sch->start = palloc(sizeof(int16) * n);
			sch->period = palloc(sizeof(int8) * n);
			MemoryContextSwitchTo(old);
		}
		sch->start[sch->nslots] = (int16) get_int8(tup, desc, 4);
		sch->period[sch->nslots] = (int8) get_int8(tup, desc, 5);
		sch->nslots++;
	}

	/* prices in micro-yuan per kWh */
	run_query("SELECT version_no::int8, season_no::int8, CASE period WHEN "
	          "'sharp' THEN 0 "
	          " WHEN 'peak' THEN 1 WHEN 'flat' THEN 2 WHEN 'valley' THEN 3 "
	          "ELSE 4 END::int8, "
	          " (price * 1000000)::int8 "
	          "FROM prepaid.tariff_price WHERE tariff_id = $1",
	          cal->tariff_id);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		TouVersion *v = version_by_no(cal, (int) get_int8(tup, desc, 1));
		int season = (int) get_int8(tup, desc, 2);
		int period = (int) get_int8(tup, desc, 3);

		v->price[season * TOU_NPERIODS + period] = get_int8(tup, desc, 4);
	}

	SPI_finish();
	cal->cached_day = PG_INT32_MIN;
	cal->off_valid = false;
}

TouCalendar *
tou_calendar_get(int64 tariff_id)
{
	TouCalendar *cal;
	bool found;

	if (tou_last != NULL && tou_last->tariff_id == tariff_id)
		return tou_last;
	tou_ensure_cache();
	cal = hash_search(tou_hash, &tariff_id, HASH_ENTER, &found);
	if (!found)
	{
		cal->nversions = 0;
		cal->v = NULL;
		PG_TRY();
		{
			compile_calendar(cal);
		}
		PG_CATCH();
		{
			hash_search(tou_hash, &tariff_id, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	tou_last = cal;
	return cal;
}

/* ---- walking ------------------------------------------------------------- */

static inline int64
floor_div(int64 a, int64 b)
{
	int64 q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* UTC offset (usec) in force at t, and the instant up to which it holds. */
static int64
utc_offset(TouCalendar *cal, TimestampTz t, TimestampTz *valid_until)
{
	pg_time_t tt;
	pg_time_t boundary;
	long before_off;
	long after_off;
	int before_dst;
	int after_dst;
	int r;

	if (cal->off_valid && t >= cal->off_lo && t < cal->off_hi)
	{
		*valid_until = cal->off_hi;
		return cal->off_usec;
	}
	tt = (pg_time_t) floor_div(t, USECS_PER_SEC) +
	     ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY);
	r = pg_next_dst_boundary(&tt, &before_off, &before_dst, &boundary,
	                         &after_off, &after_dst, cal->tz);
	if (r < 0)
		ereport(
		    ERROR,
		    (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
		     errmsg(
		         "cannot find the UTC offset of the tariff's time zone at %s",
		         timestamptz_to_str(t))));
	cal->off_valid = true;
	cal->off_lo = t;
	cal->off_usec = (int64) before_off * USECS_PER_SEC;
	cal->off_hi =
	    (r == 0) ? DT_NOEND
	             : (TimestampTz) (boundary -
	                              ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
	                               SECS_PER_DAY)) *
	                   USECS_PER_SEC;
	if (cal->off_hi <= t)
		cal->off_hi = t + USECS_PER_SEC; /* defensive: never stall */
	*valid_until = cal->off_hi;
	return cal->off_usec;
}

static int
version_at(TouCalendar *cal, TimestampTz t)
{
	for (int i = cal->nversions - 1; i >= 0; i--)
		if (t >= cal->v[i].from)
			return (t < cal->v[i].to) ? i : -1;
	return -1;
}

static void
no_version_error(TouCalendar *cal, TimestampTz t)
{
	ereport(
	    ERROR,
	    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
	     errmsg("tariff %lld has no version in force at %s",
	            (long long) cal->tariff_id, timestamptz_to_str(t)),
	     errhint("Versions start at their valid_from; the first version "
	             "can be given without valid_from to cover all history.")));
}

/* Schedule of local day `day` (DateADT) under version vi; sets season. */
static TouDaySched *
day_schedule(TouCalendar *cal, int vi, int32 day, int *season_out)
{
	TouVersion *v = &cal->v[vi];
	int y, m, d, season, dt;
	int jd = day + POSTGRES_EPOCH_JDATE;

	if (cal->cached_day == day && cal->cached_v == vi)
	{
		*season_out = cal->cached_season;
		return cal->cached_sched;
	}
	j2date(jd, &y, &m, &d);
	season = v->season_of_md[m][d];
	dt = -1;
	if (v->nholidays > 0)
	{
		int lo = 0, hi = v->nholidays - 1;

		while (lo <= hi)
		{
			int mid = (lo + hi) / 2;

			if (v->hol_day[mid] == day)
			{
				dt = v->hol_dt[mid];
				break;
			}
			if (v->hol_day[mid] < day)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
	}
	if (dt < 0)
		dt = v->daytype_of_wd[j2day(jd)];
	if (season < 0 || dt < 0 ||
	    v->sched[season * v->ndaytypes + dt].nslots == 0)
		elog(ERROR,
		     "tariff %lld version %d has no schedule for %04d-%02d-%02d",
		     (long long) cal->tariff_id, v->version_no, y, m, d);
	cal->cached_day = day;
	cal->cached_v = vi;
	cal->cached_season = season;
	cal->cached_sched = &v->sched[season * v->ndaytypes + dt];
	*season_out = season;
	return cal->cached_sched;
}

void
tou_slices_init(TouSliceList *l)
{
	l->n = 0;
	l->cap = lengthof(l->inline_s);
	l->s = l->inline_s;
}

static void
slices_add(TouSliceList *l, int period, int version, int64 price, int64 usec)
{
	for (int i = 0; i < l->n; i++)
		if (l->s[i].period == period && l->s[i].price_u == price)
		{
			l->s[i].usec += usec;
			return;
		}
	if (l->n == l->cap)
	{
		TouSlice *bigger = palloc(sizeof(TouSlice) * l->cap * 2);

		memcpy(bigger, l->s, sizeof(TouSlice) * l->n);
		if (l->s != l->inline_s)
			pfree(l->s);
		l->s = bigger;
		l->cap *= 2;
	}
	l->s[l->n].period = (int16) period;
	l->s[l->n].version = (int16) version;
	l->s[l->n].price_u = price;
	l->s[l->n].usec = usec;
	l->n++;
}

void
tou_calendar_slices(TouCalendar *cal, TimestampTz from, TimestampTz to,
                    TouSliceList *out)
{
	TimestampTz t = from;

	out->n = 0;
	while (t < to)
	{
		TimestampTz off_hi;
		int64 off = utc_offset(cal, t, &off_hi);
		int vi = version_at(cal, t);
		TouVersion *v;
		int64 local;
		int32 day;
		int minute;
		int season;
		int k;
		int end_min;
		TouDaySched *sch;
		TimestampTz seg_end;
		int64 price;

		if (vi < 0)
			no_version_error(cal, t);
		v = &cal->v[vi];
		local = t + off;
		day = (int32) floor_div(local, USECS_PER_DAY);
		minute =
		    (int) ((local - (int64) day * USECS_PER_DAY) / USECS_PER_MINUTE);
		sch = day_schedule(cal, vi, day, &season);
		for (k = sch->nslots - 1; k > 0 && sch->start[k] > minute; k--)
			;
		end_min = (k + 1 < sch->nslots) ? sch->start[k + 1]
		                                : MINS_PER_HOUR * HOURS_PER_DAY;
		seg_end = (int64) day * USECS_PER_DAY +
		          (int64) end_min * USECS_PER_MINUTE - off;
		if (seg_end > off_hi)
			seg_end = off_hi;
		if (seg_end > v->to)
			seg_end = v->to;
		if (seg_end > to)
			seg_end = to;
		if (seg_end <= t)
			elog(ERROR, "tariff calendar walk did not advance at %s",
			     timestamptz_to_str(t));
		price = v->price[season * TOU_NPERIODS + sch->period[k]];
		slices_add(out, sch->period[k], vi, price, seg_end - t);
		t = seg_end;
	}
}

int64
tou_calendar_price_at(TouCalendar *cal, TimestampTz t, int period)
{
	TimestampTz off_hi;
	int64 off = utc_offset(cal, t, &off_hi);
	int vi = version_at(cal, t);
	int season;

	if (vi < 0)
		no_version_error(cal, t);
	(void) day_schedule(cal, vi, (int32) floor_div(t + off, USECS_PER_DAY),
	                    &season);
	return cal->v[vi].price[season * TOU_NPERIODS + period];
}

int
tou_calendar_registers(TouCalendar *cal, TimestampTz t, int16 *periods)
{
	int vi = version_at(cal, t);

	if (vi < 0)
		no_version_error(cal, t);
	memcpy(periods, cal->v[vi].regs, sizeof(int16) * cal->v[vi].nregs);
	return cal->v[vi].nregs;
}
