/*
 * registers.c
 *	  Meter energy registers: see registers.h.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"

#include "registers.h"
#include "tou_calendar.h"

/*
 * The common case read in place: an int8[] stored inline and uncompressed
 * (usually with a 1-byte header, so unaligned), one dimension, no NULLs.
 * The bytes after the varlena header are those of an ArrayType after its
 * 4-byte length: ndim, dataoffset (0: no null bitmap), element type, the
 * dimension and its lower bound, then the elements at
 * ARR_OVERHEAD_NONULLS(1) from the start of the ArrayType. Returns -1 when
 * the array is in any other form.
 */
static int
registers_read_inline(Datum array, int64 *out)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(array);
	const char *body;
	int32 ndim, dataoffset, nitems;
	Oid elemtype;
	Size len;

	if (VARATT_IS_EXTENDED(v) && !VARATT_IS_SHORT(v))
		return -1; /* compressed or out of line */
	body = VARDATA_ANY(v);
	len = VARSIZE_ANY_EXHDR(v);
	if (len < 3 * sizeof(int32))
		return -1;
	memcpy(&ndim, body, sizeof(int32));
	memcpy(&dataoffset, body + sizeof(int32), sizeof(int32));
	memcpy(&elemtype, body + 2 * sizeof(int32), sizeof(Oid));
	if (ndim == 0 && dataoffset == 0 && elemtype == INT8OID)
		return 0;
	if (ndim != 1 || dataoffset != 0 || elemtype != INT8OID ||
	    len < ARR_OVERHEAD_NONULLS(1) - VARHDRSZ)
		return -1;
	memcpy(&nitems, body + 3 * sizeof(int32), sizeof(int32));
	if (nitems < 0 || len < ARR_OVERHEAD_NONULLS(1) - VARHDRSZ +
	                            (Size) nitems * sizeof(int64))
		return -1;
	if (nitems > TOU_MAX_REGISTERS)
		nitems = TOU_MAX_REGISTERS;
	memcpy(out, body + ARR_OVERHEAD_NONULLS(1) - VARHDRSZ,
	       nitems * sizeof(int64));
	return nitems;
}

int
registers_read(Datum array, int64 *out)
{
	ArrayType *a;
	Datum *elems;
	bool *nulls;
	int n = registers_read_inline(array, out);

	if (n >= 0)
		return n;
	a = DatumGetArrayTypeP(array);
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
