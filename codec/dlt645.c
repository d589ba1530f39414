/*
 * dlt645.c
 *	  DL/T 645-2007 codec: frames, messages, the DI registry with exact BCD
 *	  values, and the stream parser. See dlt645.h for the API and
 *	  docs/dlt645.md for the design. Plain C11: no PostgreSQL, no malloc, no
 *	  floating point, no mutable static state.
 *
 *	  Everything that exists in two directions (message fields, date/time
 *	  fields, values) is described once in a table that both the decoder and
 *	  the encoder walk, so the two cannot drift apart.
 */
#include "dlt645.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define lengthof(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

static const char *const status_text[DLT645_STATUS_COUNT] = {
    [DLT645_OK] = "no error",
    [DLT645_E_EMPTY] = "frame is empty",
    [DLT645_E_START] = "missing start byte",
    [DLT645_E_TRUNCATED] = "frame is truncated",
    [DLT645_E_START2] = "missing second start byte",
    [DLT645_E_CHECKSUM] = "checksum mismatch",
    [DLT645_E_END] = "missing end byte",
    [DLT645_E_TRAILING] = "trailing bytes after the frame",
    [DLT645_E_DATA_LENGTH] = "data length does not fit the function",
    [DLT645_E_UNKNOWN_DI] = "unknown data identifier",
    [DLT645_E_VALUE_LENGTH] = "value length does not fit the data identifier",
    [DLT645_E_BCD] = "invalid BCD digits",
    [DLT645_E_DATETIME] = "invalid date or time",
    [DLT645_E_RANGE] = "value out of range",
    [DLT645_E_PRECISION] = "value has too many decimal places",
    [DLT645_E_BUFFER] = "output buffer too small",
    [DLT645_E_ADDRESS] = "invalid meter address",
    [DLT645_E_DI_TEXT] = "invalid data identifier",
    [DLT645_E_ARGUMENT] = "invalid argument",
};

const char *
dlt645_strerror(dlt645_status code)
{
	if ((unsigned) code >= DLT645_STATUS_COUNT)
		return "unknown error";
	return status_text[code];
}

static void
err_set(dlt645_error *err, dlt645_status code, int64_t offset,
        int32_t expected, int32_t got)
{
	if (err == NULL)
		return;
	err->code = code;
	err->offset = offset;
	err->start = -1;
	err->expected = expected;
	err->got = got;
	err->limit = -1;
	err->at_least = false;
	err->di = 0;
	err->what = NULL;
}

/* Appends to buf like snprintf, keeping track of the length. */
static void append(char *buf, size_t cap, int *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
append(char *buf, size_t cap, int *len, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t used = (size_t) *len;

	va_start(ap, fmt);
	n = vsnprintf(used < cap ? buf + used : NULL, used < cap ? cap - used : 0,
	              fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += n;
}

static int
finish_text(char *buf, size_t cap, int len)
{
	if (cap > 0 && (size_t) len >= cap)
		buf[cap - 1] = '\0';
	return len;
}

int
dlt645_error_format(const dlt645_error *err, char *buf, size_t cap)
{
	int len = 0;
	char di[9];

	if (cap > 0)
		buf[0] = '\0';
	append(buf, cap, &len, "%s", dlt645_strerror(err->code));
	if (err->offset >= 0)
		append(buf, cap, &len, " at byte %lld", (long long) err->offset);
	switch (err->code)
	{
		case DLT645_E_EMPTY:
			if (err->got > 0)
				append(buf, cap, &len, ": only %d FE bytes", (int) err->got);
			break;
		case DLT645_E_START:
		case DLT645_E_START2:
		case DLT645_E_CHECKSUM:
		case DLT645_E_END:
			append(buf, cap, &len, ": expected %02X, got %02X",
			       (unsigned) err->expected, (unsigned) err->got);
			break;
		case DLT645_E_TRUNCATED:
			append(buf, cap, &len, ": needs %s%d bytes, got %d",
			       err->at_least ? "at least " : "", (int) err->expected,
			       (int) err->got);
			break;
		case DLT645_E_TRAILING:
			append(buf, cap, &len, ": %d more bytes", (int) err->got);
			break;
		case DLT645_E_DATA_LENGTH:
			append(buf, cap, &len, ": L is %d, expected %s%d", (int) err->got,
			       err->at_least ? "at least " : "", (int) err->expected);
			break;
		case DLT645_E_UNKNOWN_DI:
			dlt645_di_format(err->di, di);
			append(buf, cap, &len, ": %s", di);
			break;
		case DLT645_E_VALUE_LENGTH:
			dlt645_di_format(err->di, di);
			append(buf, cap, &len, ": %s takes %s%d bytes, got %d", di,
			       err->at_least ? "a multiple of " : "", (int) err->expected,
			       (int) err->got);
			break;
		case DLT645_E_BCD:
			append(buf, cap, &len, ": %02X", (unsigned) err->got);
			break;
		case DLT645_E_DATETIME:
			append(buf, cap, &len, ": %s %d", err->what ? err->what : "field",
			       (int) err->got);
			break;
		case DLT645_E_ADDRESS:
		case DLT645_E_DI_TEXT:
			if (err->got > 0)
				append(buf, cap, &len, ": character '%c'", (char) err->got);
			break;
		default:
			break;
	}
	return finish_text(buf, cap, len);
}

int
dlt645_error_detail(const dlt645_error *err, char *buf, size_t cap)
{
	int len = 0;
	long long off = (long long) err->offset;
	char di[9];

	if (cap > 0)
		buf[0] = '\0';
	dlt645_di_format(err->di, di);
	switch (err->code)
	{
		case DLT645_E_EMPTY:
			if (err->got > 0)
				append(buf, cap, &len,
				       "The input has only %d FE preamble bytes and no frame.",
				       (int) err->got);
			else
				append(buf, cap, &len, "The input has no bytes.");
			break;
		case DLT645_E_START:
			append(buf, cap, &len,
			       "Byte %lld is %02X; a frame starts with 68 after any FE "
			       "preamble bytes.",
			       off, (unsigned) err->got);
			break;
		case DLT645_E_TRUNCATED:
			if (err->at_least)
				append(buf, cap, &len,
				       "The frame starting at byte %lld needs at least %d "
				       "bytes but only %d are present.",
				       (long long) err->start, (int) err->expected,
				       (int) err->got);
			else
				append(buf, cap, &len,
				       "The frame starting at byte %lld needs %d bytes "
				       "(L = %d) but only %d are present.",
				       (long long) err->start, (int) err->expected,
				       (int) err->expected - DLT645_OVERHEAD, (int) err->got);
			break;
		case DLT645_E_START2:
			append(buf, cap, &len,
			       "Byte %lld is %02X; the second start byte, 7 bytes after "
			       "the first, must be 68.",
			       off, (unsigned) err->got);
			break;
		case DLT645_E_CHECKSUM:
			append(buf, cap, &len,
			       "Byte %lld is %02X; the sum of bytes %lld..%lld is %02X.",
			       off, (unsigned) err->got, (long long) err->start, off - 1,
			       (unsigned) err->expected);
			break;
		case DLT645_E_END:
			append(buf, cap, &len,
			       "Byte %lld is %02X; the end byte after the checksum must "
			       "be 16.",
			       off, (unsigned) err->got);
			break;
		case DLT645_E_TRAILING:
			append(buf, cap, &len,
			       "The frame ends at byte %lld but the input has %d more "
			       "bytes.",
			       off - 1, (int) err->got);
			break;
		case DLT645_E_DATA_LENGTH:
			append(buf, cap, &len,
			       "The data length L (byte %lld) is %d; %s%s needs %s%d data "
			       "bytes.",
			       off, (int) err->got, err->what ? err->what : "this frame",
			       err->what ? " frame" : "", err->at_least ? "at least " : "",
			       (int) err->expected);
			break;
		case DLT645_E_UNKNOWN_DI:
			append(buf, cap, &len,
			       "Data identifier %s is not in the codec's table.", di);
			break;
		case DLT645_E_VALUE_LENGTH:
			if (err->at_least)
				append(buf, cap, &len,
				       "Data identifier %s takes a multiple of %d bytes (1 to "
				       "%d values); the frame has %d value bytes from byte "
				       "%lld.",
				       di, (int) err->expected, (int) err->limit,
				       (int) err->got, off);
			else
				append(buf, cap, &len,
				       "Data identifier %s takes %d bytes; the frame has %d "
				       "value bytes from byte %lld.",
				       di, (int) err->expected, (int) err->got, off);
			break;
		case DLT645_E_BCD:
			append(buf, cap, &len,
			       "Byte %lld holds %02X after removing the 0x33 offset, "
			       "which is not two BCD digits.",
			       off, (unsigned) err->got);
			break;
		case DLT645_E_DATETIME:
			append(buf, cap, &len,
			       "Byte %lld holds %s %d, which is out of range.", off,
			       err->what ? err->what : "a date/time field",
			       (int) err->got);
			break;
		case DLT645_E_ADDRESS:
		case DLT645_E_DI_TEXT:
		{
			int digits = err->code == DLT645_E_ADDRESS ? 12 : 8;

			append(buf, cap, &len, "%s",
			       err->code == DLT645_E_ADDRESS
			           ? "An address is 12 hex digits as on the nameplate"
			           : "A data identifier is 8 hex digits, DI3 first");
			if (err->offset >= 0 && err->got == 0)
				append(buf, cap, &len, "; the text has only %lld", off);
			else if (err->offset == digits)
				append(buf, cap, &len, "; the text is longer");
			else if (err->offset >= 0)
				append(buf, cap, &len,
				       "; character %lld ('%c') is not a hex digit", off + 1,
				       (char) err->got);
			append(buf, cap, &len, ".");
			break;
		}
		default:
			append(buf, cap, &len, "%c%s.",
			       dlt645_strerror(err->code)[0] - 'a' + 'A',
			       dlt645_strerror(err->code) + 1);
			break;
	}
	return finish_text(buf, cap, len);
}

/* ------------------------------------------------------------------------
 * BCD and exact numbers
 * ------------------------------------------------------------------------ */

/* BCD byte -> 0..99, or -1 when a nibble is above 9. */
#define BCD_B(h, l) (((h) > 9 || (l) > 9) ? -1 : 10 * (h) + (l))
#define BCD_ROW(h)                                                            \
	BCD_B(h, 0), BCD_B(h, 1), BCD_B(h, 2), BCD_B(h, 3), BCD_B(h, 4),          \
	    BCD_B(h, 5), BCD_B(h, 6), BCD_B(h, 7), BCD_B(h, 8), BCD_B(h, 9),      \
	    BCD_B(h, 10), BCD_B(h, 11), BCD_B(h, 12), BCD_B(h, 13), BCD_B(h, 14), \
	    BCD_B(h, 15)
static const int8_t bcd_value[256] = {
    BCD_ROW(0),  BCD_ROW(1),  BCD_ROW(2),  BCD_ROW(3),
    BCD_ROW(4),  BCD_ROW(5),  BCD_ROW(6),  BCD_ROW(7),
    BCD_ROW(8),  BCD_ROW(9),  BCD_ROW(10), BCD_ROW(11),
    BCD_ROW(12), BCD_ROW(13), BCD_ROW(14), BCD_ROW(15),
};

static const int64_t pow10_table[19] = {1LL,
                                        10LL,
                                        100LL,
                                        1000LL,
                                        10000LL,
                                        100000LL,
                                        1000000LL,
                                        10000000LL,
                                        100000000LL,
                                        1000000000LL,
                                        10000000000LL,
                                        100000000000LL,
                                        1000000000000LL,
                                        10000000000000LL,
                                        100000000000000LL,
                                        1000000000000000LL,
                                        10000000000000000LL,
                                        100000000000000000LL,
                                        1000000000000000000LL};

dlt645_status
dlt645_bcd_decode(const uint8_t *bytes, size_t n, bool is_signed, int64_t *out,
                  size_t *bad)
{
	int64_t acc = 0;
	bool neg = false;
	size_t i;

	if (n == 0 || n > 9)
		return DLT645_E_ARGUMENT;
	for (i = n; i-- > 0;)
	{
		uint8_t b = bytes[i];
		int v;

		if (is_signed && i == n - 1)
		{
			neg = (b & 0x80) != 0;
			b &= 0x7F;
		}
		v = bcd_value[b];
		if (v < 0)
		{
			if (bad)
				*bad = i;
			return DLT645_E_BCD;
		}
		acc = acc * 100 + v;
	}
	*out = neg ? -acc : acc;
	return DLT645_OK;
}

dlt645_status
dlt645_bcd_encode(int64_t v, size_t n, bool is_signed, uint8_t *out)
{
	uint64_t mag;
	size_t i;

	if (n == 0 || n > 9)
		return DLT645_E_ARGUMENT;
	if (v < 0 && !is_signed)
		return DLT645_E_RANGE;
	mag = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
	for (i = 0; i < n; i++)
	{
		out[i] = dlt645_bin_to_bcd((unsigned) (mag % 100));
		mag /= 100;
	}
	if (mag != 0)
		return DLT645_E_RANGE;
	if (is_signed)
	{
		if (out[n - 1] & 0x80)
			return DLT645_E_RANGE;
		if (v < 0)
			out[n - 1] |= 0x80;
	}
	return DLT645_OK;
}

int
dlt645_fixed_format(int64_t num, unsigned decimals, char *buf, size_t cap)
{
	char digits[24];
	char tmp[48];
	uint64_t mag = num < 0 ? (uint64_t) 0 - (uint64_t) num : (uint64_t) num;
	int nd = 0;
	int len = 0;
	int i;

	if (decimals > 18)
		decimals = 18;
	do
	{
		digits[nd++] = (char) ('0' + mag % 10);
		mag /= 10;
	} while (mag != 0);
	while (nd <= (int) decimals)
		digits[nd++] = '0';
	if (num < 0)
		tmp[len++] = '-';
	for (i = nd - 1; i >= 0; i--)
	{
		tmp[len++] = digits[i];
		if (i == (int) decimals && i > 0)
			tmp[len++] = '.';
	}
	tmp[len] = '\0';
	if (cap > 0)
	{
		size_t n = (size_t) len < cap ? (size_t) len : cap - 1;

		memcpy(buf, tmp, n);
		buf[n] = '\0';
	}
	return len;
}

dlt645_status
dlt645_rescale(int64_t num, unsigned from, unsigned to, int64_t *out)
{
	if (from > 18 || to > 18)
		return DLT645_E_ARGUMENT;
	if (to >= from)
	{
		int64_t r;

		if (__builtin_mul_overflow(num, pow10_table[to - from], &r))
			return DLT645_E_RANGE;
		*out = r;
	}
	else
	{
		int64_t f = pow10_table[from - to];

		if (num % f != 0)
			return DLT645_E_PRECISION;
		*out = num / f;
	}
	return DLT645_OK;
}

/* ------------------------------------------------------------------------
 * Dates and times
 * ------------------------------------------------------------------------ */

/* The BCD fields a date/time format is made of. */
enum dt_part
{
	P_SEC,
	P_MIN,
	P_HOUR,
	P_WDAY,
	P_DAY,
	P_MON,
	P_YEAR
};

static const struct
{
	const char *name;
	uint8_t lo;
	uint8_t hi;
} dt_part_def[] = {
    [P_SEC] = {"second", 0, 59}, [P_MIN] = {"minute", 0, 59},
    [P_HOUR] = {"hour", 0, 23},  [P_WDAY] = {"weekday", 0, 6},
    [P_DAY] = {"day", 1, 31},    [P_MON] = {"month", 1, 12},
    [P_YEAR] = {"year", 0, 99},
};

/* A date/time format: its fields in wire order. */
typedef struct dt_layout
{
	uint8_t n;
	uint8_t part[7];
} dt_layout;

static const dt_layout dt_ssmmhhDDMMYY = {
    6, {P_SEC, P_MIN, P_HOUR, P_DAY, P_MON, P_YEAR}};
static const dt_layout dt_YYMMDDhhmm = {5,
                                        {P_MIN, P_HOUR, P_DAY, P_MON, P_YEAR}};
static const dt_layout dt_YYMMDDWW = {4, {P_WDAY, P_DAY, P_MON, P_YEAR}};
static const dt_layout dt_hhmmss = {3, {P_SEC, P_MIN, P_HOUR}};
static const dt_layout dt_YYMMDDWWhhmmss = {
    7, {P_SEC, P_MIN, P_HOUR, P_WDAY, P_DAY, P_MON, P_YEAR}};
static const dt_layout dt_DDhh = {2, {P_HOUR, P_DAY}};

static bool
is_leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned
days_in_month(unsigned y, unsigned m)
{
	static const uint8_t days[12] = {31, 28, 31, 30, 31, 30,
	                                 31, 31, 30, 31, 30, 31};

	if (m < 1 || m > 12)
		return 0;
	return days[m - 1] + (m == 2 && is_leap(y) ? 1 : 0);
}

int
dlt645_weekday(unsigned year, unsigned month, unsigned day)
{
	/* Sakamoto's method */
	static const uint8_t t[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};

	if (month < 1 || month > 12)
		return -1;
	if (month < 3)
		year -= 1;
	return (int) ((year + year / 4 - year / 100 + year / 400 + t[month - 1] +
	               day) %
	              7);
}

bool
dlt645_datetime_valid(const dlt645_datetime *t)
{
	if (t->year < 2000 || t->year > 2099 || t->month < 1 || t->month > 12 ||
	    t->day < 1 || t->day > days_in_month(t->year, t->month) ||
	    t->hour > 23 || t->minute > 59 || t->second > 59)
		return false;
	return t->weekday == DLT645_NO_WEEKDAY || t->weekday <= 6;
}

static unsigned
dt_get(const dlt645_datetime *t, int part)
{
	switch (part)
	{
		case P_SEC:
			return t->second;
		case P_MIN:
			return t->minute;
		case P_HOUR:
			return t->hour;
		case P_WDAY:
			return t->weekday;
		case P_DAY:
			return t->day;
		case P_MON:
			return t->month;
		default:
			return t->year >= 2000 ? t->year - 2000u : 100u;
	}
}

static void
dt_put(dlt645_datetime *t, int part, unsigned v)
{
	switch (part)
	{
		case P_SEC:
			t->second = (uint8_t) v;
			break;
		case P_MIN:
			t->minute = (uint8_t) v;
			break;
		case P_HOUR:
			t->hour = (uint8_t) v;
			break;
		case P_WDAY:
			t->weekday = (uint8_t) v;
			break;
		case P_DAY:
			t->day = (uint8_t) v;
			break;
		case P_MON:
			t->month = (uint8_t) v;
			break;
		default:
			t->year = (uint16_t) (2000 + v);
			break;
	}
}

/* Index of `part` in the layout, or -1. */
static int
dt_find(const dt_layout *lay, int part)
{
	for (int i = 0; i < lay->n; i++)
		if (lay->part[i] == part)
			return i;
	return -1;
}

/*
 * Decodes the fields of lay from b (plain bytes). Error offsets are
 * base + index of the byte.
 */
static dlt645_status
dt_decode(const dt_layout *lay, const uint8_t *b, dlt645_datetime *t,
          int64_t base, dlt645_error *err)
{
	int iday;

	memset(t, 0, sizeof(*t));
	t->weekday = DLT645_NO_WEEKDAY;
	for (int i = 0; i < lay->n; i++)
	{
		int part = lay->part[i];
		int v = bcd_value[b[i]];

		if (v < 0)
		{
			err_set(err, DLT645_E_BCD, base + i, -1, b[i]);
			return DLT645_E_BCD;
		}
		if (v < dt_part_def[part].lo || v > dt_part_def[part].hi)
		{
			err_set(err, DLT645_E_DATETIME, base + i, -1, v);
			if (err)
				err->what = dt_part_def[part].name;
			return DLT645_E_DATETIME;
		}
		dt_put(t, part, (unsigned) v);
	}
	iday = dt_find(lay, P_DAY);
	if (iday >= 0 && dt_find(lay, P_MON) >= 0 &&
	    t->day > days_in_month(dt_find(lay, P_YEAR) >= 0 ? t->year : 2000,
	                           t->month))
	{
		err_set(err, DLT645_E_DATETIME, base + iday, -1, t->day);
		if (err)
			err->what = "day";
		return DLT645_E_DATETIME;
	}
	return DLT645_OK;
}

/* Encodes the fields of lay, checking each as dt_decode would. */
static dlt645_status
dt_encode(const dt_layout *lay, const dlt645_datetime *t, uint8_t *b)
{
	dlt645_error e;

	for (int i = 0; i < lay->n; i++)
	{
		int part = lay->part[i];
		unsigned v = dt_get(t, part);

		/* a weekday left out is computed from the date */
		if (part == P_WDAY && v == DLT645_NO_WEEKDAY &&
		    days_in_month(t->year, t->month) >= t->day && t->day >= 1)
			v = (unsigned) dlt645_weekday(t->year, t->month, t->day);
		if (v < dt_part_def[part].lo || v > dt_part_def[part].hi)
			return DLT645_E_DATETIME;
		b[i] = dlt645_bin_to_bcd(v);
	}
	/* day of month, by the same rule as the decoder */
	return dt_decode(lay, b, &(dlt645_datetime){0}, 0, &e);
}

static bool
all_bytes(const uint8_t *b, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

int
dlt645_datetime_format(const dlt645_datetime *t, unsigned parts, char *buf,
                       size_t cap)
{
	int len = 0;

	if (cap > 0)
		buf[0] = '\0';
	if (parts & DLT645_DT_DATE)
		append(buf, cap, &len, "%04u-%02u-%02u", (unsigned) t->year,
		       (unsigned) t->month, (unsigned) t->day);
	if (parts & DLT645_DT_HM)
		append(buf, cap, &len, "%s%02u:%02u", len > 0 ? " " : "",
		       (unsigned) t->hour, (unsigned) t->minute);
	if ((parts & DLT645_DT_HM) && (parts & DLT645_DT_SECONDS))
		append(buf, cap, &len, ":%02u", (unsigned) t->second);
	return finish_text(buf, cap, len);
}

/* Freeze time: mm hh DD MM with 99 wildcards from the month down. */
static const dt_layout dt_freeze = {4, {P_MIN, P_HOUR, P_DAY, P_MON}};

static unsigned
freeze_get(const dlt645_freeze *f, int part)
{
	return part == P_MIN    ? f->minute
	       : part == P_HOUR ? f->hour
	       : part == P_DAY  ? f->day
	                        : f->month;
}

const char *
dlt645_freeze_kind(const dlt645_freeze *f)
{
	static const char *const kinds[5] = {"once", "monthly", "daily", "hourly",
	                                     "instant"};
	int wild = 0;

	/* count wildcards from the month down; they must be contiguous */
	for (int i = dt_freeze.n - 1; i >= 0; i--)
	{
		int part = dt_freeze.part[i];
		unsigned v = freeze_get(f, part);

		if (v == DLT645_FREEZE_ANY && wild == dt_freeze.n - 1 - i)
			wild++;
		else if (v == DLT645_FREEZE_ANY || v < dt_part_def[part].lo ||
		         v > dt_part_def[part].hi)
			return NULL;
	}
	return kinds[wild];
}

/* ------------------------------------------------------------------------
 * Addresses and DI text
 * ------------------------------------------------------------------------ */

const uint8_t dlt645_wildcard_address[DLT645_ADDR_LEN] = {0xAA, 0xAA, 0xAA,
                                                          0xAA, 0xAA, 0xAA};
const uint8_t dlt645_broadcast_address[DLT645_ADDR_LEN] = {0x99, 0x99, 0x99,
                                                           0x99, 0x99, 0x99};

static const char hexdigits[] = "0123456789ABCDEF";

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Parses exactly 2n hex digits into n bytes, the first digits being the
 * last byte when `reverse` (addresses) or the first byte (DIs are turned
 * into a number by the caller).
 */
static dlt645_status
hex_parse(const char *text, uint8_t *out, size_t n, bool reverse,
          dlt645_status code, dlt645_error *err)
{
	size_t i;

	for (i = 0; i < 2 * n; i++)
	{
		int hi = hex_value(text[i]);

		if (hi < 0)
		{
			err_set(err, code, (int64_t) i, -1, (unsigned char) text[i]);
			return code;
		}
	}
	if (text[2 * n] != '\0')
	{
		err_set(err, code, (int64_t) (2 * n), -1, (unsigned char) text[2 * n]);
		return code;
	}
	for (i = 0; i < n; i++)
	{
		uint8_t b = (uint8_t) ((hex_value(text[2 * i]) << 4) |
		                       hex_value(text[2 * i + 1]));

		out[reverse ? n - 1 - i : i] = b;
	}
	return DLT645_OK;
}

dlt645_status
dlt645_address_parse(const char *text, uint8_t address[DLT645_ADDR_LEN],
                     dlt645_error *err)
{
	return hex_parse(text, address, DLT645_ADDR_LEN, true, DLT645_E_ADDRESS,
	                 err);
}

void
dlt645_address_format(const uint8_t address[DLT645_ADDR_LEN], char out[13])
{
	for (int i = 0; i < DLT645_ADDR_LEN; i++)
	{
		uint8_t b = address[DLT645_ADDR_LEN - 1 - i];

		out[2 * i] = hexdigits[b >> 4];
		out[2 * i + 1] = hexdigits[b & 0x0F];
	}
	out[12] = '\0';
}

bool
dlt645_address_is_bcd(const uint8_t address[DLT645_ADDR_LEN])
{
	for (int i = 0; i < DLT645_ADDR_LEN; i++)
		if (bcd_value[address[i]] < 0)
			return false;
	return true;
}

bool
dlt645_address_is_wildcard(const uint8_t address[DLT645_ADDR_LEN])
{
	return memcmp(address, dlt645_wildcard_address, DLT645_ADDR_LEN) == 0;
}

bool
dlt645_address_is_broadcast(const uint8_t address[DLT645_ADDR_LEN])
{
	return memcmp(address, dlt645_broadcast_address, DLT645_ADDR_LEN) == 0;
}

bool
dlt645_address_matches(const uint8_t target[DLT645_ADDR_LEN],
                       const uint8_t mine[DLT645_ADDR_LEN])
{
	if (dlt645_address_is_broadcast(target))
		return true;
	for (int i = 0; i < DLT645_ADDR_LEN; i++)
		if (target[i] != mine[i] && target[i] != 0xAA)
			return false;
	return true;
}

dlt645_status
dlt645_di_parse(const char *text, uint32_t *di, dlt645_error *err)
{
	uint8_t b[4];
	dlt645_status st = hex_parse(text, b, 4, false, DLT645_E_DI_TEXT, err);

	if (st != DLT645_OK)
		return st;
	*di = ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16) |
	      ((uint32_t) b[2] << 8) | b[3];
	return DLT645_OK;
}

void
dlt645_di_format(uint32_t di, char out[9])
{
	for (int i = 0; i < 8; i++)
		out[i] = hexdigits[(di >> (28 - 4 * i)) & 0x0F];
	out[8] = '\0';
}

/* ------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------ */

static uint8_t
byte_sum(const uint8_t *b, size_t n)
{
	unsigned s = 0;

	for (size_t i = 0; i < n; i++)
		s += b[i];
	return (uint8_t) s;
}

/*
 * Checks the frame at p (p[0] == 68, at least 12 + L bytes available):
 * second 68, checksum, end byte. Offsets in err are base + index. With
 * plain, also writes the data field without its 0x33 offset there.
 */
static dlt645_status
frame_check(const uint8_t *p, int64_t base, dlt645_error *err, uint8_t *plain)
{
	size_t l = p[9];
	unsigned sum;
	uint8_t cs;

	if (p[7] != DLT645_START)
	{
		err_set(err, DLT645_E_START2, base + 7, DLT645_START, p[7]);
		return DLT645_E_START2;
	}
	sum = byte_sum(p, DLT645_HEADER_LEN);
	if (plain != NULL)
	{
		/* one pass: sum the data and remove the 0x33 offset */
		for (size_t i = 0; i < l; i++)
		{
			uint8_t b = p[DLT645_HEADER_LEN + i];

			sum += b;
			plain[i] = (uint8_t) (b - DLT645_SCRAMBLE);
		}
	}
	else
		sum += byte_sum(p + DLT645_HEADER_LEN, l);
	cs = (uint8_t) sum;
	if (cs != p[DLT645_HEADER_LEN + l])
	{
		err_set(err, DLT645_E_CHECKSUM, base + DLT645_HEADER_LEN + (int64_t) l,
		        cs, p[DLT645_HEADER_LEN + l]);
		if (err)
		{
			err->start = base;
			err->what = "checksum";
		}
		return DLT645_E_CHECKSUM;
	}
	if (p[DLT645_HEADER_LEN + l + 1] != DLT645_END)
	{
		err_set(err, DLT645_E_END, base + DLT645_HEADER_LEN + (int64_t) l + 1,
		        DLT645_END, p[DLT645_HEADER_LEN + l + 1]);
		if (err)
			err->start = base;
		return DLT645_E_END;
	}
	return DLT645_OK;
}

/* Fills the header fields of frame from a checked frame at p (frame_check
 * wrote the data). */
static void
frame_fill(dlt645_frame *f, const uint8_t *p, size_t offset, unsigned fe)
{
	memcpy(f->address, p + 1, DLT645_ADDR_LEN);
	f->control = p[8];
	f->len = p[9];
	f->preamble = (uint8_t) (fe > 255 ? 255 : fe);
	f->offset = offset;
	f->raw = p;
}

dlt645_status
dlt645_frame_decode(const uint8_t *buf, size_t len, dlt645_frame *frame,
                    dlt645_error *err)
{
	size_t p = 0;
	size_t avail;
	size_t total;
	dlt645_status st;

	while (p < len && buf[p] == DLT645_PREAMBLE_BYTE)
		p++;
	if (p == len)
	{
		err_set(err, DLT645_E_EMPTY, -1, -1,
		        (int32_t) (p > INT32_MAX ? INT32_MAX : p));
		return DLT645_E_EMPTY;
	}
	if (buf[p] != DLT645_START)
	{
		err_set(err, DLT645_E_START, (int64_t) p, DLT645_START, buf[p]);
		return DLT645_E_START;
	}
	avail = len - p;
	if (avail >= 8 && buf[p + 7] != DLT645_START)
	{
		err_set(err, DLT645_E_START2, (int64_t) p + 7, DLT645_START,
		        buf[p + 7]);
		return DLT645_E_START2;
	}
	if (avail < DLT645_HEADER_LEN)
	{
		err_set(err, DLT645_E_TRUNCATED, (int64_t) len, DLT645_OVERHEAD,
		        (int32_t) avail);
		if (err)
		{
			err->start = (int64_t) p;
			err->at_least = true;
		}
		return DLT645_E_TRUNCATED;
	}
	total = DLT645_OVERHEAD + (size_t) buf[p + 9];
	if (avail < total)
	{
		err_set(err, DLT645_E_TRUNCATED, (int64_t) len, (int32_t) total,
		        (int32_t) avail);
		if (err)
			err->start = (int64_t) p;
		return DLT645_E_TRUNCATED;
	}
	st = frame_check(buf + p, (int64_t) p, err, frame->data);
	if (st != DLT645_OK)
		return st;
	if (avail > total)
	{
		size_t extra = avail - total;

		err_set(err, DLT645_E_TRAILING, (int64_t) (p + total), -1,
		        (int32_t) (extra > INT32_MAX ? INT32_MAX : extra));
		if (err)
			err->start = (int64_t) p;
		return DLT645_E_TRAILING;
	}
	frame_fill(frame, buf + p, p, (unsigned) (p > 255 ? 255 : p));
	return DLT645_OK;
}

int
dlt645_frame_encode(uint8_t *out, size_t cap, unsigned preamble,
                    const uint8_t address[DLT645_ADDR_LEN], uint8_t control,
                    const uint8_t *data, size_t len)
{
	uint8_t *p;
	size_t total;

	if (preamble > DLT645_MAX_PREAMBLE || len > DLT645_MAX_DATA)
		return -DLT645_E_ARGUMENT;
	total = preamble + DLT645_OVERHEAD + len;
	if (cap < total)
		return -DLT645_E_BUFFER;
	memset(out, DLT645_PREAMBLE_BYTE, preamble);
	p = out + preamble;
	p[0] = DLT645_START;
	memcpy(p + 1, address, DLT645_ADDR_LEN);
	p[7] = DLT645_START;
	p[8] = control;
	p[9] = (uint8_t) len;
	for (size_t i = 0; i < len; i++)
		p[DLT645_HEADER_LEN + i] = (uint8_t) (data[i] + DLT645_SCRAMBLE);
	p[DLT645_HEADER_LEN + len] = byte_sum(p, DLT645_HEADER_LEN + len);
	p[DLT645_HEADER_LEN + len + 1] = DLT645_END;
	return (int) total;
}

/* ------------------------------------------------------------------------
 * Messages: one layout table for the parser and the encoder
 * ------------------------------------------------------------------------ */

enum field
{
	F_NONE,
	F_DI,
	F_SEQ,
	F_PW,
	F_OP,
	F_N1N2,
	F_TIME,
	F_FREEZE,
	F_ADDR,
	F_BYTE,
	F_NEWPW,
	F_SERR,
	F_VALUE
};

static const struct
{
	uint8_t size; /* 0 = variable */
	uint16_t has;
} field_def[] = {
    [F_NONE] = {0, 0},
    [F_DI] = {4, DLT645_HAS_DI},
    [F_SEQ] = {1, DLT645_HAS_SEQ},
    [F_PW] = {4, DLT645_HAS_PASSWORD},
    [F_OP] = {4, DLT645_HAS_OPERATOR},
    [F_N1N2] = {2, DLT645_HAS_CONTROL},
    [F_TIME] = {6, DLT645_HAS_TIME},
    [F_FREEZE] = {4, DLT645_HAS_FREEZE},
    [F_ADDR] = {6, DLT645_HAS_DATA_ADDRESS},
    [F_BYTE] = {1, DLT645_HAS_BYTE},
    [F_NEWPW] = {4, DLT645_HAS_NEW_PASSWORD},
    [F_SERR] = {1, DLT645_HAS_SERR}, /* 1 or 2 bytes */
    [F_VALUE] = {0, DLT645_HAS_VALUE},
};

#define MAX_FIELDS 5

typedef struct fn_def
{
	const char *name;
	uint8_t req[MAX_FIELDS]; /* request layout, F_NONE-terminated */
	uint8_t rep[MAX_FIELDS]; /* normal reply layout */
} fn_def;

static const fn_def fn_table[32] = {
    [DLT645_FN_SECURITY] = {"security", {F_DI, F_VALUE}, {F_VALUE}},
    [DLT645_FN_TIME_SYNC] = {"time_sync", {F_TIME}, {F_NONE}},
    [DLT645_FN_READ] = {"read", {F_DI, F_VALUE}, {F_DI, F_VALUE}},
    [DLT645_FN_READ_FOLLOW] = {"read_follow_up",
                               {F_DI, F_SEQ},
                               {F_DI, F_VALUE, F_SEQ}},
    [DLT645_FN_READ_ADDRESS] = {"read_address", {F_NONE}, {F_ADDR}},
    [DLT645_FN_WRITE] = {"write", {F_DI, F_PW, F_OP, F_VALUE}, {F_NONE}},
    [DLT645_FN_WRITE_ADDRESS] = {"write_address", {F_ADDR}, {F_NONE}},
    [DLT645_FN_FREEZE] = {"freeze", {F_FREEZE}, {F_NONE}},
    [DLT645_FN_BAUD_RATE] = {"baud_rate", {F_BYTE}, {F_BYTE}},
    [DLT645_FN_PASSWORD] = {"password", {F_DI, F_PW, F_NEWPW}, {F_NEWPW}},
    [DLT645_FN_DEMAND_CLEAR] = {"demand_clear", {F_PW, F_OP}, {F_NONE}},
    [DLT645_FN_METER_CLEAR] = {"meter_clear", {F_PW, F_OP}, {F_NONE}},
    [DLT645_FN_EVENT_CLEAR] = {"event_clear", {F_PW, F_OP, F_DI}, {F_NONE}},
    [DLT645_FN_CONTROL] = {"control", {F_PW, F_OP, F_N1N2, F_TIME}, {F_NONE}},
    [DLT645_FN_OUTPUT] = {"output", {F_BYTE}, {F_BYTE}},
};

/* 0x1C through the ESAM [SG]: N1..N8 replaced by ciphertext + MAC. */
static const uint8_t layout_control_esam[MAX_FIELDS] = {F_PW, F_OP, F_VALUE};
static const uint8_t layout_unknown[MAX_FIELDS] = {F_VALUE};
static const uint8_t layout_abnormal[MAX_FIELDS] = {F_SERR};

const char *
dlt645_function_name(uint8_t func)
{
	return func < 32 ? fn_table[func].name : NULL;
}

/*
 * The layout of a message. esam: a 0x1C request whose PA is 98 or 99 [SG]
 * (ciphertext or MAC instead of plaintext N1..N8).
 */
static const uint8_t *
message_layout(uint8_t control, bool esam)
{
	uint8_t func = dlt645_function(control);

	if (dlt645_is_abnormal(control))
		return layout_abnormal;
	if (fn_table[func].name == NULL)
		return layout_unknown;
	if (dlt645_is_reply(control))
		return fn_table[func].rep;
	if (func == DLT645_FN_CONTROL && esam)
		return layout_control_esam;
	return fn_table[func].req;
}

static bool
is_esam_level(uint8_t pa)
{
	return pa == 0x98 || pa == 0x99;
}

void
dlt645_message_init(dlt645_message *msg,
                    const uint8_t address[DLT645_ADDR_LEN], uint8_t control)
{
	/*
	 * Field by field rather than memset: the compiler merges these into a
	 * few wide stores, where a memset of the struct becomes `rep stos`,
	 * whose start-up cost dominated decoding a short frame.
	 */
	memcpy(msg->address, address, DLT645_ADDR_LEN);
	msg->control = control;
	msg->func = dlt645_function(control);
	msg->reply = dlt645_is_reply(control);
	msg->abnormal = dlt645_is_abnormal(control);
	msg->follow_up = (control & DLT645_CTRL_FOLLOW_UP) != 0;
	msg->fields = 0;
	msg->di = 0;
	msg->seq = 0;
	msg->n1 = 0;
	msg->n2 = 0;
	msg->byte = 0;
	memset(msg->password, 0, sizeof(msg->password));
	memset(msg->operator_code, 0, sizeof(msg->operator_code));
	memset(msg->new_password, 0, sizeof(msg->new_password));
	memset(msg->data_address, 0, sizeof(msg->data_address));
	msg->serr_len = 1;
	msg->serr = 0;
	msg->time.year = 0;
	msg->time.month = 0;
	msg->time.day = 0;
	msg->time.hour = 0;
	msg->time.minute = 0;
	msg->time.second = 0;
	msg->time.weekday = DLT645_NO_WEEKDAY;
	msg->freeze.month = 0;
	msg->freeze.day = 0;
	msg->freeze.hour = 0;
	msg->freeze.minute = 0;
	msg->value = NULL;
	msg->value_len = 0;
	msg->value_offset = -1;
}

static uint32_t
le32(const uint8_t *b)
{
	return (uint32_t) b[0] | ((uint32_t) b[1] << 8) | ((uint32_t) b[2] << 16) |
	       ((uint32_t) b[3] << 24);
}

static void
put_le32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t) v;
	b[1] = (uint8_t) (v >> 8);
	b[2] = (uint8_t) (v >> 16);
	b[3] = (uint8_t) (v >> 24);
}

/* Decodes a freeze time; offsets base + index. */
static dlt645_status
freeze_decode(const uint8_t *b, dlt645_freeze *f, int64_t base,
              dlt645_error *err)
{
	uint8_t v[4];

	for (int i = 0; i < 4; i++)
	{
		int x = bcd_value[b[i]];

		if (x < 0)
		{
			err_set(err, DLT645_E_BCD, base + i, -1, b[i]);
			return DLT645_E_BCD;
		}
		v[i] = (uint8_t) x;
	}
	f->minute = v[0];
	f->hour = v[1];
	f->day = v[2];
	f->month = v[3];
	if (dlt645_freeze_kind(f) == NULL)
	{
		/* point at the first field that breaks the rule */
		int bad = 0;

		for (int i = 3; i >= 0; i--)
		{
			int part = dt_freeze.part[i];
			bool wild = v[i] == DLT645_FREEZE_ANY;

			if (!wild &&
			    (v[i] < dt_part_def[part].lo || v[i] > dt_part_def[part].hi))
			{
				bad = i;
				break;
			}
			if (wild && i < 3 && v[i + 1] != DLT645_FREEZE_ANY)
			{
				bad = i;
				break;
			}
		}
		err_set(err, DLT645_E_DATETIME, base + bad, -1, v[bad]);
		if (err)
			err->what = dt_part_def[dt_freeze.part[bad]].name;
		return DLT645_E_DATETIME;
	}
	return DLT645_OK;
}

dlt645_status
dlt645_message_parse(const dlt645_frame *frame, dlt645_message *msg,
                     dlt645_error *err)
{
	const uint8_t *d = frame->data;
	size_t l = frame->len;
	const uint8_t *layout =
	    message_layout(frame->control, l >= 8 && is_esam_level(d[0]));
	size_t fixed = 0;
	bool variable = false;
	size_t pos = 0;
	int64_t base = (int64_t) frame->offset + DLT645_HEADER_LEN;
	dlt645_status st;

	dlt645_message_init(msg, frame->address, frame->control);
	if (msg->func == DLT645_FN_READ && !msg->abnormal && l >= 4)
	{
		/* nearly all traffic: the layout DI value, in both directions */
		msg->fields = DLT645_HAS_DI | DLT645_HAS_VALUE;
		msg->di = le32(d);
		msg->value = d + 4;
		msg->value_len = (uint8_t) (l - 4);
		msg->value_offset = base + 4;
		return DLT645_OK;
	}
	for (int i = 0; i < MAX_FIELDS && layout[i] != F_NONE; i++)
	{
		fixed += field_def[layout[i]].size;
		if (layout[i] == F_VALUE)
			variable = true;
	}
	if (layout == layout_abnormal)
	{
		if (l < 1 || l > 2)
		{
			err_set(err, DLT645_E_DATA_LENGTH, base - 1, l < 1 ? 1 : 2,
			        (int32_t) l);
			if (err)
			{
				err->at_least = l < 1;
				err->what = "an abnormal reply";
			}
			return DLT645_E_DATA_LENGTH;
		}
		msg->fields = DLT645_HAS_SERR;
		msg->serr_len = (uint8_t) l;
		msg->serr = (uint16_t) (d[0] | (l == 2 ? d[1] << 8 : 0));
		return DLT645_OK;
	}
	if (variable ? l < fixed : l != fixed)
	{
		err_set(err, DLT645_E_DATA_LENGTH, base - 1, (int32_t) fixed,
		        (int32_t) l);
		if (err)
		{
			err->at_least = variable;
			err->what = fn_table[msg->func].name
			                ? (msg->reply ? "a normal reply" : "a request")
			                : NULL;
		}
		return DLT645_E_DATA_LENGTH;
	}
	for (int i = 0; i < MAX_FIELDS && layout[i] != F_NONE; i++)
	{
		int f = layout[i];

		msg->fields |= field_def[f].has;
		switch (f)
		{
			case F_DI:
				msg->di = le32(d + pos);
				break;
			case F_SEQ:
				msg->seq = d[pos];
				break;
			case F_PW:
				memcpy(msg->password, d + pos, 4);
				break;
			case F_OP:
				memcpy(msg->operator_code, d + pos, 4);
				break;
			case F_NEWPW:
				memcpy(msg->new_password, d + pos, 4);
				break;
			case F_N1N2:
				msg->n1 = d[pos];
				msg->n2 = d[pos + 1];
				break;
			case F_TIME:
				st = dt_decode(&dt_ssmmhhDDMMYY, d + pos, &msg->time,
				               base + (int64_t) pos, err);
				if (st != DLT645_OK)
					return st;
				break;
			case F_FREEZE:
				st = freeze_decode(d + pos, &msg->freeze, base + (int64_t) pos,
				                   err);
				if (st != DLT645_OK)
					return st;
				break;
			case F_ADDR:
				memcpy(msg->data_address, d + pos, DLT645_ADDR_LEN);
				break;
			case F_BYTE:
				msg->byte = d[pos];
				break;
			case F_VALUE:
				msg->value = d + pos;
				msg->value_len = (uint8_t) (l - fixed);
				msg->value_offset = base + (int64_t) pos;
				pos += l - fixed;
				break;
			default:
				break;
		}
		pos += field_def[f].size;
	}
	return DLT645_OK;
}

int
dlt645_message_encode(const dlt645_message *msg, unsigned preamble,
                      uint8_t *out, size_t cap)
{
	uint8_t data[DLT645_MAX_DATA];
	const uint8_t *layout =
	    message_layout(msg->control, is_esam_level(msg->password[0]));
	size_t pos = 0;

	for (int i = 0; i < MAX_FIELDS && layout[i] != F_NONE; i++)
	{
		int f = layout[i];
		size_t need = f == F_VALUE  ? msg->value_len
		              : f == F_SERR ? msg->serr_len
		                            : field_def[f].size;

		if (pos + need > DLT645_MAX_DATA)
			return -DLT645_E_ARGUMENT;
		switch (f)
		{
			case F_DI:
				put_le32(data + pos, msg->di);
				break;
			case F_SEQ:
				data[pos] = msg->seq;
				break;
			case F_PW:
				memcpy(data + pos, msg->password, 4);
				break;
			case F_OP:
				memcpy(data + pos, msg->operator_code, 4);
				break;
			case F_NEWPW:
				memcpy(data + pos, msg->new_password, 4);
				break;
			case F_N1N2:
				data[pos] = msg->n1;
				data[pos + 1] = msg->n2;
				break;
			case F_TIME:
				if (dt_encode(&dt_ssmmhhDDMMYY, &msg->time, data + pos) !=
				    DLT645_OK)
					return -DLT645_E_DATETIME;
				break;
			case F_FREEZE:
				if (dlt645_freeze_kind(&msg->freeze) == NULL)
					return -DLT645_E_DATETIME;
				for (int k = 0; k < 4; k++)
					data[pos + k] = dlt645_bin_to_bcd(
					    freeze_get(&msg->freeze, dt_freeze.part[k]));
				break;
			case F_ADDR:
				memcpy(data + pos, msg->data_address, DLT645_ADDR_LEN);
				break;
			case F_BYTE:
				data[pos] = msg->byte;
				break;
			case F_SERR:
				if (msg->serr_len < 1 || msg->serr_len > 2)
					return -DLT645_E_ARGUMENT;
				data[pos] = (uint8_t) msg->serr;
				if (msg->serr_len == 2)
					data[pos + 1] = (uint8_t) (msg->serr >> 8);
				break;
			case F_VALUE:
				if (msg->value_len > 0)
				{
					if (msg->value == NULL)
						return -DLT645_E_ARGUMENT;
					memcpy(data + pos, msg->value, msg->value_len);
				}
				break;
			default:
				break;
		}
		pos += need;
	}
	return dlt645_frame_encode(out, cap, preamble, msg->address, msg->control,
	                           data, pos);
}

int
dlt645_build_read(uint8_t *out, size_t cap, unsigned preamble,
                  const uint8_t address[DLT645_ADDR_LEN], uint32_t di)
{
	dlt645_message m;

	dlt645_message_init(&m, address, DLT645_FN_READ);
	m.di = di;
	return dlt645_message_encode(&m, preamble, out, cap);
}

int
dlt645_build_read_follow_up(uint8_t *out, size_t cap, unsigned preamble,
                            const uint8_t address[DLT645_ADDR_LEN],
                            uint32_t di, uint8_t seq)
{
	dlt645_message m;

	dlt645_message_init(&m, address, DLT645_FN_READ_FOLLOW);
	m.di = di;
	m.seq = seq;
	return dlt645_message_encode(&m, preamble, out, cap);
}

int
dlt645_build_read_address(uint8_t *out, size_t cap, unsigned preamble)
{
	dlt645_message m;

	dlt645_message_init(&m, dlt645_wildcard_address, DLT645_FN_READ_ADDRESS);
	return dlt645_message_encode(&m, preamble, out, cap);
}

int
dlt645_build_write(uint8_t *out, size_t cap, unsigned preamble,
                   const uint8_t address[DLT645_ADDR_LEN], uint32_t di,
                   const uint8_t password[4], const uint8_t operator_code[4],
                   const uint8_t *value, size_t value_len)
{
	dlt645_message m;

	if (value_len > DLT645_MAX_DATA - 12)
		return -DLT645_E_ARGUMENT;
	dlt645_message_init(&m, address, DLT645_FN_WRITE);
	m.di = di;
	memcpy(m.password, password, 4);
	memcpy(m.operator_code, operator_code, 4);
	m.value = value;
	m.value_len = (uint8_t) value_len;
	m.fields = DLT645_HAS_VALUE;
	return dlt645_message_encode(&m, preamble, out, cap);
}

int
dlt645_build_time_sync(uint8_t *out, size_t cap, unsigned preamble,
                       const dlt645_datetime *t)
{
	dlt645_message m;

	if (!dlt645_datetime_valid(t))
		return -DLT645_E_DATETIME;
	dlt645_message_init(&m, dlt645_broadcast_address, DLT645_FN_TIME_SYNC);
	m.time = *t;
	return dlt645_message_encode(&m, preamble, out, cap);
}

int
dlt645_build_freeze(uint8_t *out, size_t cap, unsigned preamble,
                    const uint8_t address[DLT645_ADDR_LEN],
                    const dlt645_freeze *when)
{
	dlt645_message m;

	dlt645_message_init(&m, address, DLT645_FN_FREEZE);
	m.freeze = *when;
	return dlt645_message_encode(&m, preamble, out, cap);
}

int
dlt645_build_control(uint8_t *out, size_t cap, unsigned preamble,
                     const uint8_t address[DLT645_ADDR_LEN],
                     const uint8_t password[4], const uint8_t operator_code[4],
                     uint8_t n1, uint8_t n2,
                     const dlt645_datetime *valid_until)
{
	dlt645_message m;

	if (!dlt645_datetime_valid(valid_until))
		return -DLT645_E_DATETIME;
	dlt645_message_init(&m, address, DLT645_FN_CONTROL);
	memcpy(m.password, password, 4);
	memcpy(m.operator_code, operator_code, 4);
	m.n1 = n1;
	m.n2 = n2;
	m.time = *valid_until;
	if (is_esam_level(m.password[0]))
		return -DLT645_E_ARGUMENT; /* the ESAM form is not plaintext N1..N8 */
	return dlt645_message_encode(&m, preamble, out, cap);
}

int
dlt645_build_read_reply(uint8_t *out, size_t cap, unsigned preamble,
                        const uint8_t address[DLT645_ADDR_LEN], uint32_t di,
                        const uint8_t *value, size_t value_len, bool follow_up)
{
	dlt645_message m;

	if (value_len > DLT645_MAX_DATA - 4)
		return -DLT645_E_ARGUMENT;
	dlt645_message_init(&m, address,
	                    DLT645_FN_READ | DLT645_CTRL_REPLY |
	                        (follow_up ? DLT645_CTRL_FOLLOW_UP : 0));
	m.di = di;
	m.value = value;
	m.value_len = (uint8_t) value_len;
	m.fields = DLT645_HAS_VALUE;
	return dlt645_message_encode(&m, preamble, out, cap);
}

int
dlt645_build_address_reply(uint8_t *out, size_t cap, unsigned preamble,
                           const uint8_t address[DLT645_ADDR_LEN])
{
	dlt645_message m;

	dlt645_message_init(&m, address,
	                    DLT645_FN_READ_ADDRESS | DLT645_CTRL_REPLY);
	memcpy(m.data_address, address, DLT645_ADDR_LEN);
	return dlt645_message_encode(&m, preamble, out, cap);
}

int
dlt645_build_ack(uint8_t *out, size_t cap, unsigned preamble,
                 const uint8_t address[DLT645_ADDR_LEN], uint8_t func)
{
	if (func >= 32 || fn_table[func].name == NULL ||
	    fn_table[func].rep[0] != F_NONE)
		return -DLT645_E_ARGUMENT;
	return dlt645_frame_encode(out, cap, preamble, address,
	                           (uint8_t) (func | DLT645_CTRL_REPLY), NULL, 0);
}

int
dlt645_build_error_reply(uint8_t *out, size_t cap, unsigned preamble,
                         const uint8_t address[DLT645_ADDR_LEN], uint8_t func,
                         uint8_t serr)
{
	dlt645_message m;

	if (func >= 32)
		return -DLT645_E_ARGUMENT;
	dlt645_message_init(
	    &m, address,
	    (uint8_t) (func | DLT645_CTRL_REPLY | DLT645_CTRL_ABNORMAL));
	m.serr = serr;
	return dlt645_message_encode(&m, preamble, out, cap);
}

/* SERR and control names */

static const char *const serr_names[16] = {
    "other",
    "no_data",
    "unauthorized",
    "baud_rate_fixed",
    "too_many_zones",
    "too_many_periods",
    "too_many_tariffs",
    "reserved",
};

/* [SG] 2-byte control error word (0x1C through the ESAM) */
static const char *const serr_control_names[16] = {
    "meter_suspended",
    "mac_error",
    "unauthorized",
    "authentication_timeout",
    "invalid_time",
    "trip_failed_keep_power",
    "restore_trip_failed_keep_power",
    "invalid_restore_time",
    "restore_failed_tripped",
};

/* [SG] 2-byte security error word (0x03) */
static const char *const serr_security_names[16] = {
    [0] = "other",
    [1] = "repeated_recharge",
    [2] = "esam_failed",
    [3] = "authentication_failed",
    [4] = "customer_mismatch",
    [5] = "purchase_count_error",
    [6] = "hoarding_limit_exceeded",
    [8] = "meter_suspended",
    [15] = "set_password_error",
};

const char *
dlt645_serr_bit_name(uint8_t func, unsigned serr_len, unsigned bit)
{
	if (bit >= 16 || (serr_len < 2 && bit >= 8))
		return NULL;
	if (serr_len == 2 && func == DLT645_FN_CONTROL)
		return serr_control_names[bit];
	if (serr_len == 2 && func == DLT645_FN_SECURITY)
		return serr_security_names[bit];
	return serr_names[bit];
}

static const struct
{
	const char *name;
	uint8_t code;
} control_names[] = {
    {"trip", DLT645_N1_TRIP},
    {"open", DLT645_N1_TRIP}, /* alias; the first name of a code wins */
    {"permit_close", DLT645_N1_PERMIT_CLOSE},
    {"close", DLT645_N1_CLOSE},
    {"trip_restore_1", DLT645_N1_TRIP_RESTORE_1},
    {"trip_restore_2", DLT645_N1_TRIP_RESTORE_2},
    {"alarm_on", DLT645_N1_ALARM_ON},
    {"alarm_off", DLT645_N1_ALARM_OFF},
    {"keep_power_on", DLT645_N1_KEEP_POWER_ON},
    {"keep_power_off", DLT645_N1_KEEP_POWER_OFF},
};

int
dlt645_control_code(const char *name)
{
	for (size_t i = 0; i < lengthof(control_names); i++)
		if (strcmp(name, control_names[i].name) == 0)
			return control_names[i].code;
	return -1;
}

const char *
dlt645_control_name(uint8_t n1)
{
	for (size_t i = 0; i < lengthof(control_names); i++)
		if (control_names[i].code == n1)
			return control_names[i].name;
	return NULL;
}

/* ------------------------------------------------------------------------
 * The DI registry
 * ------------------------------------------------------------------------ */

/* Most elements of `size` bytes that fit a reply (L - 4 DI bytes). */
#define BLOCK_MAX(size)                                                       \
	((DLT645_MAX_DATA - 4) / (size) < DLT645_MAX_VALUES                       \
	     ? (DLT645_MAX_DATA - 4) / (size)                                     \
	     : DLT645_MAX_VALUES)

/* One registry row, fields in the order of dlt645_di_def. */
#define ROW(d3, d2, d1lo, d1hi, d0lo, d0hi, sel, qual, fmt, size, dec, sgn,   \
            hist, block, first, name, unit, title)                            \
	{                                                                         \
		d3, d2, d1lo, d1hi, d0lo, d0hi, sel, qual, fmt, size, dec, sgn, hist, \
		    block, first, name, unit, title                                   \
	}

/* Energy-like family: tariff in DI1 (00 total, 01..3F), settlement period
 * in DI0 (00 current, 01..0C previous), and the block DI1 = FF. */
#define FAMILY(d3, d2, fmt, size, dec, sgn, name, unit, title)                \
	ROW(d3, d2, 0x00, 0x3F, 0x00, 0x0C, DLT645_SEL_DI1, DLT645_QUAL_TARIFF,   \
	    fmt, size, dec, sgn, true, 0, 0, name, unit, title),                  \
	    ROW(d3, d2, 0xFF, 0xFF, 0x00, 0x0C, DLT645_SEL_NONE,                  \
	        DLT645_QUAL_TARIFF, fmt, size, dec, sgn, true, BLOCK_MAX(size),   \
	        0, name, unit, title " (block)")

/* Phase family: DI1 = lo..3 selects the total (0) or phase A..C, DI0 = 00;
 * and the block DI1 = FF. */
#define PHASES(d2, lo, size, dec, sgn, name, unit, title)                     \
	ROW(0x02, d2, lo, 0x03, 0x00, 0x00, DLT645_SEL_DI1, DLT645_QUAL_PHASE,    \
	    DLT645_FMT_NUMBER, size, dec, sgn, false, 0, 0, name, unit, title),   \
	    ROW(0x02, d2, 0xFF, 0xFF, 0x00, 0x00, DLT645_SEL_NONE,                \
	        DLT645_QUAL_PHASE, DLT645_FMT_NUMBER, size, dec, sgn, false,      \
	        4 - (lo), lo, name, unit, title " (block)")

/* One DI. */
#define ONE(d3, d2, d1, d0, fmt, size, dec, sgn, name, unit, title)           \
	ROW(d3, d2, d1, d1, d0, d0, DLT645_SEL_NONE, DLT645_QUAL_NONE, fmt, size, \
	    dec, sgn, false, 0, 0, name, unit, title)

/* DI0 = lo..hi selects the element (qual names it). */
#define INDEXED(d3, d2, d1, lo, hi, qual, fmt, size, dec, name, unit, title)  \
	ROW(d3, d2, d1, d1, lo, hi, DLT645_SEL_DI0, qual, fmt, size, dec, false,  \
	    false, 0, 0, name, unit, title)

/* Frozen data: DI0 = n-th previous freeze; DI1 = 00 the time, 01 forward
 * and 02 reverse active energy blocks. */
#define FROZEN(d2, hi, name, title)                                           \
	ROW(0x05, d2, 0x00, 0x00, 0x01, hi, DLT645_SEL_NONE, DLT645_QUAL_NONE,    \
	    DLT645_FMT_YYMMDDhhmm, 5, 0, false, true, 0, 0, name "_time", "",     \
	    title " time"),                                                       \
	    ROW(0x05, d2, 0x01, 0x01, 0x01, hi, DLT645_SEL_NONE,                  \
	        DLT645_QUAL_TARIFF, DLT645_FMT_NUMBER, 4, 2, false, true,         \
	        BLOCK_MAX(4), 0, name "_forward_active", "kWh",                   \
	        title " forward active energy (block)"),                          \
	    ROW(0x05, d2, 0x02, 0x02, 0x01, hi, DLT645_SEL_NONE,                  \
	        DLT645_QUAL_TARIFF, DLT645_FMT_NUMBER, 4, 2, false, true,         \
	        BLOCK_MAX(4), 0, name "_reverse_active", "kWh",                   \
	        title " reverse active energy (block)")

#define N DLT645_FMT_NUMBER

/*
 * The standard rows, one list per DI3 class (00 energy, 01 demand, 02
 * variables, 03 events/purchases, 04 parameters, 05 frozen data), so that
 * the compiler counts the rows of each class for the lookup index below.
 */
#define STD_CLASS_00                                                          \
	/* 00: energy */                                                          \
	FAMILY(0x00, 0x00, N, 4, 2, true, "combined_active", "kWh",               \
	       "combined active energy"),                                         \
	    FAMILY(0x00, 0x01, N, 4, 2, false, "forward_active", "kWh",           \
	           "forward active energy"),                                      \
	    FAMILY(0x00, 0x02, N, 4, 2, false, "reverse_active", "kWh",           \
	           "reverse active energy"),                                      \
	    FAMILY(0x00, 0x03, N, 4, 2, true, "combined_reactive_1", "kvarh",     \
	           "combined reactive energy 1"),                                 \
	    FAMILY(0x00, 0x04, N, 4, 2, true, "combined_reactive_2", "kvarh",     \
	           "combined reactive energy 2"),                                 \
	    FAMILY(0x00, 0x05, N, 4, 2, false, "reactive_q1", "kvarh",            \
	           "quadrant I reactive energy"),                                 \
	    FAMILY(0x00, 0x06, N, 4, 2, false, "reactive_q2", "kvarh",            \
	           "quadrant II reactive energy"),                                \
	    FAMILY(0x00, 0x07, N, 4, 2, false, "reactive_q3", "kvarh",            \
	           "quadrant III reactive energy"),                               \
	    FAMILY(0x00, 0x08, N, 4, 2, false, "reactive_q4", "kvarh",            \
	           "quadrant IV reactive energy"), /* 00 90: prepaid balances */  \
	    ONE(0x00, 0x90, 0x01, 0x00, N, 4, 2, false, "remaining_energy",       \
	        "kWh", "remaining energy (energy-type prepaid)"),                 \
	    ONE(0x00, 0x90, 0x01, 0x01, N, 4, 2, false, "overdraft_energy",       \
	        "kWh", "overdraft energy (energy-type prepaid)"),                 \
	    ONE(0x00, 0x90, 0x02, 0x00, N, 4, 2, false, "remaining_amount",       \
	        "yuan", "remaining amount (money-type prepaid)"),                 \
	    ONE(0x00, 0x90, 0x02, 0x01, N, 4, 2, false, "overdraft_amount",       \
	        "yuan", "overdraft amount (money-type prepaid)")

#define STD_CLASS_01                                                          \
	/* 01: maximum demand and its time */                                     \
	FAMILY(0x01, 0x01, DLT645_FMT_DEMAND, 8, 4, false,                        \
	       "max_demand_forward_active", "kW",                                 \
	       "forward active maximum demand"),                                  \
	    FAMILY(0x01, 0x02, DLT645_FMT_DEMAND, 8, 4, false,                    \
	           "max_demand_reverse_active", "kW",                             \
	           "reverse active maximum demand")

#define STD_CLASS_02                                                          \
	/* 02: instantaneous variables */                                         \
	PHASES(0x01, 1, 2, 1, false, "voltage", "V", "voltage"),                  \
	    PHASES(0x02, 1, 3, 3, true, "current", "A", "current"),               \
	    PHASES(0x03, 0, 3, 4, true, "active_power", "kW", "active power"),    \
	    PHASES(0x04, 0, 3, 4, true, "reactive_power", "kvar",                 \
	           "reactive power"),                                             \
	    PHASES(0x05, 0, 3, 4, true, "apparent_power", "kVA",                  \
	           "apparent power"),                                             \
	    PHASES(0x06, 0, 2, 3, true, "power_factor", "", "power factor"),      \
	    PHASES(0x07, 1, 2, 1, false, "phase_angle", "deg", "phase angle"),    \
	    ONE(0x02, 0x80, 0x00, 0x01, N, 3, 3, true, "neutral_current", "A",    \
	        "neutral current"),                                               \
	    ONE(0x02, 0x80, 0x00, 0x02, N, 2, 2, false, "frequency", "Hz",        \
	        "grid frequency"),                                                \
	    ONE(0x02, 0x80, 0x00, 0x03, N, 3, 4, true, "active_power_1min", "kW", \
	        "one-minute average active power"),                               \
	    ONE(0x02, 0x80, 0x00, 0x04, N, 3, 4, true, "active_demand", "kW",     \
	        "current active demand"),                                         \
	    ONE(0x02, 0x80, 0x00, 0x05, N, 3, 4, true, "reactive_demand", "kvar", \
	        "current reactive demand"),                                       \
	    ONE(0x02, 0x80, 0x00, 0x06, N, 3, 4, true, "apparent_demand", "kVA",  \
	        "current apparent demand"),                                       \
	    ONE(0x02, 0x80, 0x00, 0x07, N, 2, 1, true, "temperature", "degC",     \
	        "meter temperature"),                                             \
	    ONE(0x02, 0x80, 0x00, 0x08, N, 2, 2, false, "clock_battery_voltage",  \
	        "V", "clock battery voltage"),                                    \
	    ONE(0x02, 0x80, 0x00, 0x09, N, 2, 2, false,                           \
	        "reading_battery_voltage", "V", "meter-reading battery voltage"), \
	    ONE(0x02, 0x80, 0x00, 0x0A, N, 4, 0, false, "battery_work_time",      \
	        "min", "internal battery working time")

#define STD_CLASS_03                                                          \
	/* 03: purchase records (last purchase) */                                \
	ONE(0x03, 0x32, 0x02, 0x01, N, 2, 0, false, "energy_purchase_count", "",  \
	    "energy purchases so far"),                                           \
	    ONE(0x03, 0x32, 0x06, 0x01, N, 4, 2, false, "energy_purchase_total",  \
	        "kWh", "energy purchased so far"),                                \
	    ONE(0x03, 0x33, 0x02, 0x01, N, 2, 0, false, "purchase_count", "",     \
	        "purchases so far"),                                              \
	    ONE(0x03, 0x33, 0x06, 0x01, N, 4, 2, false, "purchase_total_amount",  \
	        "yuan", "amount purchased so far")

#define STD_CLASS_04                                                                                             \
	/* 04 00: parameters */                                                                                      \
	ONE(0x04, 0x00, 0x01, 0x01, DLT645_FMT_YYMMDDWW, 4, 0, false, "date", "",                                    \
	    "date and weekday"),                                                                                     \
	    ONE(0x04, 0x00, 0x01, 0x02, DLT645_FMT_hhmmss, 3, 0, false, "time",                                      \
	        "", "time of day"),                                                                                  \
	    ONE(0x04, 0x00, 0x01, 0x08, DLT645_FMT_YYMMDDhhmm, 5, 0, false,                                          \
	        "price_switch_time", "", "switch time between price sets"),                                          \
	    ONE(0x04, 0x00, 0x01, 0x0C, DLT645_FMT_YYMMDDWWhhmmss, 7, 0, false,                                      \
	        "datetime", "", "date, weekday and time"),                                                           \
	    ONE(0x04, 0x00, 0x04, 0x01, DLT645_FMT_ADDRESS, 6, 0, false,                                             \
	        "comm_address", "", "communication address"),                                                        \
	    ONE(0x04, 0x00, 0x04, 0x02, DLT645_FMT_ADDRESS, 6, 0, false,                                             \
	        "meter_number", "", "meter number"),                                                                 \
	    INDEXED(0x04, 0x00, 0x05, 0x01, 0x07, DLT645_QUAL_INDEX,                                                 \
	            DLT645_FMT_BITS, 2, 0, "status_word", "",                                                        \
	            "running status word"),                                                                          \
	    ROW(0x04, 0x00, 0x05, 0x05, 0xFF, 0xFF, DLT645_SEL_NONE,                                                 \
	        DLT645_QUAL_INDEX, DLT645_FMT_BITS, 2, 0, false, false, 7, 1,                                        \
	        "status_word", "", "running status words 1..7 (block)"),                                             \
	    ONE(0x04, 0x00, 0x06, 0x01, DLT645_FMT_BITS, 1, 0, false,                                                \
	        "active_combination_word", "", "active energy combination word"),                                    \
	    INDEXED(0x04, 0x00, 0x07, 0x01, 0x05, DLT645_QUAL_INDEX,                                                 \
	            DLT645_FMT_BITS, 1, 0, "baud_word", "",                                                          \
	            "baud-rate feature word"),                                                                       \
	    INDEXED(0x04, 0x00, 0x0B, 0x01, 0x03, DLT645_QUAL_INDEX,                                                 \
	            DLT645_FMT_DDhh, 2, 0, "settlement_day", "",                                                     \
	            "monthly settlement day and hour"),                                                              \
	    ONE(0x04, 0x00, 0x0F, 0x01, N, 4, 2, false, "alarm_energy_1", "kWh",                                     \
	        "alarm energy limit 1"),                                                                             \
	    ONE(0x04, 0x00, 0x0F, 0x02, N, 4, 2, false, "alarm_energy_2", "kWh",                                     \
	        "alarm energy limit 2"),                                                                             \
	    ONE(0x04, 0x00, 0x0F, 0x03, N, 4, 2, false, "hoarding_energy_limit",                                     \
	        "kWh", "hoarding energy limit"),                                                                     \
	    ONE(0x04, 0x00, 0x0F, 0x04, N, 4, 2, false, "overdraft_energy_limit",                                    \
	        "kWh", "overdraft energy limit"),                                                                    \
	    ONE(0x04, 0x00, 0x10, 0x01, N, 4, 2, false, "alarm_amount_1", "yuan",                                    \
	        "alarm amount limit 1"),                                                                             \
	    ONE(0x04, 0x00, 0x10, 0x02, N, 4, 2, false, "alarm_amount_2", "yuan",                                    \
	        "alarm amount limit 2"),                                                                             \
	    ONE(0x04, 0x00, 0x10, 0x03, N, 4, 2, false, "overdraft_amount_limit",                                    \
	        "yuan", "overdraft amount limit"),                                                                   \
	    ONE(0x04, 0x00, 0x10, 0x04, N, 4, 2, false, "hoarding_amount_limit",                                     \
	        "yuan", "hoarding (largest balance) amount limit"),                                                  \
	    ONE(0x04, 0x00, 0x10, 0x05, N, 4, 2, false,                                                              \
	        "close_permit_amount_limit", "yuan",                                                                 \
	        "balance needed before closing is permitted"), /* 04 05: prices of the first price set, XXXX.XXXX */ \
	    INDEXED(0x04, 0x05, 0x01, 0x01, 0x3F, DLT645_QUAL_TARIFF, N, 4, 4,                                       \
	            "price", "yuan/kWh", "tariff price (first set)")

#define STD_CLASS_05                                                          \
	/* 05: frozen data */                                                     \
	FROZEN(0x00, 0x3C, "timed_freeze", "timed freeze"),                       \
	    FROZEN(0x01, 0x03, "instant_freeze", "instant freeze"),               \
	    FROZEN(0x06, 0x3E, "daily_freeze", "daily freeze")

static const dlt645_di_def std_defs[] = {STD_CLASS_00, STD_CLASS_01,
                                         STD_CLASS_02, STD_CLASS_03,
                                         STD_CLASS_04, STD_CLASS_05};

#define ROWS(list)                                                            \
	(sizeof((const dlt645_di_def[]){list}) / sizeof(dlt645_di_def))

/* First row of each DI3 class 00..05 in std_defs, and the end. */
static const uint16_t std_class_start[7] = {
    0,
    ROWS(STD_CLASS_00),
    ROWS(STD_CLASS_00) + ROWS(STD_CLASS_01),
    ROWS(STD_CLASS_00) + ROWS(STD_CLASS_01) + ROWS(STD_CLASS_02),
    ROWS(STD_CLASS_00) + ROWS(STD_CLASS_01) + ROWS(STD_CLASS_02) +
        ROWS(STD_CLASS_03),
    ROWS(STD_CLASS_00) + ROWS(STD_CLASS_01) + ROWS(STD_CLASS_02) +
        ROWS(STD_CLASS_03) + ROWS(STD_CLASS_04),
    lengthof(std_defs),
};

/*
 * The same rows expanded once more, each as its first DI (DI3 DI2 DI1lo
 * DI0lo): a compact sorted array the lookup searches instead of the rows.
 */
#undef ROW
#define ROW(d3, d2, d1lo, d1hi, d0lo, d0hi, sel, qual, fmt, size, dec, sgn,   \
            hist, block, first, name, unit, title)                            \
	((uint32_t) (d3) << 24 | (uint32_t) (d2) << 16 | (uint32_t) (d1lo) << 8 | \
	 (uint32_t) (d0lo))
static const uint32_t std_first_di[] = {STD_CLASS_00, STD_CLASS_01,
                                        STD_CLASS_02, STD_CLASS_03,
                                        STD_CLASS_04, STD_CLASS_05};
#undef ROW

/* one key per row (a negative array size fails the build otherwise) */
typedef char std_first_di_matches_rows
    [lengthof(std_first_di) == lengthof(std_defs) ? 1 : -1];

#undef N

const dlt645_di_table dlt645_std_table = {
    "DL/T 645-2007 (pg_prepaid F1/F15 set)", std_defs, lengthof(std_defs),
    NULL};

static unsigned
def_key(const dlt645_di_def *d)
{
	return ((unsigned) d->di3 << 8) | d->di2;
}

static bool
def_contains(const dlt645_di_def *d, uint8_t d1, uint8_t d0)
{
	return d1 >= d->di1_lo && d1 <= d->di1_hi && d0 >= d->di0_lo &&
	       d0 <= d->di0_hi;
}

/*
 * The standard table's lookup: within the DI's class, the last row whose
 * first DI is <= di (a branch-free search over std_first_di), then that
 * row and the rows before it with the same DI3 DI2 until one contains di.
 * In this table it is always the first one tried.
 */
static const dlt645_di_def *
std_find(uint32_t di)
{
	unsigned cls = di >> 24;
	size_t lo;
	size_t n;
	uint8_t d1 = (uint8_t) (di >> 8);
	uint8_t d0 = (uint8_t) di;

	if (cls + 1 >= lengthof(std_class_start))
		return NULL;
	lo = std_class_start[cls];
	n = std_class_start[cls + 1] - lo;
	if (n == 0 || std_first_di[lo] > di)
		return NULL;
	/* last index in [lo, lo + n) with std_first_di <= di */
	while (n > 1)
	{
		size_t half = n / 2;

		lo = std_first_di[lo + half] <= di ? lo + half : lo;
		n -= half;
	}
	for (size_t i = lo + 1; i-- > std_class_start[cls];)
	{
		const dlt645_di_def *d = &std_defs[i];

		if ((std_first_di[i] >> 16) != (di >> 16))
			break;
		if (def_contains(d, d1, d0))
			return d;
	}
	return NULL;
}

const dlt645_di_def *
dlt645_di_find(const dlt645_di_table *table, uint32_t di)
{
	unsigned key = di >> 16;
	uint8_t d1 = (uint8_t) (di >> 8);
	uint8_t d0 = (uint8_t) di;

	if (table == NULL)
		table = &dlt645_std_table;
	for (; table != NULL; table = table->next)
	{
		const dlt645_di_def *defs = table->defs;
		size_t lo = 0;
		size_t end = table->n;
		size_t n;

		if (table == &dlt645_std_table)
		{
			const dlt645_di_def *d = std_find(di);

			if (d != NULL)
				return d;
			continue;
		}
		n = end - lo;
		if (n == 0)
			continue;
		/* first row with key >= wanted (branch-free lower bound) */
		while (n > 1)
		{
			size_t half = n / 2;

			lo = def_key(&defs[lo + half - 1]) < key ? lo + half : lo;
			n -= half;
		}
		if (def_key(&defs[lo]) < key)
			lo++;
		for (; lo < end && def_key(&defs[lo]) == key; lo++)
		{
			const dlt645_di_def *d = &defs[lo];

			if (def_contains(d, d1, d0))
				return d;
		}
	}
	return NULL;
}

/* Bytes per element a format requires (0 = 1..max_size). */
static unsigned
format_size(int format, unsigned *max_size)
{
	*max_size = 0;
	switch (format)
	{
		case DLT645_FMT_NUMBER:
			*max_size = 9;
			return 0;
		case DLT645_FMT_DEMAND:
			return 8;
		case DLT645_FMT_YYMMDDhhmm:
			return 5;
		case DLT645_FMT_YYMMDDWW:
			return 4;
		case DLT645_FMT_hhmmss:
			return 3;
		case DLT645_FMT_YYMMDDWWhhmmss:
			return 7;
		case DLT645_FMT_DDhh:
			return 2;
		case DLT645_FMT_ADDRESS:
			return 6;
		case DLT645_FMT_BITS:
			*max_size = 2;
			return 0;
		default:
			return 0xFFFF;
	}
}

dlt645_status
dlt645_di_table_check(const dlt645_di_table *table, char *why, size_t cap)
{
	int len = 0;

	if (cap > 0)
		why[0] = '\0';
	for (size_t i = 0; i < table->n; i++)
	{
		const dlt645_di_def *d = &table->defs[i];
		unsigned max_size;
		unsigned size = format_size(d->format, &max_size);

		if (d->name == NULL || d->unit == NULL || d->title == NULL)
			append(why, cap, &len, "row %zu has no name, unit or title", i);
		else if (d->di1_lo > d->di1_hi || d->di0_lo > d->di0_hi)
			append(why, cap, &len, "row %zu (%s): empty DI range", i, d->name);
		else if (size == 0xFFFF ||
		         (size == 0 ? d->size < 1 || d->size > max_size
		                    : d->size != size))
			append(why, cap, &len, "row %zu (%s): size %u does not fit format",
			       i, d->name, (unsigned) d->size);
		else if (d->decimals > 18 ||
		         (d->format == DLT645_FMT_DEMAND && d->decimals > 6))
			append(why, cap, &len, "row %zu (%s): too many decimals", i,
			       d->name);
		else if (d->block > DLT645_MAX_VALUES ||
		         (size_t) d->block * d->size > DLT645_MAX_DATA - 4)
			append(why, cap, &len, "row %zu (%s): block too large", i,
			       d->name);
		else if (d->block == 0 && d->sel_byte > DLT645_SEL_DI0)
			append(why, cap, &len, "row %zu (%s): bad selector", i, d->name);
		else if (d->qual > DLT645_QUAL_INDEX)
			append(why, cap, &len, "row %zu (%s): bad qualifier", i, d->name);
		else if (i > 0)
		{
			const dlt645_di_def *p = &table->defs[i - 1];
			unsigned long kp = ((unsigned long) def_key(p) << 16) |
			                   ((unsigned) p->di1_lo << 8) | p->di0_lo;
			unsigned long kd = ((unsigned long) def_key(d) << 16) |
			                   ((unsigned) d->di1_lo << 8) | d->di0_lo;

			if (kd <= kp)
				append(why, cap, &len, "row %zu (%s) is out of order", i,
				       d->name);
		}
		if (len > 0)
			break;
		for (size_t j = 0; j < i; j++)
		{
			const dlt645_di_def *p = &table->defs[j];

			if (def_key(p) == def_key(d) && p->di1_lo <= d->di1_hi &&
			    d->di1_lo <= p->di1_hi && p->di0_lo <= d->di0_hi &&
			    d->di0_lo <= p->di0_hi)
			{
				append(why, cap, &len, "rows %zu (%s) and %zu (%s) overlap", j,
				       p->name, i, d->name);
				break;
			}
		}
		if (len > 0)
			break;
	}
	finish_text(why, cap, len);
	return len > 0 ? DLT645_E_ARGUMENT : DLT645_OK;
}

/* Appends "_<qualifier>" for selector sel. */
static void
append_qual(char *buf, size_t cap, int *len, int qual, unsigned sel)
{
	switch (qual)
	{
		case DLT645_QUAL_TARIFF:
			if (sel == 0)
				append(buf, cap, len, "_total");
			else
				append(buf, cap, len, "_t%u", sel);
			break;
		case DLT645_QUAL_PHASE:
			if (sel == 0)
				append(buf, cap, len, "_total");
			else
				append(buf, cap, len, "_%c", (char) ('a' + (sel - 1) % 26));
			break;
		case DLT645_QUAL_INDEX:
			append(buf, cap, len, "_%u", sel);
			break;
		default:
			break;
	}
}

/* Selector of a single-value DI. */
static unsigned
single_sel(const dlt645_di_def *def, uint32_t di)
{
	if (def->sel_byte == DLT645_SEL_DI1)
		return (di >> 8) & 0xFF;
	if (def->sel_byte == DLT645_SEL_DI0)
		return di & 0xFF;
	return 0;
}

int
dlt645_di_name(const dlt645_di_def *def, uint32_t di, char *buf, size_t cap)
{
	int len = 0;

	if (cap > 0)
		buf[0] = '\0';
	if (def == NULL)
		return -DLT645_E_UNKNOWN_DI;
	append(buf, cap, &len, "%s", def->name);
	if (def->block > 0)
		append(buf, cap, &len, "_block");
	else if (def->sel_byte != DLT645_SEL_NONE)
		append_qual(buf, cap, &len, def->qual, single_sel(def, di));
	if (def->hist && (di & 0xFF) != 0)
		append(buf, cap, &len, "_prev%u", (unsigned) (di & 0xFF));
	return finish_text(buf, cap, len);
}

int
dlt645_value_key(const dlt645_di_def *def, uint8_t sel, const char *suffix,
                 char *buf, size_t cap)
{
	int len = 0;

	if (cap > 0)
		buf[0] = '\0';
	if (def == NULL)
		return -DLT645_E_UNKNOWN_DI;
	append(buf, cap, &len, "%s", def->name);
	if (def->block > 0 || def->sel_byte != DLT645_SEL_NONE)
		append_qual(buf, cap, &len, def->qual, sel);
	if (suffix != NULL)
	{
		if (suffix[0] != '\0')
			append(buf, cap, &len, "_%s", suffix);
	}
	else if (def->unit[0] != '\0')
	{
		append(buf, cap, &len, "_");
		for (const char *u = def->unit; *u; u++)
		{
			if (*u == '/')
				append(buf, cap, &len, "_per_");
			else if (*u >= 'A' && *u <= 'Z')
				append(buf, cap, &len, "%c", (char) (*u - 'A' + 'a'));
			else
				append(buf, cap, &len, "%c", *u);
		}
	}
	return finish_text(buf, cap, len);
}

/* ------------------------------------------------------------------------
 * Values: one element codec per format, used by decode and encode
 * ------------------------------------------------------------------------ */

static const dt_layout *
format_dt(int format)
{
	switch (format)
	{
		case DLT645_FMT_DEMAND:
		case DLT645_FMT_YYMMDDhhmm:
			return &dt_YYMMDDhhmm;
		case DLT645_FMT_YYMMDDWW:
			return &dt_YYMMDDWW;
		case DLT645_FMT_hhmmss:
			return &dt_hhmmss;
		case DLT645_FMT_YYMMDDWWhhmmss:
			return &dt_YYMMDDWWhhmmss;
		case DLT645_FMT_DDhh:
			return &dt_DDhh;
		default:
			return NULL;
	}
}

/* BCD formats, where all-FF bytes mean "absent" (FF is never BCD). */
static bool
format_is_bcd(int format)
{
	return format != DLT645_FMT_ADDRESS && format != DLT645_FMT_BITS;
}

/* Bytes of the number part of a NUMBER/DEMAND element. */
static unsigned
number_size(const dlt645_di_def *def)
{
	return def->format == DLT645_FMT_DEMAND ? 3 : def->size;
}

/* A date/time without any field set. */
static void
time_clear(dlt645_datetime *t)
{
	t->year = 0;
	t->month = 0;
	t->day = 0;
	t->hour = 0;
	t->minute = 0;
	t->second = 0;
	t->weekday = DLT645_NO_WEEKDAY;
}

/*
 * Decodes one element. The common case is tried first; the special
 * patterns (all FF: absent; date/time all 00: no time) are looked for only
 * when it fails, which they always make it do (FF is never BCD, 00 never a
 * valid month).
 */
static dlt645_status
element_decode(const dlt645_di_def *def, const uint8_t *b, dlt645_value *v,
               int64_t base, dlt645_error *err)
{
	const dt_layout *lay;
	size_t nbytes = 0;
	dlt645_status st;

	v->num = 0;
	v->decimals = def->decimals;
	v->flags = 0;
	time_clear(&v->time);
	memset(v->raw, 0, sizeof(v->raw));
	switch (def->format)
	{
		case DLT645_FMT_NUMBER:
		case DLT645_FMT_DEMAND:
		{
			size_t bad = 0;

			nbytes = number_size(def);
			st = dlt645_bcd_decode(b, nbytes, def->is_signed, &v->num, &bad);
			if (st != DLT645_OK)
			{
				uint8_t x = b[bad];

				if (all_bytes(b, def->size, 0xFF))
				{
					v->flags = DLT645_VALUE_ABSENT;
					return DLT645_OK;
				}
				if (def->is_signed && bad == nbytes - 1)
					x &= 0x7F;
				err_set(err, st, base + (int64_t) bad, -1, x);
				return st;
			}
			if (def->format == DLT645_FMT_NUMBER)
				return DLT645_OK;
			break;
		}
		case DLT645_FMT_ADDRESS:
			memcpy(v->raw, b, DLT645_ADDR_LEN);
			return DLT645_OK;
		case DLT645_FMT_BITS:
			v->num = b[0] | (def->size > 1 ? b[1] << 8 : 0);
			return DLT645_OK;
		default:
			break;
	}
	lay = format_dt(def->format);
	if (lay == NULL)
		return DLT645_OK;
	st = dt_decode(lay, b + nbytes, &v->time, base + (int64_t) nbytes, err);
	if (st == DLT645_OK)
		return DLT645_OK;
	time_clear(&v->time);
	if (all_bytes(b + nbytes, lay->n, 0x00))
		v->flags |= DLT645_VALUE_NO_TIME;
	else if (all_bytes(b, def->size, 0xFF))
		v->flags = DLT645_VALUE_ABSENT;
	else
		return st;
	return DLT645_OK;
}

static dlt645_status
element_encode(const dlt645_di_def *def, const dlt645_value *v, uint8_t *b)
{
	const dt_layout *lay = format_dt(def->format);
	size_t nbytes = 0;
	dlt645_status st;

	if ((v->flags & DLT645_VALUE_ABSENT) && format_is_bcd(def->format))
	{
		memset(b, 0xFF, def->size);
		return DLT645_OK;
	}
	switch (def->format)
	{
		case DLT645_FMT_NUMBER:
		case DLT645_FMT_DEMAND:
		{
			int64_t n;

			nbytes = number_size(def);
			st = dlt645_rescale(v->num, v->decimals, def->decimals, &n);
			if (st != DLT645_OK)
				return st;
			st = dlt645_bcd_encode(n, nbytes, def->is_signed, b);
			if (st != DLT645_OK)
				return st;
			break;
		}
		case DLT645_FMT_ADDRESS:
			memcpy(b, v->raw, DLT645_ADDR_LEN);
			return DLT645_OK;
		case DLT645_FMT_BITS:
			if (v->num < 0 || v->num >= (1 << (8 * def->size)))
				return DLT645_E_RANGE;
			b[0] = (uint8_t) v->num;
			if (def->size > 1)
				b[1] = (uint8_t) (v->num >> 8);
			return DLT645_OK;
		default:
			break;
	}
	if (lay != NULL)
	{
		if (v->flags & DLT645_VALUE_NO_TIME)
			memset(b + nbytes, 0, lay->n);
		else
		{
			st = dt_encode(lay, &v->time, b + nbytes);
			if (st != DLT645_OK)
				return st;
		}
	}
	return DLT645_OK;
}

int
dlt645_values_decode(const dlt645_di_def *def, uint32_t di,
                     const uint8_t *data, size_t len, dlt645_value *out,
                     int cap, dlt645_error *err)
{
	size_t count;
	unsigned first;

	if (def == NULL)
	{
		err_set(err, DLT645_E_UNKNOWN_DI, -1, -1, -1);
		if (err)
			err->di = di;
		return -DLT645_E_UNKNOWN_DI;
	}
	if (def->size == 0)
	{
		err_set(err, DLT645_E_ARGUMENT, -1, -1, -1);
		return -DLT645_E_ARGUMENT;
	}
	if (def->block == 0)
	{
		if (len != def->size)
		{
			err_set(err, DLT645_E_VALUE_LENGTH, 0, def->size, (int32_t) len);
			if (err)
				err->di = di;
			return -DLT645_E_VALUE_LENGTH;
		}
		count = 1;
		first = single_sel(def, di);
	}
	else
	{
		count = len / def->size;
		if (len % def->size != 0 || count < 1 || count > def->block)
		{
			err_set(err, DLT645_E_VALUE_LENGTH, 0, def->size, (int32_t) len);
			if (err)
			{
				err->di = di;
				err->at_least = true;
				err->limit = def->block;
			}
			return -DLT645_E_VALUE_LENGTH;
		}
		first = def->block_first;
	}
	if (cap < 0 || count > (size_t) cap)
	{
		err_set(err, DLT645_E_BUFFER, -1, (int32_t) count, cap);
		return -DLT645_E_BUFFER;
	}
	for (size_t i = 0; i < count; i++)
	{
		dlt645_status st = element_decode(def, data + i * def->size, &out[i],
		                                  (int64_t) (i * def->size), err);

		if (st != DLT645_OK)
		{
			if (err)
				err->di = di;
			return -(int) st;
		}
		out[i].sel = (uint8_t) (first + i);
	}
	return (int) count;
}

int
dlt645_message_values(const dlt645_message *msg, const dlt645_di_table *table,
                      dlt645_value *out, int cap,
                      const dlt645_di_def **def_out, dlt645_error *err)
{
	const dlt645_di_def *def;
	int n;

	if (def_out)
		*def_out = NULL;
	if ((msg->fields & (DLT645_HAS_DI | DLT645_HAS_VALUE)) !=
	    (DLT645_HAS_DI | DLT645_HAS_VALUE))
	{
		err_set(err, DLT645_E_ARGUMENT, -1, -1, -1);
		return -DLT645_E_ARGUMENT;
	}
	def = dlt645_di_find(table, msg->di);
	if (def_out)
		*def_out = def;
	n = dlt645_values_decode(def, msg->di, msg->value, msg->value_len, out,
	                         cap, err);
	if (n < 0 && err != NULL)
	{
		if (err->code == DLT645_E_UNKNOWN_DI)
			err->offset = msg->value_offset - 4;
		else if (err->offset >= 0)
			err->offset += msg->value_offset;
	}
	return n;
}

int
dlt645_values_encode(const dlt645_di_def *def, const dlt645_value *vals, int n,
                     uint8_t *out, size_t cap)
{
	if (def == NULL)
		return -DLT645_E_UNKNOWN_DI;
	if (n < 1 || n > (def->block == 0 ? 1 : def->block))
		return -DLT645_E_ARGUMENT;
	if ((size_t) n * def->size > cap)
		return -DLT645_E_BUFFER;
	for (int i = 0; i < n; i++)
	{
		dlt645_status st = element_encode(def, &vals[i], out + i * def->size);

		if (st != DLT645_OK)
			return -(int) st;
	}
	return n * def->size;
}

int
dlt645_value_format(const dlt645_di_def *def, const dlt645_value *v, char *buf,
                    size_t cap)
{
	char addr[13];
	int len = 0;

	if (cap > 0)
		buf[0] = '\0';
	if (v->flags & DLT645_VALUE_ABSENT)
		return 0;
	switch (def->format)
	{
		case DLT645_FMT_NUMBER:
		case DLT645_FMT_DEMAND:
			return dlt645_fixed_format(v->num, v->decimals, buf, cap);
		case DLT645_FMT_ADDRESS:
			dlt645_address_format(v->raw, addr);
			append(buf, cap, &len, "%s", addr);
			break;
		case DLT645_FMT_BITS:
			append(buf, cap, &len, "%lld", (long long) v->num);
			break;
		case DLT645_FMT_DDhh:
			if (!(v->flags & DLT645_VALUE_NO_TIME))
				append(buf, cap, &len, "%02u %02u:00", (unsigned) v->time.day,
				       (unsigned) v->time.hour);
			break;
		default:
			if (!(v->flags & DLT645_VALUE_NO_TIME))
				return dlt645_datetime_format(
				    &v->time,
				    def->format == DLT645_FMT_YYMMDDWW ? DLT645_DT_DATE
				    : def->format == DLT645_FMT_hhmmss
				        ? DLT645_DT_HM | DLT645_DT_SECONDS
				    : def->format == DLT645_FMT_YYMMDDhhmm
				        ? DLT645_DT_DATE | DLT645_DT_HM
				        : DLT645_DT_DATE | DLT645_DT_HM | DLT645_DT_SECONDS,
				    buf, cap);
			break;
	}
	return finish_text(buf, cap, len);
}

/* Status-word bit names (words 1..7). */
static const char *const status_bits[7][16] = {
    /* word 1 */
    {[1] = "demand_block_method",
     [2] = "clock_battery_low",
     [3] = "reading_battery_low",
     [4] = "active_power_reverse",
     [5] = "reactive_power_reverse",
     [8] = "control_circuit_error",
     [9] = "esam_error",
     [12] = "program_error",
     [13] = "memory_fault",
     [14] = "overdraft",
     [15] = "clock_fault"},
    /* word 2 */
    {[0] = "active_reverse_a",
     [1] = "active_reverse_b",
     [2] = "active_reverse_c",
     [4] = "reactive_reverse_a",
     [5] = "reactive_reverse_b",
     [6] = "reactive_reverse_c"},
    /* word 3 */
    {[1] = "supply_auxiliary",
     [2] = "supply_battery",
     [3] = "programming_enabled",
     [4] = "relay_open",
     [6] = "relay_command_open",
     [7] = "pretrip_alarm",
     [8] = "prepaid_energy",
     [9] = "prepaid_money",
     [12] = "keep_power",
     [13] = "identity_authenticated",
     [14] = "local_account_open",
     [15] = "remote_account_open"},
#define PHASE_FAULTS                                                          \
	{                                                                         \
		"voltage_loss", "undervoltage", "overvoltage", "current_loss",        \
		    "overcurrent", "overload", "reverse_power", "phase_break",        \
		    "current_break"                                                   \
	}
    /* words 4..6: phase A, B, C faults */
    PHASE_FAULTS,
    PHASE_FAULTS,
    PHASE_FAULTS,
#undef PHASE_FAULTS
    /* word 7 */
    {"voltage_reverse_sequence", "current_reverse_sequence",
     "voltage_unbalance", "current_unbalance", "auxiliary_supply_lost",
     "power_down", "demand_over_limit", "power_factor_low",
     "current_unbalance_severe", "cover_open", "terminal_cover_open"},
};

const char *
dlt645_status_bit_name(unsigned word, unsigned bit)
{
	if (word < 1 || word > 7 || bit > 15)
		return NULL;
	return status_bits[word - 1][bit];
}

static const char *const baud_bits[16] = {
    [1] = "baud_600",  [2] = "baud_1200", [3] = "baud_2400",
    [4] = "baud_4800", [5] = "baud_9600", [6] = "baud_19200",
};

static const char *const combination_bits[16] = {
    "forward_add", "forward_subtract", "reverse_add", "reverse_subtract"};

const char *
dlt645_bit_name(const dlt645_di_def *def, uint8_t sel, unsigned bit)
{
	if (def == NULL || def->format != DLT645_FMT_BITS || bit > 15 ||
	    def->di3 != 0x04 || def->di2 != 0x00)
		return NULL;
	switch (def->di1_lo)
	{
		case 0x05:
			return dlt645_status_bit_name(sel, bit);
		case 0x06:
			return combination_bits[bit];
		case 0x07:
			return baud_bits[bit];
		default:
			return NULL;
	}
}

/* ------------------------------------------------------------------------
 * Stream parser
 * ------------------------------------------------------------------------ */

void
dlt645_stream_init(dlt645_stream *s)
{
	memset(s, 0, sizeof(*s));
}

size_t
dlt645_stream_pending(const dlt645_stream *s)
{
	return (size_t) (s->tail - s->head);
}

/*
 * Is there a complete frame with a good checksum and end byte wholly inside
 * b[from..to)?
 */
static bool
inner_frame(const uint8_t *b, size_t from, size_t to)
{
	for (size_t q = from; q + DLT645_OVERHEAD <= to; q++)
	{
		const uint8_t *c = memchr(b + q, DLT645_START, to - q);

		if (c == NULL)
			return false;
		q = (size_t) (c - b);
		if (q + DLT645_OVERHEAD > to)
			return false;
		if (b[q + 7] == DLT645_START && q + DLT645_OVERHEAD + b[q + 9] <= to &&
		    frame_check(b + q, 0, NULL, NULL) == DLT645_OK)
			return true;
	}
	return false;
}

/*
 * Scans the buffered bytes for the next event. Every decision depends only
 * on bytes at and after the current position that are already buffered,
 * and a decision that needs more bytes is deferred, so the outcome does not
 * depend on how the input was chunked.
 */
static dlt645_event
stream_scan(dlt645_stream *s, dlt645_frame *frame, dlt645_error *err)
{
	const uint8_t *b = s->buf;
	size_t p = s->head;
	size_t end = s->tail;

	while (p < end)
	{
		size_t avail;
		size_t total;
		unsigned fe;
		dlt645_status st;

		if (b[p] == DLT645_PREAMBLE_BYTE)
		{
			s->preamble++;
			if (s->fe_run < 255)
				s->fe_run++;
			p++;
			continue;
		}
		avail = end - p;
		if (b[p] != DLT645_START)
			goto garbage;
		if (avail < 8)
			break;
		if (b[p + 7] != DLT645_START)
			goto garbage;
		if (avail < DLT645_HEADER_LEN)
			break;
		total = DLT645_OVERHEAD + b[p + 9];
		if (avail < total)
		{
			/* incomplete: wait, unless a real frame lies inside its span */
			if (inner_frame(b, p + 1, end))
				goto garbage;
			break;
		}
		if (inner_frame(b, p + 1, p + total))
			goto garbage;
		st = frame_check(b + p, 0, err, frame->data);
		s->last = b + p;
		s->last_len = (uint16_t) total;
		fe = s->fe_run;
		s->fe_run = 0;
		if (st != DLT645_OK)
		{
			if (st == DLT645_E_CHECKSUM)
				s->bad_checksum++;
			else
				s->bad_end++;
			s->head = (uint16_t) (p + 1);
			return DLT645_BAD_FRAME;
		}
		frame_fill(frame, b + p, 0, fe);
		s->frames++;
		s->head = (uint16_t) (p + total);
		return DLT645_FRAME;

	garbage:
		s->garbage++;
		s->fe_run = 0;
		p++;
	}
	s->head = (uint16_t) p;
	return DLT645_NEED_MORE;
}

dlt645_event
dlt645_stream_next(dlt645_stream *s, const uint8_t **data, size_t *len,
                   dlt645_frame *frame, dlt645_error *err)
{
	for (;;)
	{
		size_t room;
		size_t n;
		dlt645_event ev;

		/* compact, then take as much input as fits */
		if (s->head > 0)
		{
			memmove(s->buf, s->buf + s->head, (size_t) (s->tail - s->head));
			s->tail = (uint16_t) (s->tail - s->head);
			s->head = 0;
		}
		room = sizeof(s->buf) - s->tail;
		n = *len < room ? *len : room;
		if (n > 0)
		{
			memcpy(s->buf + s->tail, *data, n);
			s->tail = (uint16_t) (s->tail + n);
			*data += n;
			*len -= n;
		}
		ev = stream_scan(s, frame, err);
		if (ev != DLT645_NEED_MORE || *len == 0)
			return ev;
	}
}
