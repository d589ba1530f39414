/*
 * registers.c
 *	  Meter energy registers: see registers.h.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"

#include "registers.h"
#include "tou_calendar.h"

int
registers_read(Datum array, int64 *out)
{
	ArrayType *a = DatumGetArrayTypeP(array);
	Datum *elems;
	bool *nulls;
	int n;

	deconstruct_array(a, INT8OID, 8, true, TYPALIGN_DOUBLE, &elems, &nulls,
	                  &n);
	if (n > TOU_MAX_REGISTERS)
		n = TOU_MAX_REGISTERS;
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			return 0;
		out[i] = DatumGetInt64(elems[i]);
	}
	return n;
}

int64
registers_delta(int64 prev, int64 cur, int64 modulus)
{
	if (cur >= prev)
		return cur - prev;
	if (prev > modulus / 10 * 9 && cur < modulus / 10 &&
	    modulus - prev + cur <= modulus / 100)
		return modulus - prev + cur;
	return -1;
}
