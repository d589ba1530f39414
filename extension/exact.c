/*
 * exact.c
 *	  Exact conversions between numeric and scaled int64, and exact
 *	  proportional splitting. See exact.h for the units.
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
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

/*
 * value * 10^-scale as a numeric, built directly in numeric's stored short
 * form (a 16-bit header with sign, display scale and weight, then base-10000
 * digits, most significant first, with no leading or trailing zero digits):
 * the same bytes int64_div_fast_to_numeric() makes, without its
 * arbitrary-precision arithmetic (settlement makes several per meter).
 * The layout is numeric's on-disk format, so it cannot change under us;
 * tests/sql compares every case against numeric's own result, byte for byte.
 */
#define NUMERIC_SHORT_HDR        0x8000
#define NUMERIC_SHORT_NEG        0x2000
#define NUMERIC_SHORT_DSCALE_SHL 7
#define NUMERIC_SHORT_WEIGHT_NEG 0x0040
#define NUMERIC_SHORT_WEIGHT     0x003F

Numeric
fixed_to_numeric(int64 value, int scale)
{
	static const uint32 pow10[4] = {1, 10, 100, 1000};
	int16 digits[8]; /* 2^64 * 10^3 has 23 decimal digits: 6 base-10000 */
	int n = 0;
	int first;
	int nfrac;
	int weight;
	uint128 u;
	uint16 header;
	Numeric result;
	Size len;

	if (scale < 0 || scale > 16)
		return int64_div_fast_to_numeric(value, scale);

	/* align the decimal point on a base-10000 digit */
	u = (value < 0) ? -(uint128) value : (uint128) value;
	u *= pow10[(4 - scale % 4) % 4];
	nfrac = (scale + 3) / 4;
	while (u > 0)
	{
		digits[7 - n] = (int16) (u % 10000);
		u /= 10000;
		n++;
	}
	/* digits[8 - n .. 7], most significant first */
	first = 8 - n;
	weight = n - nfrac - 1;
	while (n > 0 && digits[first + n - 1] == 0)
		n--; /* trailing zero digits are not stored */
	if (n == 0)
		weight = 0;

	header = NUMERIC_SHORT_HDR | (uint16) (scale << NUMERIC_SHORT_DSCALE_SHL);
	if (value < 0)
		header |= NUMERIC_SHORT_NEG;
	if (weight < 0)
		header |= NUMERIC_SHORT_WEIGHT_NEG |
		          (uint16) (weight & NUMERIC_SHORT_WEIGHT);
	else
		header |= (uint16) weight;

	len = VARHDRSZ + sizeof(uint16) + n * sizeof(int16);
	result = (Numeric) palloc(len);
	SET_VARSIZE(result, len);
	memcpy((char *) result + VARHDRSZ, &header, sizeof(uint16));
	if (n > 0)
		memcpy((char *) result + VARHDRSZ + sizeof(uint16), &digits[first],
		       n * sizeof(int16));
	return result;
}

/* prepaid._fixed_numeric(value, scale): fixed_to_numeric() for the tests */
PG_FUNCTION_INFO_V1(prepaid_fixed_numeric);
Datum
prepaid_fixed_numeric(PG_FUNCTION_ARGS)
{
	int32 scale = PG_GETARG_INT32(1);

	if (scale < 0 || scale > 16)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("scale must be between 0 and 16")));
	PG_RETURN_NUMERIC(fixed_to_numeric(PG_GETARG_INT64(0), scale));
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
