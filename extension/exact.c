/*
 * exact.c
 *	  Exact conversions between numeric and scaled int64, and exact
 *	  proportional splitting. See exact.h for the units.
 */
#include "postgres.h"

#include "common/int.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "exact.h"

int64
numeric_to_fixed(Numeric num, int scale, const char *what)
{
	char *s = DatumGetCString(
	    DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
	char *p = s;
	bool neg = false;
	int64 v = 0;
	int decimals = -1;

	if (*p == '-')
	{
		neg = true;
		p++;
	}
	if (!isdigit((unsigned char) *p))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("%s must be a finite number", what),
		                errdetail("Got %s.", s)));
	for (; *p; p++)
	{
		if (*p == '.')
		{
			decimals = 0;
			continue;
		}
		if (decimals >= 0)
		{
			if (decimals == scale)
			{
				if (*p != '0')
					ereport(ERROR,
					        (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					         errmsg("%s has more than %d decimal places", what,
					                scale),
					         errdetail("Got %s.", s)));
				continue;
			}
			decimals++;
		}
		if (pg_mul_s64_overflow(v, 10, &v) ||
		    pg_add_s64_overflow(v, *p - '0', &v))
			goto overflow;
	}
	for (decimals = Max(decimals, 0); decimals < scale; decimals++)
		if (pg_mul_s64_overflow(v, 10, &v))
			goto overflow;
	pfree(s);
	return neg ? -v : v;

overflow:
	ereport(ERROR,
	        (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
	         errmsg("%s is out of range", what), errdetail("Got %s.", s)));
	return 0; /* keep compiler quiet */
}

Numeric
fixed_to_numeric(int64 value, int scale)
{
	return int64_div_fast_to_numeric(value, scale);
}

void
fixed_to_text(int64 value, int scale, char *buf)
{
	char digits[32];
	int n;
	uint64 u = (value < 0) ? -(uint64) value : (uint64) value;
	char *out = buf;

	n = snprintf(digits, sizeof(digits), "%0*llu", scale + 1,
	             (unsigned long long) u);
	if (value < 0)
		*out++ = '-';
	memcpy(out, digits, n - scale);
	out += n - scale;
	if (scale > 0)
	{
		*out++ = '.';
		memcpy(out, digits + n - scale, scale);
		out += scale;
	}
	*out = '\0';
}

void
split_exact(int64 total, const int64 *weights, int n, int64 *parts)
{
	int128 wsum = 0;
	int64 assigned = 0;
	int64 rem[64];
	int i;

	Assert(n <= 64);
	for (i = 0; i < n; i++)
		wsum += weights[i];
	if (wsum <= 0)
	{
		for (i = 0; i < n; i++)
			parts[i] = 0;
		if (n > 0)
			parts[0] = total;
		return;
	}
	for (i = 0; i < n; i++)
	{
		int128 num = (int128) total * weights[i];

		parts[i] = (int64) (num / wsum);
		rem[i] = (int64) ((num % wsum) * 1000000 / wsum); /* fraction, ppm */
		assigned += parts[i];
	}
	/* hand out the leftover units to the largest remainders */
	while (assigned != total)
	{
		int best = -1;

		for (i = 0; i < n; i++)
			if (weights[i] > 0 && (best < 0 || rem[i] > rem[best]))
				best = i;
		if (total > assigned)
		{
			parts[best]++;
			assigned++;
		}
		else
		{
			parts[best]--;
			assigned--;
		}
		rem[best] = PG_INT64_MIN;
	}
}
