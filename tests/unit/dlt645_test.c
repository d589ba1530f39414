/*
 * dlt645_test.c
 *	  Unit tests of the DL/T 645 codec (codec/dlt645.c), TAP output.
 *
 *	  Every worked frame of shared/dlt645.md §4.1 (T1..T19 and the
 *	  553668.com pair) and §4.2 (C1..C23) is decoded and checked against the
 *	  meaning stated there, and rebuilt byte for byte with the builders and
 *	  the value encoder where it is a frame we build. Then the §4.3 vectors,
 *	  the sign-bit examples, every error path, helpers, the registry, and
 *	  the stream parser (several frames per read, every split position,
 *	  garbage, FE, bad checksums, L = 200 and 255, false starts, and
 *	  independence from chunking).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlt645.h"
#include "tap.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* "68 AA 11" -> bytes; spaces ignored. */
static size_t
hex(const char *s, uint8_t *out)
{
	size_t n = 0;

	while (*s)
	{
		unsigned v;

		if (*s == ' ')
		{
			s++;
			continue;
		}
		if (sscanf(s, "%2x", &v) != 1)
		{
			fprintf(stderr, "bad hex in test: %s\n", s);
			exit(2);
		}
		out[n++] = (uint8_t) v;
		s += 2;
	}
	return n;
}

/* bytes -> "68 AA 11" in a static buffer. */
static const char *
tohex(const uint8_t *b, size_t n)
{
	static char buf[4 * DLT645_MAX_WIRE];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && len + 4 < sizeof(buf); i++)
		len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%s%02X",
		                         i ? " " : "", b[i]);
	return buf;
}

/* Normalised copy of a hex string (upper case, single spaces). */
static const char *
norm(const char *s)
{
	static uint8_t b[DLT645_MAX_WIRE * 2];
	static char out[4 * DLT645_MAX_WIRE];
	size_t n = hex(s, b);

	snprintf(out, sizeof(out), "%s", tohex(b, n));
	return out;
}

/* Id of the worked frame being tested, prefixed to is_frame names. */
static const char *current_id = "";

/* Encoded bytes (n < 0: error) equal the expected frame. */
static void
is_frame(const uint8_t *out, int n, const char *expected, const char *name)
{
	if (n < 0)
	{
		ok(0, "%s %s (encoder failed: %s)", current_id, name,
		   dlt645_strerror((dlt645_status) -n));
		return;
	}
	{
		char got[4 * DLT645_MAX_WIRE];

		snprintf(got, sizeof(got), "%s", tohex(out, (size_t) n));
		is_str(got, norm(expected), "%s %s", current_id, name);
	}
}

static const char *
addr_text(const uint8_t a[6])
{
	static char buf[13];

	dlt645_address_format(a, buf);
	return buf;
}

static const char *
di_text(uint32_t di)
{
	static char buf[9];

	dlt645_di_format(di, buf);
	return buf;
}

static const char *
value_text(const dlt645_di_def *def, const dlt645_value *v)
{
	static char buf[64];

	dlt645_value_format(def, v, buf, sizeof(buf));
	return buf;
}

static const char *
key_text(const dlt645_di_def *def, uint8_t sel, const char *suffix)
{
	static char buf[96];

	dlt645_value_key(def, sel, suffix, buf, sizeof(buf));
	return buf;
}

static const char *
di_name_text(uint32_t di)
{
	static char buf[96];
	const dlt645_di_def *def = dlt645_di_find(NULL, di);

	if (def == NULL)
		return "(unknown)";
	dlt645_di_name(def, di, buf, sizeof(buf));
	return buf;
}

/* A decoded worked frame. */
typedef struct decoded
{
	uint8_t bytes[DLT645_MAX_WIRE * 2];
	size_t n;
	dlt645_status frame_st;
	dlt645_status msg_st;
	dlt645_frame f;
	dlt645_message m;
	dlt645_error err;
	int nv;
	const dlt645_di_def *def;
	dlt645_value v[DLT645_MAX_VALUES];
} decoded;

static decoded D;

/*
 * Decodes a worked frame into D (frame, message, values when there is a DI
 * and a value) and reports that it decodes.
 */
static void
decode(const char *id, const char *frame_hex)
{
	memset(&D, 0, sizeof(D));
	current_id = id;
	D.n = hex(frame_hex, D.bytes);
	D.frame_st = dlt645_frame_decode(D.bytes, D.n, &D.f, &D.err);
	D.msg_st = D.frame_st == DLT645_OK
	               ? dlt645_message_parse(&D.f, &D.m, &D.err)
	               : D.frame_st;
	if (D.frame_st != DLT645_OK || D.msg_st != DLT645_OK)
	{
		char line[128];

		dlt645_error_format(&D.err, line, sizeof(line));
		ok(0, "%s decodes (%s)", id, line);
		return;
	}
	ok(1, "%s decodes", id);
	D.nv = -1;
	if ((D.m.fields & DLT645_HAS_DI) && (D.m.fields & DLT645_HAS_VALUE) &&
	    D.m.value_len > 0)
		D.nv = dlt645_message_values(&D.m, NULL, D.v, DLT645_MAX_VALUES,
		                             &D.def, &D.err);
}

/* Header facts of D: address text, control byte, DI (or -1 for none). */
static void
check_head(const char *id, const char *address, int control, long long di)
{
	is_str(addr_text(D.m.address), address, "%s address", id);
	is_int(D.m.control, control, "%s control %02X", id, control);
	if (di >= 0)
	{
		ok((D.m.fields & DLT645_HAS_DI) != 0, "%s has a DI", id);
		is_str(di_text(D.m.di), di_text((uint32_t) di), "%s DI", id);
	}
}

/* The single value of D, as text, and its key. */
static void
check_value(const char *id, const char *key, const char *text)
{
	if (!is_int(D.nv, 1, "%s has one value", id))
		return;
	is_str(key_text(D.def, D.v[0].sel, NULL), key, "%s value key", id);
	is_str(value_text(D.def, &D.v[0]), text, "%s value %s", id, text);
}

static const uint8_t pw_02[4] = {0x02, 0x00, 0x00, 0x00};
static const uint8_t pw_00[4] = {0x00, 0x00, 0x00, 0x00};
static const uint8_t op_00[4] = {0x00, 0x00, 0x00, 0x00};

static void
parse_address(const char *text, uint8_t a[6])
{
	if (dlt645_address_parse(text, a, NULL) != DLT645_OK)
	{
		fprintf(stderr, "bad address in test: %s\n", text);
		exit(2);
	}
}

/* Encodes one number for di and builds the 91 reply around it. */
static int
build_number_reply(uint8_t *out, unsigned preamble, const char *address,
                   uint32_t di, int64_t num, unsigned decimals)
{
	uint8_t a[6];
	uint8_t val[16];
	dlt645_value v = dlt645_number(num, decimals);
	int n = dlt645_values_encode(dlt645_di_find(NULL, di), &v, 1, val,
	                             sizeof(val));

	if (n < 0)
		return n;
	parse_address(address, a);
	return dlt645_build_read_reply(out, DLT645_MAX_WIRE, preamble, a, di, val,
	                               (size_t) n, false);
}

/* Builds a read request. */
static int
build_read(uint8_t *out, unsigned preamble, const char *address, uint32_t di)
{
	uint8_t a[6];

	parse_address(address, a);
	return dlt645_build_read(out, DLT645_MAX_WIRE, preamble, a, di);
}

/* ------------------------------------------------------------------------
 * §4.1 frames from open-source tests and documentation
 * ------------------------------------------------------------------------ */

static void
test_read_requests(void)
{
	static const struct
	{
		const char *id;
		const char *frame;
		unsigned preamble;
		const char *address;
		uint32_t di;
		const char *di_name;
	} reqs[] = {
	    {"T1", "68 AA AA AA AA AA AA 68 11 04 33 33 34 33 AE 16", 0,
	     "AAAAAAAAAAAA", 0x00010000, "forward_active_total"},
	    {"T3", "68 90 78 56 34 12 00 68 11 04 33 33 33 33 55 16", 0,
	     "001234567890", 0x00000000, "combined_active_total"},
	    {"T4", "68 78 56 34 12 00 00 68 11 04 33 34 34 35 C9 16", 0,
	     "000012345678", 0x02010100, "voltage_a"},
	    {"T5", "68 AA AA AA AA AA AA 68 11 04 33 34 34 35 B1 16", 0,
	     "AAAAAAAAAAAA", 0x02010100, "voltage_a"},
	    {"T10", "FE FE FE FE 68 08 02 02 41 22 00 68 11 04 35 37 33 37 2A 16",
	     4, "002241020208", 0x04000402, "meter_number"},
	    {"T15", "68 61 01 00 00 00 00 68 11 04 33 33 34 33 14 16", 0,
	     "000000000161", 0x00010000, "forward_active_total"},
	    {"T16", "FE FE FE FE 68 02 00 31 08 22 20 68 11 04 32 55 B3 35 D1 16",
	     4, "202208310002", 0x028022FF, "(unknown)"},
	    {"553668 request", "68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 16",
	     0, "000102030425", 0x00010000, "forward_active_total"},
	    {"C1", "68 01 72 00 72 00 00 68 11 04 33 35 C3 33 28 16", 0,
	     "000072007201", 0x00900200, "remaining_amount"},
	    {"C5", "68 01 72 00 72 00 00 68 11 04 36 38 33 37 A2 16", 0,
	     "000072007201", 0x04000503, "status_word_3"},
	    {"C20", "68 01 72 00 72 00 00 68 11 04 33 32 34 33 96 16", 0,
	     "000072007201", 0x0001FF00, "forward_active_block"},
	    {"C21", "68 01 72 00 72 00 00 68 11 04 34 33 34 33 98 16", 0,
	     "000072007201", 0x00010001, "forward_active_total_prev1"},
	    {"C22", "68 01 72 00 72 00 00 68 11 04 34 34 39 38 A3 16", 0,
	     "000072007201", 0x05060101,
	     "daily_freeze_forward_active_block_prev1"},
	    {"C23", "68 01 72 00 72 00 00 68 11 04 32 38 33 37 9E 16", 0,
	     "000072007201", 0x040005FF, "status_word_block"},
	};
	uint8_t out[DLT645_MAX_WIRE];

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
	{
		const char *id = reqs[i].id;

		decode(id, reqs[i].frame);
		check_head(id, reqs[i].address, 0x11, reqs[i].di);
		is_str(dlt645_function_name(D.m.func), "read", "%s is a read", id);
		ok(!D.m.reply && !D.m.abnormal && !D.m.follow_up,
		   "%s is a request (no reply, abnormal, follow-up bits)", id);
		is_int(D.m.value_len, 0, "%s carries only the DI", id);
		is_int(D.f.preamble, reqs[i].preamble, "%s has %u FE bytes", id,
		       reqs[i].preamble);
		is_str(di_name_text(D.m.di), reqs[i].di_name, "%s DI name", id);
		is_frame(
		    out,
		    build_read(out, reqs[i].preamble, reqs[i].address, reqs[i].di),
		    reqs[i].frame, "rebuilt byte for byte");
	}
	/* T16: the DI goes DI0 first on the wire */
	decode("T16 again",
	       "FE FE FE FE 68 02 00 31 08 22 20 68 11 04 32 55 B3 35 "
	       "D1 16");
	is_int(D.f.data[0], 0xFF, "T16: DI0 (FF) is the first data byte");
	is_int(D.f.data[3], 0x02, "T16: DI3 (02) is the last DI byte");
	ok(dlt645_di_find(NULL, D.m.di) == NULL,
	   "T16: vendor DI 02 80 22 FF is not in the standard table");
}

/* Replies with a single numeric value. */
static void
test_number_replies(void)
{
	static const struct
	{
		const char *id;
		const char *frame;
		unsigned preamble;
		const char *address;
		uint32_t di;
		const char *key;
		const char *text;
		int64_t num;
		unsigned decimals;
	} reps[] = {
	    {"T2", "68 01 72 00 72 00 00 68 91 08 33 33 34 33 33 33 33 33 E7 16",
	     0, "000072007201", 0x00010000, "forward_active_total_kwh", "0.00", 0,
	     2},
	    {"T6",
	     "FE FE FE FE 68 00 51 44 18 11 17 68 91 06 35 33 B3 35 36 83 45 "
	     "16",
	     4, "171118445100", 0x02800002, "frequency_hz", "50.03", 5003, 2},
	    {"T7", "68 76 02 02 47 02 02 68 91 08 33 33 34 33 35 33 33 33 C9 16",
	     0, "020247020276", 0x00010000, "forward_active_total_kwh", "0.02", 2,
	     2},
	    {"T12", "68 01 00 00 00 00 00 68 91 08 33 33 34 33 59 B3 55 44 DC 16",
	     0, "000000000001", 0x00010000, "forward_active_total_kwh",
	     "112280.26", 11228026, 2},
	    {"T13", "68 81 04 00 07 21 3A 68 91 07 33 35 35 35 33 33 33 BA 16", 0,
	     "3A2107000481", 0x02020200, "current_b_a", "0.000", 0, 3},
	    {"T14", "68 14 01 00 31 82 21 68 91 08 33 33 34 33 39 33 33 33 F1 16",
	     0, "218231000114", 0x00010000, "forward_active_total_kwh", "0.06", 6,
	     2},
	    {"553668 reply",
	     "68 25 04 03 02 01 00 68 91 08 33 33 34 33 75 39 45 33 8B 16", 0,
	     "000102030425", 0x00010000, "forward_active_total_kwh", "1206.42",
	     120642, 2},
	    {"C2", "68 01 72 00 72 00 00 68 91 08 33 35 C3 33 78 56 34 33 E1 16",
	     0, "000072007201", 0x00900200, "remaining_amount_yuan", "123.45",
	     12345, 2},
	    {"C3", "68 01 72 00 72 00 00 68 91 08 34 35 C3 33 33 33 33 33 79 16",
	     0, "000072007201", 0x00900201, "overdraft_amount_yuan", "0.00", 0, 2},
	    {"C13", "68 01 72 00 72 00 00 68 91 07 33 34 35 35 67 45 B3 7D 16", 0,
	     "000072007201", 0x02020100, "current_a_a", "-1.234", -1234, 3},
	};
	uint8_t out[DLT645_MAX_WIRE];

	for (size_t i = 0; i < sizeof(reps) / sizeof(reps[0]); i++)
	{
		const char *id = reps[i].id;

		decode(id, reps[i].frame);
		check_head(id, reps[i].address, 0x91, reps[i].di);
		ok(D.m.reply && !D.m.abnormal && !D.m.follow_up,
		   "%s is a normal reply", id);
		check_value(id, reps[i].key, reps[i].text);
		is_int(D.v[0].num, reps[i].num, "%s exact value", id);
		is_int(D.v[0].decimals, reps[i].decimals, "%s decimals", id);
		is_frame(out,
		         build_number_reply(out, reps[i].preamble, reps[i].address,
		                            reps[i].di, reps[i].num, reps[i].decimals),
		         reps[i].frame, "rebuilt from the exact value");
	}
	/* T13: the address is compared raw, its non-BCD byte kept */
	decode("T13 again",
	       "68 81 04 00 07 21 3A 68 91 07 33 35 35 35 33 33 33 BA 16");
	is_int(D.m.address[5], 0x3A, "T13: raw address byte 3A kept");
	ok(!dlt645_address_is_bcd(D.m.address), "T13: address is not BCD");
	/* T12 in wire terms: 26 80 22 11 */
	decode("T12 again",
	       "68 01 00 00 00 00 00 68 91 08 33 33 34 33 59 B3 55 44 DC 16");
	is_str(tohex(D.m.value, D.m.value_len), "26 80 22 11",
	       "T12: value bytes 26 80 22 11 after removing 0x33");
	/* energy in Wh for the reading table: exact rescale */
	{
		int64_t wh = 0;

		is_int(dlt645_rescale(D.v[0].num, 2, 3, &wh), DLT645_OK,
		       "T12: rescale 0.01 kWh to Wh");
		is_int(wh, 112280260, "T12: 112280.26 kWh = 112280260 Wh");
	}
}

static void
test_address_frames(void)
{
	uint8_t out[DLT645_MAX_WIRE];
	uint8_t a[6];

	decode("T8", "FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16");
	check_head("T8", "AAAAAAAAAAAA", 0x13, -1);
	is_str(dlt645_function_name(D.m.func), "read_address",
	       "T8 is read address");
	is_int(D.m.fields, 0, "T8 has no data fields");
	ok(dlt645_address_is_wildcard(D.m.address), "T8 address is the wildcard");
	is_frame(out, dlt645_build_read_address(out, sizeof(out), 4),
	         "FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16",
	         "rebuilt (read-address request of ingest.md)");

	decode("T9", "68 01 00 00 00 00 00 68 93 06 34 33 33 33 33 33 9D 16");
	check_head("T9", "000000000001", 0x93, -1);
	ok((D.m.fields & DLT645_HAS_DATA_ADDRESS) != 0, "T9 carries an address");
	is_str(addr_text(D.m.data_address), "000000000001",
	       "T9 reply address 000000000001");
	parse_address("000000000001", a);
	is_frame(out, dlt645_build_address_reply(out, sizeof(out), 0, a),
	         "68 01 00 00 00 00 00 68 93 06 34 33 33 33 33 33 9D 16",
	         "rebuilt");

	decode("C16", "68 01 72 00 72 00 00 68 93 06 34 A5 33 A5 33 33 65 16");
	check_head("C16", "000072007201", 0x93, -1);
	is_str(addr_text(D.m.data_address), "000072007201",
	       "C16 reply carries 000072007201");
	parse_address("000072007201", a);
	is_frame(out, dlt645_build_address_reply(out, sizeof(out), 0, a),
	         "68 01 72 00 72 00 00 68 93 06 34 A5 33 A5 33 33 65 16",
	         "rebuilt");

	/* T11: meter number 04 00 04 02 is six raw bytes, text reversed */
	decode(
	    "T11",
	    "68 08 02 02 41 22 00 68 91 0A 35 37 33 37 3B 35 35 74 55 33 51 16");
	check_head("T11", "002241020208", 0x91, 0x04000402);
	check_value("T11", "meter_number", "002241020208");
	is_str(tohex(D.v[0].raw, 6), "08 02 02 41 22 00",
	       "T11 meter number bytes 08 02 02 41 22 00");
	{
		uint8_t val[6];
		int n = dlt645_values_encode(D.def, D.v, 1, val, sizeof(val));

		parse_address("002241020208", a);
		is_frame(out,
		         n < 0 ? n
		               : dlt645_build_read_reply(out, sizeof(out), 0, a,
		                                         0x04000402, val, (size_t) n,
		                                         false),
		         "68 08 02 02 41 22 00 68 91 0A 35 37 33 37 3B 35 35 74 55 33 "
		         "51 16",
		         "rebuilt");
	}
}

static void
test_vendor_frame(void)
{
	int64_t n = 0;
	const uint8_t *v;
	uint32_t t;

	/* T17: JoyMeter block 00 1D 00 00, L = 31 */
	decode("T17",
	       "FE FE FE FE 68 66 66 66 66 66 66 68 91 1F 33 33 50 33 65 0F "
	       "9F 6B 33 33 33 33 33 33 33 33 87 33 33 33 43 55 35 33 93 "
	       "39 33 33 75 38 33 15 16");
	check_head("T17", "666666666666", 0x91, 0x001D0000);
	is_int(D.f.len, 31, "T17: L = 31");
	is_int(D.m.value_len, 27, "T17: 27 value bytes");
	is_int(D.nv, -DLT645_E_UNKNOWN_DI,
	       "T17: vendor DI 00 1D 00 00 is not decoded by the standard table");
	is_int(D.err.offset, 14, "T17: the unknown DI is at byte 14");
	v = D.m.value;
	t = (uint32_t) v[0] | (uint32_t) v[1] << 8 | (uint32_t) v[2] << 16 |
	    (uint32_t) v[3] << 24;
	is_int(t, 0x386CDC32, "T17: time is u32 LE 0x386CDC32 (binary)");
	dlt645_bcd_decode(v + 4, 4, false, &n, NULL);
	is_int(n, 0, "T17: remaining 0.00 kWh");
	dlt645_bcd_decode(v + 8, 4, false, &n, NULL);
	is_int(n, 0, "T17: history 0.00 kWh");
	dlt645_bcd_decode(v + 12, 4, false, &n, NULL);
	is_int(n, 54, "T17: current 0.054 A");
	dlt645_bcd_decode(v + 16, 4, false, &n, NULL);
	is_int(n, 22210, "T17: voltage 222.10 V");
	dlt645_bcd_decode(v + 20, 4, false, &n, NULL);
	is_int(n, 660, "T17: power 6.60 W");
	dlt645_bcd_decode(v + 24, 2, false, &n, NULL);
	is_int(n, 542, "T17: power factor 0.542");
	is_int(v[26], 0, "T17: switch 0 (closed)");
}

static void
test_relay_frames(void)
{
	uint8_t out[DLT645_MAX_WIRE];
	uint8_t a[6];
	char text[32];
	static const struct
	{
		const char *id;
		const char *frame;
		const char *address;
		const uint8_t *pw;
		uint8_t n1;
		const char *action;
		dlt645_datetime until;
	} ctl[] = {
	    {"T18",
	     "68 11 11 11 11 11 11 68 1C 10 33 33 33 33 33 33 33 33 4D 33 57 74 "
	     "48 45 38 4B 55 16",
	     "111111111111",
	     pw_00,
	     0x1A,
	     "trip",
	     {2018, 5, 12, 15, 41, 24, DLT645_NO_WEEKDAY}},
	    {"C7",
	     "68 01 72 00 72 00 00 68 1C 10 35 33 33 33 33 33 33 33 4E 33 33 33 "
	     "45 58 44 59 9C 16",
	     "000072007201",
	     pw_02,
	     0x1B,
	     "permit_close",
	     {2026, 11, 25, 12, 0, 0, DLT645_NO_WEEKDAY}},
	    {"C8",
	     "68 01 72 00 72 00 00 68 1C 10 35 33 33 33 33 33 33 33 4D 33 33 33 "
	     "45 58 44 59 9B 16",
	     "000072007201",
	     pw_02,
	     0x1A,
	     "trip",
	     {2026, 11, 25, 12, 0, 0, DLT645_NO_WEEKDAY}},
	};

	for (size_t i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++)
	{
		const char *id = ctl[i].id;

		decode(id, ctl[i].frame);
		check_head(id, ctl[i].address, 0x1C, -1);
		is_str(dlt645_function_name(D.m.func), "control", "%s is control", id);
		is_int(D.m.fields,
		       DLT645_HAS_PASSWORD | DLT645_HAS_OPERATOR | DLT645_HAS_CONTROL |
		           DLT645_HAS_TIME,
		       "%s fields: password, operator, N1 N2, valid-until", id);
		is_str(tohex(D.m.password, 4), tohex(ctl[i].pw, 4), "%s password", id);
		is_str(tohex(D.m.operator_code, 4), "00 00 00 00", "%s operator code",
		       id);
		is_int(D.m.n1, ctl[i].n1, "%s N1 %02X", id, ctl[i].n1);
		is_str(dlt645_control_name(D.m.n1), ctl[i].action, "%s is %s", id,
		       ctl[i].action);
		is_int(D.m.n2, 0, "%s N2 00", id);
		dlt645_datetime_format(
		    &D.m.time, DLT645_DT_DATE | DLT645_DT_HM | DLT645_DT_SECONDS, text,
		    sizeof(text));
		{
			char want[32];

			dlt645_datetime_format(&ctl[i].until,
			                       DLT645_DT_DATE | DLT645_DT_HM |
			                           DLT645_DT_SECONDS,
			                       want, sizeof(want));
			is_str(text, want, "%s valid until %s", id, want);
		}
		parse_address(ctl[i].address, a);
		is_frame(out,
		         dlt645_build_control(out, sizeof(out), 0, a, ctl[i].pw, op_00,
		                              ctl[i].n1, 0, &ctl[i].until),
		         ctl[i].frame, "rebuilt with dlt645_build_control");
	}

	decode("T19", "68 11 11 11 11 11 11 68 9C 00 D2 16");
	check_head("T19", "111111111111", 0x9C, -1);
	ok(D.m.reply && !D.m.abnormal, "T19 is a normal reply");
	parse_address("111111111111", a);
	is_frame(out, dlt645_build_ack(out, sizeof(out), 0, a, DLT645_FN_CONTROL),
	         "68 11 11 11 11 11 11 68 9C 00 D2 16", "rebuilt");

	decode("C9", "68 01 72 00 72 00 00 68 9C 00 51 16");
	check_head("C9", "000072007201", 0x9C, -1);
	parse_address("000072007201", a);
	is_frame(out, dlt645_build_ack(out, sizeof(out), 0, a, DLT645_FN_CONTROL),
	         "68 01 72 00 72 00 00 68 9C 00 51 16", "rebuilt");

	decode("C10", "68 01 72 00 72 00 00 68 DC 01 37 C9 16");
	check_head("C10", "000072007201", 0xDC, -1);
	ok(D.m.reply && D.m.abnormal, "C10 is an abnormal reply");
	is_int(D.m.serr, 0x04, "C10 SERR 04");
	is_str(dlt645_serr_bit_name(D.m.func, D.m.serr_len, 2), "unauthorized",
	       "C10 SERR bit 2 is unauthorized");
	is_frame(out,
	         dlt645_build_error_reply(out, sizeof(out), 0, a,
	                                  DLT645_FN_CONTROL, 0x04),
	         "68 01 72 00 72 00 00 68 DC 01 37 C9 16", "rebuilt");
}

static void
test_other_constructed(void)
{
	uint8_t out[DLT645_MAX_WIRE];
	uint8_t a[6];
	char text[32];

	parse_address("000072007201", a);

	decode("C4", "68 01 72 00 72 00 00 68 D1 01 35 BC 16");
	check_head("C4", "000072007201", 0xD1, -1);
	ok(D.m.abnormal && D.m.fields == DLT645_HAS_SERR,
	   "C4 is abnormal with a SERR");
	is_int(D.m.serr, 0x02, "C4 SERR 02");
	is_str(dlt645_serr_bit_name(D.m.func, 1, 1), "no_data",
	       "C4 SERR bit 1 is no_data");
	is_frame(
	    out,
	    dlt645_build_error_reply(out, sizeof(out), 0, a, DLT645_FN_READ, 0x02),
	    "68 01 72 00 72 00 00 68 D1 01 35 BC 16", "rebuilt");

	/* C6: status word 3 = 0x0050, relay open and commanded open */
	decode("C6", "68 01 72 00 72 00 00 68 91 06 36 38 33 37 83 33 DA 16");
	check_head("C6", "000072007201", 0x91, 0x04000503);
	check_value("C6", "status_word_3", "80");
	is_int(D.v[0].num, 0x0050, "C6 status word 3 = 0x0050");
	ok((D.v[0].num & DLT645_SW3_RELAY_OPEN) &&
	       (D.v[0].num & DLT645_SW3_RELAY_CMD_OPEN) &&
	       !(D.v[0].num & DLT645_SW3_KEEP_POWER),
	   "C6 relay open, command open, no keep-power");
	is_str(dlt645_status_bit_name(3, 4), "relay_open", "word 3 bit 4 name");
	is_str(dlt645_status_bit_name(3, 6), "relay_command_open",
	       "word 3 bit 6 name");
	is_str(dlt645_status_bit_name(3, 7), "pretrip_alarm", "word 3 bit 7 name");
	is_str(dlt645_status_bit_name(3, 12), "keep_power", "word 3 bit 12 name");
	is_str(dlt645_status_bit_name(4, 0), "voltage_loss", "word 4 bit 0 name");
	is_str(dlt645_status_bit_name(6, 4), "overcurrent", "word 6 bit 4 name");
	ok(dlt645_status_bit_name(3, 5) == NULL, "word 3 bit 5 has no name");
	is_str(dlt645_bit_name(D.def, 3, 4), "relay_open",
	       "bit name through the C6 row");
	is_str(dlt645_bit_name(dlt645_di_find(NULL, 0x040005FF), 7, 9),
	       "cover_open", "bit name through the status block, word 7");
	is_str(dlt645_bit_name(dlt645_di_find(NULL, 0x04000703), 0, 3),
	       "baud_2400", "baud word bit 3 is 2400 bps");
	is_str(dlt645_bit_name(dlt645_di_find(NULL, 0x04000601), 0, 1),
	       "forward_subtract", "combination word bit 1");
	ok(dlt645_bit_name(dlt645_di_find(NULL, 0x00010000), 0, 1) == NULL,
	   "no bit names for an energy DI");
	{
		dlt645_value v = dlt645_number(0x0050, 0);
		uint8_t val[2];
		int n = dlt645_values_encode(D.def, &v, 1, val, sizeof(val));

		is_frame(out,
		         n < 0 ? n
		               : dlt645_build_read_reply(out, sizeof(out), 0, a,
		                                         0x04000503, val, (size_t) n,
		                                         false),
		         "68 01 72 00 72 00 00 68 91 06 36 38 33 37 83 33 DA 16",
		         "rebuilt");
	}

	/* C11: broadcast time sync */
	decode("C11", "68 99 99 99 99 99 99 68 08 06 38 63 54 57 44 59 57 16");
	check_head("C11", "999999999999", 0x08, -1);
	ok(dlt645_address_is_broadcast(D.m.address), "C11 is broadcast");
	is_str(dlt645_function_name(D.m.func), "time_sync", "C11 is time sync");
	dlt645_datetime_format(&D.m.time,
	                       DLT645_DT_DATE | DLT645_DT_HM | DLT645_DT_SECONDS,
	                       text, sizeof(text));
	is_str(text, "2026-11-24 21:30:05", "C11 time");
	{
		dlt645_datetime t = {2026, 11, 24, 21, 30, 5, DLT645_NO_WEEKDAY};

		is_frame(out, dlt645_build_time_sync(out, sizeof(out), 0, &t),
		         "68 99 99 99 99 99 99 68 08 06 38 63 54 57 44 59 57 16",
		         "rebuilt");
	}

	/* C12: forward active block total + T1..T4 */
	decode("C12",
	       "68 01 72 00 72 00 00 68 91 18 33 32 34 33 89 67 45 33 33 33 "
	       "34 33 33 33 35 33 33 33 36 33 89 67 39 33 58 16");
	check_head("C12", "000072007201", 0x91, 0x0001FF00);
	if (is_int(D.nv, 5, "C12 has 5 values"))
	{
		static const char *const keys[5] = {
		    "forward_active_total_kwh", "forward_active_t1_kwh",
		    "forward_active_t2_kwh", "forward_active_t3_kwh",
		    "forward_active_t4_kwh"};
		static const char *const texts[5] = {"1234.56", "100.00", "200.00",
		                                     "300.00", "634.56"};
		uint8_t val[20];
		int n;

		for (int i = 0; i < 5; i++)
		{
			is_str(key_text(D.def, D.v[i].sel, NULL), keys[i], "C12 key %d",
			       i);
			is_str(value_text(D.def, &D.v[i]), texts[i], "C12 %s = %s",
			       keys[i], texts[i]);
		}
		n = dlt645_values_encode(D.def, D.v, 5, val, sizeof(val));
		is_frame(out,
		         n < 0 ? n
		               : dlt645_build_read_reply(out, sizeof(out), 0, a,
		                                         0x0001FF00, val, (size_t) n,
		                                         false),
		         "68 01 72 00 72 00 00 68 91 18 33 32 34 33 89 67 45 33 33 33 "
		         "34 33 33 33 35 33 33 33 36 33 89 67 39 33 58 16",
		         "rebuilt from its five values");
	}

	/* C14: maximum demand with its time */
	decode("C14",
	       "68 01 72 00 72 00 00 68 91 0C 33 33 34 34 89 67 45 48 47 53 "
	       "44 59 D4 16");
	check_head("C14", "000072007201", 0x91, 0x01010000);
	check_value("C14", "max_demand_forward_active_total_kw", "12.3456");
	is_str(key_text(D.def, D.v[0].sel, "at"),
	       "max_demand_forward_active_total_at", "C14 time key");
	dlt645_datetime_format(&D.v[0].time, DLT645_DT_DATE | DLT645_DT_HM, text,
	                       sizeof(text));
	is_str(text, "2026-11-20 14:15", "C14 at 2026-11-20 14:15");
	{
		dlt645_value v = dlt645_number(123456, 4);
		uint8_t val[8];
		int n;

		v.time = (dlt645_datetime){2026, 11, 20, 14, 15, 0, DLT645_NO_WEEKDAY};
		n = dlt645_values_encode(D.def, &v, 1, val, sizeof(val));
		is_frame(out,
		         n < 0 ? n
		               : dlt645_build_read_reply(out, sizeof(out), 0, a,
		                                         0x01010000, val, (size_t) n,
		                                         false),
		         "68 01 72 00 72 00 00 68 91 0C 33 33 34 34 89 67 45 48 47 53 "
		         "44 59 D4 16",
		         "rebuilt");
	}

	/* C15: time of the last daily freeze */
	decode("C15",
	       "68 01 72 00 72 00 00 68 91 09 34 33 39 38 33 33 57 44 59 81 16");
	check_head("C15", "000072007201", 0x91, 0x05060001);
	check_value("C15", "daily_freeze_time", "2026-11-24 00:00");
	is_str(di_name_text(0x05060001), "daily_freeze_time_prev1", "C15 DI name");
	{
		dlt645_value v = dlt645_number(0, 0);
		uint8_t val[5];
		int n;

		v.time = (dlt645_datetime){2026, 11, 24, 0, 0, 0, DLT645_NO_WEEKDAY};
		n = dlt645_values_encode(D.def, &v, 1, val, sizeof(val));
		is_frame(out,
		         n < 0 ? n
		               : dlt645_build_read_reply(out, sizeof(out), 0, a,
		                                         0x05060001, val, (size_t) n,
		                                         false),
		         "68 01 72 00 72 00 00 68 91 09 34 33 39 38 33 33 57 44 59 81 "
		         "16",
		         "rebuilt");
	}

	/* C17: write alarm amount 1 = 50.00 with PA 02 */
	decode("C17",
	       "68 01 72 00 72 00 00 68 14 10 34 43 33 37 35 33 33 33 33 33 "
	       "33 33 33 83 33 33 70 16");
	check_head("C17", "000072007201", 0x14, 0x04001001);
	is_str(dlt645_function_name(D.m.func), "write", "C17 is a write");
	is_str(tohex(D.m.password, 4), "02 00 00 00", "C17 password PA 02");
	is_str(tohex(D.m.operator_code, 4), "00 00 00 00", "C17 operator 0");
	check_value("C17", "alarm_amount_1_yuan", "50.00");
	{
		dlt645_value v = dlt645_number(50, 0); /* 50 yuan, rescaled */
		uint8_t val[4];
		int n = dlt645_values_encode(D.def, &v, 1, val, sizeof(val));

		is_frame(out,
		         n < 0 ? n
		               : dlt645_build_write(out, sizeof(out), 0, a, 0x04001001,
		                                    pw_02, op_00, val, (size_t) n),
		         "68 01 72 00 72 00 00 68 14 10 34 43 33 37 35 33 33 33 33 33 "
		         "33 33 33 83 33 33 70 16",
		         "rebuilt");
	}

	decode("C18", "68 01 72 00 72 00 00 68 94 00 49 16");
	check_head("C18", "000072007201", 0x94, -1);
	is_frame(out, dlt645_build_ack(out, sizeof(out), 0, a, DLT645_FN_WRITE),
	         "68 01 72 00 72 00 00 68 94 00 49 16", "rebuilt");

	decode("C19", "68 01 72 00 72 00 00 68 D4 01 37 C1 16");
	check_head("C19", "000072007201", 0xD4, -1);
	is_int(D.m.serr, 0x04, "C19 SERR 04 (refused)");
	is_frame(out,
	         dlt645_build_error_reply(out, sizeof(out), 0, a, DLT645_FN_WRITE,
	                                  0x04),
	         "68 01 72 00 72 00 00 68 D4 01 37 C1 16", "rebuilt");
}

/* ------------------------------------------------------------------------
 * §4.3 vectors not to use, sign bits, corrupted checksum
 * ------------------------------------------------------------------------ */

static void
test_rejected_vectors(void)
{
	uint8_t b[64];
	size_t n;
	dlt645_frame f;
	dlt645_message m;
	dlt645_error e;
	int64_t v = 0;
	char text[256];

	/* peace0phmind "1997" case: good checksum, C = 11 with a 2-byte DI */
	n = hex("68 67 45 23 01 00 00 68 11 02 44 E9 E0 16", b);
	is_int(dlt645_frame_decode(b, n, &f, &e), DLT645_OK,
	       "4.3 '1997' case: the link layer is intact");
	is_int(dlt645_message_parse(&f, &m, &e), DLT645_E_DATA_LENGTH,
	       "4.3 '1997' case: a read with a 2-byte DI is rejected");
	is_int(e.offset, 9, "... at the L byte (9)");
	ok(e.at_least && e.expected == 4 && e.got == 2,
	   "... L is 2, at least 4 needed");
	dlt645_error_detail(&e, text, sizeof(text));
	is_str(text,
	       "The data length L (byte 9) is 2; a request frame needs at least 4 "
	       "data bytes.",
	       "... errdetail text");

	/* Heyuan DL/T 645-1997 read (C = 01): not a 2007 function */
	n = hex("68 03 00 00 00 00 00 68 01 02 44 E9 03 16", b);
	is_int(dlt645_frame_decode(b, n, &f, &e), DLT645_OK,
	       "4.3 1997 read (C 01): link layer intact");
	is_int(dlt645_message_parse(&f, &m, &e), DLT645_OK,
	       "... parses as an unknown function");
	ok(dlt645_function_name(m.func) == NULL && m.fields == DLT645_HAS_VALUE &&
	       m.value_len == 2,
	   "... no 2007 function name, data kept as 2 raw bytes");

	/* 600888 freeze in natural order MM DD hh mm ("daily at 00:00") */
	{
		uint8_t a[6];
		uint8_t data[4] = {0x99, 0x99, 0x00, 0x00};
		uint8_t fr[32];
		int len;

		parse_address("000072007201", a);
		len = dlt645_frame_encode(fr, sizeof(fr), 0, a, DLT645_FN_FREEZE, data,
		                          4);
		dlt645_frame_decode(fr, (size_t) len, &f, &e);
		is_int(dlt645_message_parse(&f, &m, &e), DLT645_E_DATETIME,
		       "4.3 freeze in natural order (99 99 00 00) is rejected");
		ok(e.offset == 13 && e.got == 0 && strcmp(e.what, "month") == 0,
		   "... at byte 13 (month 00)");
		data[0] = 0x00;
		data[1] = 0x00;
		data[2] = 0x99;
		data[3] = 0x99;
		len = dlt645_frame_encode(fr, sizeof(fr), 0, a, DLT645_FN_FREEZE, data,
		                          4);
		dlt645_frame_decode(fr, (size_t) len, &f, &e);
		is_int(dlt645_message_parse(&f, &m, &e), DLT645_OK,
		       "... minute first (00 00 99 99) parses");
		is_str(dlt645_freeze_kind(&m.freeze), "daily", "... as daily 00:00");
		{
			dlt645_freeze daily = {99, 99, 0, 0};
			uint8_t out[32];

			current_id = "4.3 freeze";
			is_frame(out, dlt645_build_freeze(out, sizeof(out), 0, a, &daily),
			         tohex(fr, (size_t) len),
			         "... and is what build_freeze "
			         "writes");
		}
	}

	/* serialport#2627: masked address, value decodes, frame cannot */
	{
		static const uint8_t plain[2] = {0x3C - 0x33, 0x55 - 0x33};
		dlt645_value val;
		const dlt645_di_def *def = dlt645_di_find(NULL, 0x02010100);

		is_int(dlt645_values_decode(def, 0x02010100, plain, 2, &val, 1, &e), 1,
		       "4.3 masked voltage reply: the value decodes");
		is_str(value_text(def, &val), "220.9", "... 09 22 -> 220.9 V");
		n = hex("68 00 00 00 00 00 00 68 91 06 33 34 34 35 3C 55 F5 16", b);
		is_int(dlt645_frame_decode(b, n, &f, &e), DLT645_E_CHECKSUM,
		       "... with a guessed address the checksum F5 is rejected");
	}

	/* sign bit examples (LaoYutang/go-dlt645) */
	b[0] = 0x12;
	b[1] = 0x94;
	is_int(dlt645_bcd_decode(b, 2, true, &v, NULL), DLT645_OK,
	       "sign bit: 12 94 decodes");
	dlt645_fixed_format(v, 2, text, sizeof(text));
	is_str(text, "-14.12", "sign bit: 12 94, 2 decimals -> -14.12");
	b[0] = 0x34;
	b[1] = 0x01;
	b[2] = 0xA1;
	dlt645_bcd_decode(b, 3, true, &v, NULL);
	dlt645_fixed_format(v, 1, text, sizeof(text));
	is_str(text, "-21013.4", "sign bit: 34 01 A1, 1 decimal -> -21013.4");
	is_int(dlt645_bcd_decode(b, 3, false, &v, NULL), DLT645_E_BCD,
	       "34 01 A1 read unsigned is not BCD");
	{
		uint8_t enc[3];

		is_int(dlt645_bcd_encode(-210134, 3, true, enc), DLT645_OK,
		       "encode -21013.4");
		is_str(tohex(enc, 3), "34 01 A1", "... gives 34 01 A1");
	}

	/* T2 with a corrupted checksum */
	n = hex("68 01 72 00 72 00 00 68 91 08 33 33 34 33 33 33 33 33 E8 16", b);
	is_int(dlt645_frame_decode(b, n, &f, &e), DLT645_E_CHECKSUM,
	       "T2 with checksum E8 is rejected");
	ok(e.offset == 18 && e.expected == 0xE7 && e.got == 0xE8 && e.start == 0,
	   "... at byte 18: expected E7, got E8");
	dlt645_error_format(&e, text, sizeof(text));
	is_str(text, "checksum mismatch at byte 18: expected E7, got E8",
	       "... log line");
	dlt645_error_detail(&e, text, sizeof(text));
	is_str(text, "Byte 18 is E8; the sum of bytes 0..17 is E7.",
	       "... errdetail");
	/* same with a preamble: offsets count from the input */
	n = hex(
	    "FE FE 68 01 72 00 72 00 00 68 91 08 33 33 34 33 33 33 33 33 E8 16",
	    b);
	dlt645_frame_decode(b, n, &f, &e);
	dlt645_error_detail(&e, text, sizeof(text));
	is_str(text, "Byte 20 is E8; the sum of bytes 2..19 is E7.",
	       "... with 2 FE bytes the offsets shift by 2");
}

/* Every frame-level error, with its offset and message. */
static void
test_frame_errors(void)
{
	static const struct
	{
		const char *frame;
		dlt645_status code;
		int64_t offset;
		const char *line;
	} cases[] = {
	    {"", DLT645_E_EMPTY, -1, "frame is empty"},
	    {"FE FE FE", DLT645_E_EMPTY, -1, "frame is empty: only 3 FE bytes"},
	    {"FE 12 68", DLT645_E_START, 1,
	     "missing start byte at byte 1: expected 68, got 12"},
	    {"68 01 72 00 72 00 00 67 91 00", DLT645_E_START2, 7,
	     "missing second start byte at byte 7: expected 68, got 67"},
	    {"68 01 72 00 72 00", DLT645_E_TRUNCATED, 6,
	     "frame is truncated at byte 6: needs at least 12 bytes, got 6"},
	    {"68 01 72 00 72 00 00 68 91 08 33 33 34 33", DLT645_E_TRUNCATED, 14,
	     "frame is truncated at byte 14: needs 20 bytes, got 14"},
	    {"68 01 72 00 72 00 00 68 9C 00 51 17", DLT645_E_END, 11,
	     "missing end byte at byte 11: expected 16, got 17"},
	    {"68 01 72 00 72 00 00 68 9C 00 51 16 16 00", DLT645_E_TRAILING, 12,
	     "trailing bytes after the frame at byte 12: 2 more bytes"},
	};
	uint8_t b[64];
	dlt645_frame f;
	dlt645_error e;
	char line[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		size_t n = hex(cases[i].frame, b);
		dlt645_status st = dlt645_frame_decode(b, n, &f, &e);

		is_int(st, cases[i].code, "'%s': %s", cases[i].frame,
		       dlt645_strerror(cases[i].code));
		is_int(e.offset, cases[i].offset, "... at offset %lld",
		       (long long) cases[i].offset);
		dlt645_error_format(&e, line, sizeof(line));
		is_str(line, cases[i].line, "... log line");
	}
	/* detail sentences of the frame errors */
	{
		size_t n = hex("68 01 72 00 72 00 00 68 91 08 33 33 34 33", b);

		dlt645_frame_decode(b, n, &f, &e);
		dlt645_error_detail(&e, line, sizeof(line));
		is_str(line,
		       "The frame starting at byte 0 needs 20 bytes (L = 8) but only "
		       "14 are present.",
		       "truncated errdetail");
		n = hex("68 01 72 00 72 00 00 68 9C 00 51 16 16 00", b);
		dlt645_frame_decode(b, n, &f, &e);
		dlt645_error_detail(&e, line, sizeof(line));
		is_str(line,
		       "The frame ends at byte 11 but the input has 2 more bytes.",
		       "trailing errdetail");
	}
	/* no scanning for 16: a data byte 16 does not end the frame */
	{
		uint8_t a[6] = {0x01, 0x72, 0x00, 0x72, 0x00, 0x00};
		uint8_t val[4] = {0xE3, 0xE3, 0xE3, 0xE3}; /* wire 16 16 16 16 */
		uint8_t out[64];
		int n = dlt645_build_read_reply(out, sizeof(out), 0, a, 0x04000401,
		                                val, 4, false);

		ok(n > 0 && memchr(out + 10, 0x16, 8) != NULL,
		   "a frame with 16 bytes in its data");
		is_int(dlt645_frame_decode(out, (size_t) n, &f, &e), DLT645_OK,
		       "... decodes by L, not by the first 16");
	}
}

/* Message-level errors and layouts. */
static void
test_messages(void)
{
	uint8_t a[6];
	uint8_t out[DLT645_MAX_WIRE];
	dlt645_frame f;
	dlt645_message m;
	dlt645_message m2;
	dlt645_error e;
	int n;
	char text[256];

	parse_address("000072007201", a);

	/* follow-up request and reply */
	n = dlt645_build_read_follow_up(out, sizeof(out), 0, a, 0x0001FF00, 1);
	dlt645_frame_decode(out, (size_t) n, &f, &e);
	is_int(dlt645_message_parse(&f, &m, &e), DLT645_OK, "0x12 request parses");
	ok(m.fields == (DLT645_HAS_DI | DLT645_HAS_SEQ) && m.seq == 1 &&
	       m.di == 0x0001FF00,
	   "0x12 request: DI and SEQ");
	{
		static const uint8_t data[9] = {0x00, 0xFF, 0x01, 0x00, 0x12,
		                                0x34, 0x56, 0x78, 0x02};
		uint8_t ctl = DLT645_FN_READ_FOLLOW | DLT645_CTRL_REPLY;

		n = dlt645_frame_encode(out, sizeof(out), 0, a, ctl, data, 9);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		is_int(dlt645_message_parse(&f, &m, &e), DLT645_OK,
		       "0x92 reply parses");
		ok(m.di == 0x0001FF00 && m.value_len == 4 && m.seq == 2 &&
		       m.value[0] == 0x12,
		   "0x92 reply: DI, 4 value bytes, SEQ last");
		is_int(m.value_offset, 14, "0x92 value starts at byte 14");
	}
	/* a read reply with a B1 follow-up flag */
	{
		static const uint8_t val[4] = {0x00, 0x00, 0x00, 0x00};

		n = dlt645_build_read_reply(out, sizeof(out), 0, a, 0x00010000, val, 4,
		                            true);
		is_int(out[8], 0xB1, "follow-up read reply has C = B1");
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		dlt645_message_parse(&f, &m, &e);
		ok(m.reply && m.follow_up && !m.abnormal, "B1: reply with follow-up");
	}
	/* a reply too short for its DI */
	{
		static const uint8_t data[2] = {0x00, 0x01};

		n = dlt645_frame_encode(out, sizeof(out), 0, a, 0x91, data, 2);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		is_int(dlt645_message_parse(&f, &m, &e), DLT645_E_DATA_LENGTH,
		       "a 91 reply with L = 2 is rejected");
		dlt645_error_detail(&e, text, sizeof(text));
		is_str(text,
		       "The data length L (byte 9) is 2; a normal reply frame needs "
		       "at least 4 data bytes.",
		       "... with a clear detail");
	}
	/* abnormal replies: L 1 or 2 */
	{
		static const uint8_t data[3] = {0x10, 0x01, 0x00};

		n = dlt645_frame_encode(out, sizeof(out), 0, a, 0xDC, data, 2);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		is_int(dlt645_message_parse(&f, &m, &e), DLT645_OK,
		       "a 2-byte control error word parses");
		ok(m.serr_len == 2 && m.serr == 0x0110, "... as 0x0110");
		is_str(dlt645_serr_bit_name(m.func, 2, 4), "invalid_time",
		       "... bit 4: invalid_time [SG]");
		is_str(dlt645_serr_bit_name(m.func, 2, 8), "restore_failed_tripped",
		       "... bit 8: restore_failed_tripped [SG]");
		n = dlt645_frame_encode(out, sizeof(out), 0, a, 0xD1, data, 3);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		is_int(dlt645_message_parse(&f, &m, &e), DLT645_E_DATA_LENGTH,
		       "an abnormal reply with 3 data bytes is rejected");
		n = dlt645_frame_encode(out, sizeof(out), 0, a, 0xD1, data, 0);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		is_int(dlt645_message_parse(&f, &m, &e), DLT645_E_DATA_LENGTH,
		       "an abnormal reply without SERR is rejected");
	}
	/* 0x1C with an impossible valid-until time */
	{
		dlt645_datetime bad = {2026, 2, 29, 12, 0, 0, DLT645_NO_WEEKDAY};
		uint8_t data[20] = {0};

		is_int(dlt645_build_control(out, sizeof(out), 0, a, pw_02, op_00, 0x1A,
		                            0, &bad),
		       -DLT645_E_DATETIME, "build_control refuses 2026-02-29");
		memcpy(data, pw_02, 4);
		memset(data + 4, 0, 4);
		data[8] = 0x1A;
		data[9] = 0;
		data[10] = 0x00; /* ss */
		data[11] = 0x00; /* mm */
		data[12] = 0x12; /* hh */
		data[13] = 0x29; /* DD */
		data[14] = 0x02; /* MM */
		data[15] = 0x26; /* YY */
		n = dlt645_frame_encode(out, sizeof(out), 0, a, 0x1C, data, 16);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		is_int(dlt645_message_parse(&f, &m, &e), DLT645_E_DATETIME,
		       "a 0x1C frame valid until 2026-02-29 is rejected");
		ok(e.offset == 23 && strcmp(e.what, "day") == 0 && e.got == 29,
		   "... at byte 23 (day 29)");
		dlt645_error_detail(&e, text, sizeof(text));
		is_str(text, "Byte 23 holds day 29, which is out of range.",
		       "... errdetail");
		data[14] = 0x13;
		n = dlt645_frame_encode(out, sizeof(out), 0, a, 0x1C, data, 16);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		dlt645_message_parse(&f, &m, &e);
		ok(e.code == DLT645_E_DATETIME && e.offset == 24 &&
		       strcmp(e.what, "month") == 0,
		   "month 13 is rejected at byte 24");
		data[14] = 0x1A;
		n = dlt645_frame_encode(out, sizeof(out), 0, a, 0x1C, data, 16);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		dlt645_message_parse(&f, &m, &e);
		ok(e.code == DLT645_E_BCD && e.offset == 24 && e.got == 0x1A,
		   "a non-BCD month byte is rejected at byte 24");
		/* 0x1C through the ESAM: PA 98, opaque ciphertext */
		data[0] = 0x98;
		n = dlt645_frame_encode(out, sizeof(out), 0, a, 0x1C, data, 16 + 4);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		is_int(dlt645_message_parse(&f, &m, &e), DLT645_OK,
		       "0x1C with PA 98 parses as the ESAM form");
		ok(m.fields == (DLT645_HAS_PASSWORD | DLT645_HAS_OPERATOR |
		                DLT645_HAS_VALUE) &&
		       m.value_len == 12,
		   "... password, operator and 12 opaque bytes");
		is_int(dlt645_message_encode(&m, 0, out + 100, sizeof(out) - 100), n,
		       "... and re-encodes to the same length");
		ok(memcmp(out, out + 100, (size_t) n) == 0, "... and the same bytes");
		is_int(dlt645_build_control(
		           out, sizeof(out), 0, a, (const uint8_t[4]){0x98, 0, 0, 0},
		           op_00, 0x1A, 0,
		           &(dlt645_datetime){2026, 1, 1, 0, 0, 0, DLT645_NO_WEEKDAY}),
		       -DLT645_E_ARGUMENT, "build_control refuses PA 98");
	}
	/* every function's layout round-trips through parse and encode */
	{
		static const uint8_t ctls[] = {
		    0x03, 0x83, 0x08, 0x11, 0x91, 0xB1, 0x12, 0x92, 0x13, 0x93,
		    0x14, 0x94, 0x15, 0x95, 0x16, 0x96, 0x17, 0x97, 0x18, 0x98,
		    0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x9D, 0xD1, 0xDC, 0x05};
		int good = 0;

		for (size_t i = 0; i < sizeof(ctls); i++)
		{
			dlt645_message w;
			uint8_t v[3] = {1, 2, 3};
			uint8_t again[DLT645_MAX_WIRE];

			dlt645_message_init(&w, a, ctls[i]);
			w.di = 0x04000401;
			w.seq = 7;
			w.byte = 0x20;
			w.n1 = 0x1B;
			w.time =
			    (dlt645_datetime){2026, 11, 25, 12, 0, 0, DLT645_NO_WEEKDAY};
			w.freeze = (dlt645_freeze){99, 1, 0, 0};
			memcpy(w.password, pw_02, 4);
			memcpy(w.new_password, "\x04\x12\x34\x56", 4);
			memcpy(w.data_address, a, 6);
			w.serr = 2;
			w.value = v;
			w.value_len = 3;
			n = dlt645_message_encode(&w, 2, out, sizeof(out));
			if (n > 0 && dlt645_frame_decode(out, (size_t) n, &f, &e) == 0 &&
			    dlt645_message_parse(&f, &m2, &e) == 0 &&
			    dlt645_message_encode(&m2, 2, again, sizeof(again)) == n &&
			    memcmp(out, again, (size_t) n) == 0)
				good++;
			else
				diag("layout of control %02X does not round-trip", ctls[i]);
		}
		is_int(good, (int) sizeof(ctls), "all %d function layouts round-trip",
		       (int) sizeof(ctls));
	}
	/* freeze kinds */
	{
		static const struct
		{
			dlt645_freeze f;
			const char *kind;
		} fk[] = {
		    {{99, 99, 99, 99}, "instant"}, {{99, 99, 99, 5}, "hourly"},
		    {{99, 99, 0, 0}, "daily"},     {{99, 1, 0, 0}, "monthly"},
		    {{11, 25, 12, 0}, "once"},     {{99, 1, 99, 0}, NULL},
		    {{13, 1, 0, 0}, NULL},         {{99, 99, 24, 0}, NULL},
		};

		for (size_t i = 0; i < sizeof(fk) / sizeof(fk[0]); i++)
			is_str(dlt645_freeze_kind(&fk[i].f), fk[i].kind,
			       "freeze %02u %02u %02u %02u is %s", fk[i].f.month,
			       fk[i].f.day, fk[i].f.hour, fk[i].f.minute,
			       fk[i].kind ? fk[i].kind : "invalid");
	}
	/* function names and control actions */
	is_str(dlt645_function_name(0x11), "read", "function 11 is read");
	is_str(dlt645_function_name(0x1C), "control", "function 1C is control");
	ok(dlt645_function_name(0x01) == NULL, "function 01 has no name");
	is_int(dlt645_control_code("trip"), 0x1A, "trip is 1A");
	is_int(dlt645_control_code("open"), 0x1A, "open is 1A too");
	is_int(dlt645_control_code("permit_close"), 0x1B, "permit_close is 1B");
	is_int(dlt645_control_code("close"), 0x1C, "close is 1C");
	is_int(dlt645_control_code("alarm_on"), 0x2A, "alarm_on is 2A");
	is_int(dlt645_control_code("alarm_off"), 0x2B, "alarm_off is 2B");
	is_int(dlt645_control_code("keep_power_on"), 0x3A, "keep_power_on is 3A");
	is_int(dlt645_control_code("keep_power_off"), 0x3B,
	       "keep_power_off is 3B");
	is_int(dlt645_control_code("explode"), -1, "unknown action is -1");
	is_str(dlt645_control_name(0x1A), "trip", "1A is named trip");
	is_str(dlt645_serr_bit_name(0x11, 1, 6), "too_many_tariffs",
	       "SERR bit 6 name");
	ok(dlt645_serr_bit_name(0x11, 1, 8) == NULL, "a 1-byte SERR has no bit 8");
	is_int(dlt645_build_ack(out, sizeof(out), 0, a, DLT645_FN_READ),
	       -DLT645_E_ARGUMENT, "no L = 0 ack for a read");
	is_int(dlt645_build_read(out, 10, 0, a, 0x00010000), -DLT645_E_BUFFER,
	       "a too small buffer is reported");
	is_int(dlt645_frame_encode(out, sizeof(out), 5, a, 0x11, NULL, 0),
	       -DLT645_E_ARGUMENT, "more than 4 FE bytes are refused");
}

/* ------------------------------------------------------------------------
 * Values, registry, helpers
 * ------------------------------------------------------------------------ */

static void
test_values(void)
{
	const dlt645_di_def *def;
	dlt645_value v[DLT645_MAX_VALUES];
	dlt645_error e;
	uint8_t b[64];
	char why[160];
	int n;

	is_int(dlt645_di_table_check(&dlt645_std_table, why, sizeof(why)),
	       DLT645_OK, "the standard table is sorted and consistent %s", why);
	{
		/* a broken table is caught */
		dlt645_di_def rows[2];
		dlt645_di_table t = {"broken", rows, 2, NULL};

		rows[0] = *dlt645_di_find(NULL, 0x00900200);
		rows[1] = *dlt645_di_find(NULL, 0x00900100);
		is_int(dlt645_di_table_check(&t, why, sizeof(why)), DLT645_E_ARGUMENT,
		       "rows out of order are caught");
		is_str(why, "row 1 (remaining_energy) is out of order", "... reason");
		rows[1] = rows[0];
		rows[1].di0_lo = 0x00;
		rows[1].di0_hi = 0x01;
		rows[0].di0_lo = rows[0].di0_hi = 0x00;
		rows[0].di1_lo = rows[0].di1_hi = 0x01;
		rows[1].di1_lo = 0x01;
		rows[1].di1_hi = 0x02;
		rows[1].di0_lo = 0x00;
		rows[0].di1_lo = rows[0].di1_hi = 0x00;
		rows[0].di1_hi = 0x01;
		is_int(dlt645_di_table_check(&t, why, sizeof(why)), DLT645_E_ARGUMENT,
		       "overlapping rows are caught (%s)", why);
	}
	/* every row's DI range is found and decodes what it encodes */
	{
		int bad = 0;
		int rows = 0;

		for (size_t i = 0; i < dlt645_std_table.n; i++)
		{
			const dlt645_di_def *d = &dlt645_std_table.defs[i];
			uint32_t dis[2] = {
			    (uint32_t) d->di3 << 24 | (uint32_t) d->di2 << 16 |
			        (uint32_t) d->di1_lo << 8 | d->di0_lo,
			    (uint32_t) d->di3 << 24 | (uint32_t) d->di2 << 16 |
			        (uint32_t) d->di1_hi << 8 | d->di0_hi};

			rows++;
			for (int k = 0; k < 2; k++)
			{
				dlt645_value in[3];
				dlt645_value out[3];
				uint8_t enc[64];
				int cnt = d->block ? (d->block < 3 ? d->block : 3) : 1;
				int len;

				if (dlt645_di_find(NULL, dis[k]) != d)
				{
					diag("%s not found", di_text(dis[k]));
					bad++;
					continue;
				}
				for (int j = 0; j < cnt; j++)
				{
					in[j] = dlt645_number(d->is_signed ? -7 : 7, 0);
					in[j].time = (dlt645_datetime){2026, 2, 28, 23, 59, 58, 6};
					memcpy(in[j].raw, "\x01\x72\x00\x72\x00\x00", 6);
					if (d->format == DLT645_FMT_BITS)
						in[j].num = 0x81;
				}
				len = dlt645_values_encode(d, in, cnt, enc, sizeof(enc));
				if (len != cnt * d->size ||
				    dlt645_values_decode(d, dis[k], enc, (size_t) len, out, 3,
				                         &e) != cnt)
				{
					diag("%s does not round-trip (%d)", di_text(dis[k]), len);
					bad++;
					continue;
				}
				for (int j = 0; j < cnt; j++)
				{
					int64_t want = 0;

					if (d->format == DLT645_FMT_NUMBER ||
					    d->format == DLT645_FMT_DEMAND)
						dlt645_rescale(in[j].num, 0, d->decimals, &want);
					else if (d->format == DLT645_FMT_BITS)
						want = 0x81;
					if (out[j].num != want)
					{
						diag("%s element %d: %lld", di_text(dis[k]), j,
						     (long long) out[j].num);
						bad++;
					}
				}
			}
		}
		ok(rows > 60, "the standard table has %d rows", rows);
		is_int(bad, 0, "every row's first and last DI round-trip");
	}
	/* names */
	is_str(di_name_text(0x00010300), "forward_active_t3", "00 01 03 00 name");
	is_str(di_name_text(0x00010201), "forward_active_t2_prev1",
	       "00 01 02 01 name");
	is_str(di_name_text(0x0001FF01), "forward_active_block_prev1",
	       "00 01 FF 01 name (month freeze block)");
	is_str(di_name_text(0x0001000C), "forward_active_total_prev12",
	       "00 01 00 0C name");
	ok(dlt645_di_find(NULL, 0x0001000D) == NULL,
	   "00 01 00 0D (13th previous) is not defined");
	is_str(di_name_text(0x00000000), "combined_active_total",
	       "00 00 00 00 name");
	is_str(di_name_text(0x00020400), "reverse_active_t4", "00 02 04 00 name");
	is_str(di_name_text(0x0201FF00), "voltage_block", "02 01 FF 00 name");
	is_str(di_name_text(0x02030000), "active_power_total", "02 03 00 00 name");
	is_str(di_name_text(0x02030300), "active_power_c", "02 03 03 00 name");
	is_str(di_name_text(0x02060000), "power_factor_total", "02 06 00 00 name");
	is_str(di_name_text(0x02800004), "active_demand", "02 80 00 04 name");
	is_str(di_name_text(0x04000101), "date", "04 00 01 01 name");
	is_str(di_name_text(0x04000102), "time", "04 00 01 02 name");
	is_str(di_name_text(0x04000401), "comm_address", "04 00 04 01 name");
	is_str(di_name_text(0x04000507), "status_word_7", "04 00 05 07 name");
	is_str(di_name_text(0x00900100), "remaining_energy", "00 90 01 00 name");
	is_str(di_name_text(0x00900101), "overdraft_energy", "00 90 01 01 name");
	is_str(di_name_text(0x04001005), "close_permit_amount_limit",
	       "04 00 10 05 name");
	is_str(di_name_text(0x04050104), "price_t4", "04 05 01 04 name");
	is_str(di_name_text(0x05060101), "daily_freeze_forward_active_block_prev1",
	       "05 06 01 01 name");
	ok(dlt645_di_find(NULL, 0x05060000) == NULL,
	   "05 06 00 00 (0th freeze) is not defined");
	def = dlt645_di_find(NULL, 0x04050101);
	is_str(key_text(def, 1, NULL), "price_t1_yuan_per_kwh", "price key");
	/* price XXXX.XXXX */
	hex("78 56 34 12", b);
	n = dlt645_values_decode(def, 0x04050101, b, 4, v, 1, &e);
	is_int(n, 1, "price decodes");
	is_str(value_text(def, &v[0]), "1234.5678", "price 1234.5678 yuan/kWh");
	/* power block with a negative phase */
	def = dlt645_di_find(NULL, 0x0203FF00);
	hex("00 50 01 00 50 81 00 00 00 00 00 00", b);
	n = dlt645_values_decode(def, 0x0203FF00, b, 12, v, 4, &e);
	if (is_int(n, 4, "active power block: 4 values"))
	{
		is_str(value_text(def, &v[0]), "1.5000", "total 1.5000 kW");
		is_str(value_text(def, &v[1]), "-1.5000", "phase A -1.5000 kW");
		is_str(key_text(def, v[1].sel, NULL), "active_power_a_kw",
		       "phase A key");
		is_str(key_text(def, v[3].sel, NULL), "active_power_c_kw",
		       "phase C key");
	}
	/* voltage block: a single-phase meter may send only phase A */
	def = dlt645_di_find(NULL, 0x0201FF00);
	hex("09 22", b);
	n = dlt645_values_decode(def, 0x0201FF00, b, 2, v, 4, &e);
	ok(n == 1 && v[0].sel == 1 && v[0].num == 2209,
	   "voltage block with only phase A: A = 220.9");
	n = dlt645_values_decode(def, 0x0201FF00, b, 1, v, 4, &e);
	is_int(n, -DLT645_E_VALUE_LENGTH, "a voltage block of 1 byte is rejected");
	ok(e.at_least && e.expected == 2 && e.limit == 3 && e.got == 1,
	   "... a multiple of 2 bytes, up to 3 values");
	/* status words block */
	def = dlt645_di_find(NULL, 0x040005FF);
	memset(b, 0, 14);
	b[4] = 0x10;
	b[5] = 0x10;
	n = dlt645_values_decode(def, 0x040005FF, b, 14, v, 7, &e);
	ok(n == 7 && v[2].sel == 3 && v[2].num == 0x1010,
	   "status block: word 3 = 0x1010 (relay open, keep power)");
	is_str(key_text(def, v[6].sel, NULL), "status_word_7", "word 7 key");
	/* date + weekday, time, date-weekday-time, settlement day */
	def = dlt645_di_find(NULL, 0x04000101);
	hex("02 24 11 26", b);
	n = dlt645_values_decode(def, 0x04000101, b, 4, v, 1, &e);
	ok(n == 1 && v[0].time.weekday == 2, "date 2026-11-24, weekday 2");
	is_str(value_text(def, &v[0]), "2026-11-24", "date text");
	is_int(dlt645_weekday(2026, 11, 24), 2, "2026-11-24 is a Tuesday");
	{
		dlt645_value d = dlt645_number(0, 0);
		uint8_t enc[4];

		d.time = (dlt645_datetime){2026, 11, 24, 0, 0, 0, DLT645_NO_WEEKDAY};
		is_int(dlt645_values_encode(def, &d, 1, enc, sizeof(enc)), 4,
		       "encoding a date without a weekday");
		is_str(tohex(enc, 4), "02 24 11 26", "... computes weekday 02");
		d.time.weekday = 7;
		is_int(dlt645_values_encode(def, &d, 1, enc, sizeof(enc)),
		       -DLT645_E_DATETIME, "weekday 7 is refused");
	}
	is_int(dlt645_weekday(2000, 1, 1), 6, "2000-01-01 is a Saturday");
	def = dlt645_di_find(NULL, 0x04000102);
	hex("05 30 21", b);
	dlt645_values_decode(def, 0x04000102, b, 3, v, 1, &e);
	is_str(value_text(def, &v[0]), "21:30:05", "time text");
	def = dlt645_di_find(NULL, 0x0400010C);
	hex("05 30 21 02 24 11 26", b);
	dlt645_values_decode(def, 0x0400010C, b, 7, v, 1, &e);
	is_str(value_text(def, &v[0]), "2026-11-24 21:30:05", "datetime text");
	def = dlt645_di_find(NULL, 0x04000B01);
	hex("00 01", b);
	dlt645_values_decode(def, 0x04000B01, b, 2, v, 1, &e);
	is_str(value_text(def, &v[0]), "01 00:00", "settlement day 1 at 00:00");
	/* absent and zero times */
	def = dlt645_di_find(NULL, 0x01010000);
	hex("00 00 00 00 00 00 00 00", b);
	n = dlt645_values_decode(def, 0x01010000, b, 8, v, 1, &e);
	ok(n == 1 && v[0].num == 0 && (v[0].flags & DLT645_VALUE_NO_TIME),
	   "max demand 0 with no time yet");
	memset(b, 0xFF, 8);
	n = dlt645_values_decode(def, 0x01010000, b, 8, v, 1, &e);
	ok(n == 1 && (v[0].flags & DLT645_VALUE_ABSENT), "all FF: absent");
	is_str(value_text(def, &v[0]), "", "absent has no text");
	{
		uint8_t enc[8];

		n = dlt645_values_encode(def, v, 1, enc, sizeof(enc));
		ok(n == 8 && memcmp(enc, b, 8) == 0, "absent encodes as FF");
	}
	/* errors with offsets through a message */
	{
		uint8_t a[6];
		uint8_t out[64];
		dlt645_frame f;
		dlt645_message m;
		char text[256];
		static const uint8_t val[4] = {0x12, 0x3A, 0x00, 0x00};

		parse_address("000072007201", a);
		n = dlt645_build_read_reply(out, sizeof(out), 0, a, 0x00010000, val, 4,
		                            false);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		dlt645_message_parse(&f, &m, &e);
		n = dlt645_message_values(&m, NULL, v, 4, &def, &e);
		is_int(n, -DLT645_E_BCD, "a non-BCD energy byte is rejected");
		ok(e.offset == 15 && e.got == 0x3A, "... at byte 15 (3A)");
		dlt645_error_detail(&e, text, sizeof(text));
		is_str(text,
		       "Byte 15 holds 3A after removing the 0x33 offset, which is not "
		       "two BCD digits.",
		       "... errdetail");
		n = dlt645_build_read_reply(out, sizeof(out), 0, a, 0x00010000, val, 3,
		                            false);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		dlt645_message_parse(&f, &m, &e);
		n = dlt645_message_values(&m, NULL, v, 4, &def, &e);
		is_int(n, -DLT645_E_VALUE_LENGTH, "3 bytes for a 4-byte DI");
		dlt645_error_detail(&e, text, sizeof(text));
		is_str(text,
		       "Data identifier 00010000 takes 4 bytes; the frame has 3 value "
		       "bytes from byte 14.",
		       "... errdetail");
		n = dlt645_build_read_reply(out, sizeof(out), 0, a, 0x028022FF, val, 3,
		                            false);
		dlt645_frame_decode(out, (size_t) n, &f, &e);
		dlt645_message_parse(&f, &m, &e);
		n = dlt645_message_values(&m, NULL, v, 4, &def, &e);
		ok(n == -DLT645_E_UNKNOWN_DI && e.offset == 10 && def == NULL,
		   "an unknown DI is reported at byte 10");
		dlt645_error_format(&e, text, sizeof(text));
		is_str(text, "unknown data identifier at byte 10: 028022FF",
		       "... log line");
	}
	/* encoding: precision, range, sign */
	def = dlt645_di_find(NULL, 0x00010000);
	{
		dlt645_value x = dlt645_number(1234567, 3); /* 1234.567 kWh */
		uint8_t enc[4];

		is_int(dlt645_values_encode(def, &x, 1, enc, 4), -DLT645_E_PRECISION,
		       "1234.567 kWh does not fit 2 decimals");
		x = dlt645_number(99999999, 2);
		is_int(dlt645_values_encode(def, &x, 1, enc, 4), 4,
		       "999999.99 kWh fits");
		x = dlt645_number(100000000, 2);
		is_int(dlt645_values_encode(def, &x, 1, enc, 4), -DLT645_E_RANGE,
		       "1000000.00 kWh does not");
		x = dlt645_number(-1, 2);
		is_int(dlt645_values_encode(def, &x, 1, enc, 4), -DLT645_E_RANGE,
		       "negative forward energy does not");
		is_int(dlt645_values_encode(def, &x, 1, enc, 3), -DLT645_E_BUFFER,
		       "a 3-byte buffer is too small");
		def = dlt645_di_find(NULL, 0x00000000);
		x = dlt645_number(-79999999, 2);
		is_int(dlt645_values_encode(def, &x, 1, enc, 4), 4,
		       "-799999.99 combined energy fits");
		is_str(tohex(enc, 4), "99 99 99 F9", "... as 99 99 99 F9");
		x = dlt645_number(80000000, 2);
		is_int(dlt645_values_encode(def, &x, 1, enc, 4), -DLT645_E_RANGE,
		       "800000.00 collides with the sign bit");
	}
	/* exact numbers */
	{
		char t[32];
		int64_t r = 0;

		dlt645_fixed_format(5, 3, t, sizeof(t));
		is_str(t, "0.005", "fixed 5e-3");
		dlt645_fixed_format(-5, 3, t, sizeof(t));
		is_str(t, "-0.005", "fixed -5e-3");
		dlt645_fixed_format(123, 0, t, sizeof(t));
		is_str(t, "123", "fixed 123");
		dlt645_fixed_format(INT64_MIN, 2, t, sizeof(t));
		is_str(t, "-92233720368547758.08", "fixed INT64_MIN");
		is_int(dlt645_fixed_format(11228026, 2, t, 5), 9,
		       "fixed_format returns the full length when truncated");
		is_str(t, "1122", "... and truncates like snprintf");
		is_int(dlt645_rescale(11228026, 2, 3, &r), DLT645_OK, "rescale up");
		is_int(r, 112280260, "... exact");
		is_int(dlt645_rescale(12340, 3, 2, &r), DLT645_OK, "rescale down");
		is_int(r, 1234, "... exact");
		is_int(dlt645_rescale(12345, 3, 2, &r), DLT645_E_PRECISION,
		       "rescale down with a digit lost");
		is_int(dlt645_rescale(INT64_MAX / 2, 0, 1, &r), DLT645_E_RANGE,
		       "rescale overflow");
	}
}

static void
test_addresses(void)
{
	uint8_t a[6];
	uint8_t mine[6];
	char t[13];
	dlt645_error e;

	is_int(dlt645_address_parse("000072007201", a, &e), DLT645_OK,
	       "parse 000072007201");
	is_str(tohex(a, 6), "01 72 00 72 00 00", "... low byte first");
	dlt645_address_format(a, t);
	is_str(t, "000072007201", "format gives the nameplate text back");
	ok(dlt645_address_is_bcd(a), "... which is BCD");
	is_int(dlt645_address_parse("3a2107000481", a, &e), DLT645_OK,
	       "lower-case hex accepted");
	dlt645_address_format(a, t);
	is_str(t, "3A2107000481", "non-BCD nibbles render as hex letters");
	is_int(dlt645_address_parse("00007200720", a, &e), DLT645_E_ADDRESS,
	       "11 digits rejected");
	is_int(e.offset, 11, "... at character 11");
	{
		char text[128];

		dlt645_error_detail(&e, text, sizeof(text));
		is_str(text,
		       "An address is 12 hex digits as on the nameplate; the text has "
		       "only 11.",
		       "... errdetail");
	}
	is_int(dlt645_address_parse("0000720072011", a, &e), DLT645_E_ADDRESS,
	       "13 digits rejected");
	is_int(dlt645_address_parse("00007200X201", a, &e), DLT645_E_ADDRESS,
	       "a non-hex character rejected");
	ok(e.offset == 8 && e.got == 'X', "... at character 8 ('X')");
	{
		char text[128];

		dlt645_error_detail(&e, text, sizeof(text));
		is_str(text,
		       "An address is 12 hex digits as on the nameplate; character 9 "
		       "('X') is not a hex digit.",
		       "... errdetail");
		dlt645_address_parse("0000720072011", a, &e);
		dlt645_error_detail(&e, text, sizeof(text));
		is_str(text,
		       "An address is 12 hex digits as on the nameplate; the text is "
		       "longer.",
		       "... errdetail of 13 digits");
	}
	dlt645_address_parse("AAAAAAAAAAAA", a, &e);
	ok(dlt645_address_is_wildcard(a) && !dlt645_address_is_bcd(a),
	   "AAAAAAAAAAAA is the wildcard");
	dlt645_address_parse("000072007201", mine, &e);
	ok(dlt645_address_matches(a, mine), "wildcard matches any meter");
	ok(dlt645_address_matches(dlt645_broadcast_address, mine),
	   "broadcast matches any meter");
	dlt645_address_parse("AAAA72007201", a, &e);
	ok(dlt645_address_matches(a, mine), "partial wildcard (high bytes AA)");
	dlt645_address_parse("000072007202", a, &e);
	ok(!dlt645_address_matches(a, mine), "another address does not match");
	{
		uint32_t di = 0;

		is_int(dlt645_di_parse("0001ff00", &di, &e), DLT645_OK,
		       "DI text parses");
		is_int(di, 0x0001FF00, "... DI3 first");
		is_int(dlt645_di_parse("0001FF0", &di, &e), DLT645_E_DI_TEXT,
		       "7 digits rejected");
		is_int(dlt645_di_parse("00 01 FF 00", &di, &e), DLT645_E_DI_TEXT,
		       "spaces rejected");
	}
	{
		dlt645_datetime t1 = {2028, 2, 29, 0, 0, 0, DLT645_NO_WEEKDAY};
		dlt645_datetime t2 = {2026, 2, 29, 0, 0, 0, DLT645_NO_WEEKDAY};
		dlt645_datetime t3 = {2100, 1, 1, 0, 0, 0, DLT645_NO_WEEKDAY};

		ok(dlt645_datetime_valid(&t1), "2028-02-29 is valid");
		ok(!dlt645_datetime_valid(&t2), "2026-02-29 is not");
		ok(!dlt645_datetime_valid(&t3), "2100 is out of the meter's range");
	}
}

/* The row containing di by a plain linear scan, or NULL. */
static const dlt645_di_def *
linear_find(uint32_t di)
{
	for (size_t i = 0; i < dlt645_std_table.n; i++)
	{
		const dlt645_di_def *d = &dlt645_std_table.defs[i];
		uint8_t d3 = (uint8_t) (di >> 24), d2 = (uint8_t) (di >> 16),
		        d1 = (uint8_t) (di >> 8), d0 = (uint8_t) di;

		if (d->di3 == d3 && d->di2 == d2 && d1 >= d->di1_lo &&
		    d1 <= d->di1_hi && d0 >= d->di0_lo && d0 <= d->di0_hi)
			return d;
	}
	return NULL;
}

static void
test_lookup(void)
{
	static const uint8_t d1s[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
	                              0x06, 0x07, 0x0B, 0x0C, 0x0F, 0x10,
	                              0x3F, 0x40, 0xFE, 0xFF};
	static const uint8_t d0s[] = {0x00, 0x01, 0x02, 0x03, 0x05, 0x07,
	                              0x08, 0x0A, 0x0C, 0x0D, 0x20, 0x3C,
	                              0x3D, 0x3E, 0x3F, 0xFF};
	long tried = 0;
	long wrong = 0;
	long found = 0;

	for (unsigned d3 = 0; d3 < 8; d3++)
		for (unsigned d2 = 0; d2 < 256; d2++)
			for (size_t i = 0; i < sizeof(d1s); i++)
				for (size_t j = 0; j < sizeof(d0s); j++)
				{
					uint32_t di =
					    d3 << 24 | d2 << 16 | (uint32_t) d1s[i] << 8 | d0s[j];
					const dlt645_di_def *want = linear_find(di);

					tried++;
					found += want != NULL;
					if (dlt645_di_find(NULL, di) != want)
					{
						if (wrong++ < 5)
							diag("lookup of %s differs", di_text(di));
					}
				}
	ok(found > 1000, "%ld of %ld DIs tried are defined", found, tried);
	is_int(wrong, 0, "the indexed lookup agrees with a linear scan");
}

/* A vendor table layered on the standard one. */
static const dlt645_di_def vendor_rows[] = {
    {0x00, 0x90, 0x02, 0x02, 0x20, 0x20, DLT645_SEL_NONE, DLT645_QUAL_NONE,
     DLT645_FMT_NUMBER, 4, 2, false, false, 0, 0, "remaining_free_amount",
     "yuan", "remaining free amount (PMC340)"},
    {0x04, 0x00, 0x05, 0x05, 0x0A, 0x0A, DLT645_SEL_NONE, DLT645_QUAL_NONE,
     DLT645_FMT_BITS, 1, 0, false, false, 0, 0, "relay_switch", "",
     "JoyMeter relay (0 close, 1 open)"},
};

static const dlt645_di_table vendor_table = {
    "test vendor", vendor_rows, sizeof(vendor_rows) / sizeof(vendor_rows[0]),
    &dlt645_std_table};

static void
test_vendor_table(void)
{
	char why[128];

	is_int(dlt645_di_table_check(&vendor_table, why, sizeof(why)), DLT645_OK,
	       "vendor table is consistent %s", why);
	ok(dlt645_di_find(&vendor_table, 0x00900220) == &vendor_rows[0],
	   "vendor DI 00 90 02 20 found in the vendor table");
	ok(dlt645_di_find(NULL, 0x00900220) == NULL,
	   "... and not in the standard one");
	ok(dlt645_di_find(&vendor_table, 0x00900200) ==
	       dlt645_di_find(NULL, 0x00900200),
	   "standard DIs fall through to the standard table");
	ok(dlt645_di_find(&vendor_table, 0x0400050A) == &vendor_rows[1],
	   "vendor relay DI found");
}

/* ------------------------------------------------------------------------
 * Stream parser
 * ------------------------------------------------------------------------ */

typedef struct collected
{
	int frames;
	int bad;
	char log[8192];
	size_t loglen;
	dlt645_stream s;
} collected;

/* Feeds bytes in chunks of the given sizes (cycled), recording events. */
static void
feed(collected *c, const uint8_t *b, size_t n, const size_t *chunks,
     size_t nchunks)
{
	size_t off = 0;
	size_t k = 0;

	while (off < n)
	{
		size_t len = chunks[k++ % nchunks];
		const uint8_t *p = b + off;
		dlt645_frame f;
		dlt645_error e;
		dlt645_event ev;

		if (len > n - off)
			len = n - off;
		off += len;
		while ((ev = dlt645_stream_next(&c->s, &p, &len, &f, &e)) !=
		       DLT645_NEED_MORE)
		{
			if (ev == DLT645_FRAME)
			{
				c->frames++;
				c->loglen += (size_t) snprintf(
				    c->log + c->loglen, sizeof(c->log) - c->loglen,
				    "F[%s %02X %u] ", addr_text(f.address), f.control, f.len);
			}
			else
			{
				c->bad++;
				c->loglen += (size_t) snprintf(c->log + c->loglen,
				                               sizeof(c->log) - c->loglen,
				                               "B[%d] ", (int) e.code);
			}
		}
		if (len != 0)
			diag("stream did not consume its input");
	}
}

static void
collect(collected *c, const uint8_t *b, size_t n, size_t chunk)
{
	memset(c, 0, sizeof(*c));
	dlt645_stream_init(&c->s);
	feed(c, b, n, &chunk, 1);
}

static void
test_stream(void)
{
	uint8_t buf[2048];
	size_t n;
	collected c;
	collected c2;

	ok(sizeof(dlt645_stream) <= 400, "stream state is %zu bytes",
	   sizeof(dlt645_stream));

	/* two frames in one read */
	n = hex("68 01 72 00 72 00 00 68 91 08 33 33 34 33 33 33 33 33 E7 16 "
	        "FE FE FE FE 68 00 51 44 18 11 17 68 91 06 35 33 B3 35 36 83 45 "
	        "16",
	        buf);
	collect(&c, buf, n, n);
	is_int(c.frames, 2, "two frames in one read");
	is_str(c.log, "F[000072007201 91 8] F[171118445100 91 6] ",
	       "... in order");
	is_int((long long) c.s.preamble, 4, "... 4 FE bytes skipped");
	is_int((long long) c.s.garbage, 0, "... no garbage");
	is_int((long long) dlt645_stream_pending(&c.s), 0, "... nothing pending");

	/* a frame split at every byte position */
	{
		int good = 0;

		n = hex("FE FE 68 01 72 00 72 00 00 68 91 08 33 35 C3 33 78 56 34 33 "
		        "E1 16",
		        buf);
		for (size_t k = 0; k <= n; k++)
		{
			dlt645_frame f;
			dlt645_error e;
			const uint8_t *p = buf;
			size_t len = k;
			int frames = 0;
			dlt645_event ev;

			memset(&c, 0, sizeof(c));
			dlt645_stream_init(&c.s);
			while ((ev = dlt645_stream_next(&c.s, &p, &len, &f, &e)) != 0)
				frames += ev == DLT645_FRAME;
			if (k > 2 && k < n && dlt645_stream_pending(&c.s) != k - 2)
				diag("split %zu: %zu pending", k, dlt645_stream_pending(&c.s));
			len = n - k;
			while ((ev = dlt645_stream_next(&c.s, &p, &len, &f, &e)) != 0)
			{
				frames += ev == DLT645_FRAME;
				if (ev == DLT645_FRAME &&
				    (f.len != 8 || f.data[4] != 0x45 || f.preamble != 2 ||
				     memcmp(f.raw, buf + 2, n - 2) != 0))
					frames += 100;
			}
			if (frames == 1)
				good++;
			else
				diag("split at %zu: %d frames", k, frames);
		}
		is_int(good, (int) n + 1, "a frame split at each of %zu positions",
		       n + 1);
	}

	/* garbage and FE before a frame */
	n = hex("00 12 16 68 01 02 FE FE 68 01 72 00 72 00 00 68 9C 00 51 16",
	        buf);
	collect(&c, buf, n, n);
	is_int(c.frames, 1, "garbage and FE before a frame");
	is_int((long long) c.s.garbage, 6, "... 6 garbage bytes counted");
	is_int((long long) c.s.preamble, 2, "... 2 FE bytes");

	/* bad checksum, then a good frame */
	n = hex("68 01 72 00 72 00 00 68 91 08 33 33 34 33 33 33 33 33 E8 16 "
	        "68 01 72 00 72 00 00 68 9C 00 51 16",
	        buf);
	{
		const uint8_t *p = buf;
		size_t len = n;
		dlt645_frame f;
		dlt645_error e;

		dlt645_stream_init(&c.s);
		is_int(dlt645_stream_next(&c.s, &p, &len, &f, &e), DLT645_BAD_FRAME,
		       "bad checksum: reported");
		ok(e.code == DLT645_E_CHECKSUM && e.offset == 18 && e.got == 0xE8 &&
		       e.expected == 0xE7,
		   "... as checksum mismatch at byte 18 of the candidate");
		ok(c.s.last_len == 20 && c.s.last[18] == 0xE8,
		   "... its bytes are in s.last");
		is_int(dlt645_stream_next(&c.s, &p, &len, &f, &e), DLT645_FRAME,
		       "... then the good frame");
		is_int(f.control, 0x9C, "... which is the 9C");
		is_int(dlt645_stream_next(&c.s, &p, &len, &f, &e), DLT645_NEED_MORE,
		       "... then nothing");
		is_int((long long) c.s.bad_checksum, 1, "... bad_checksum counted");
		/* the rest of the bad candidate is garbage (its 68 at +7 too) */
		is_int((long long) c.s.garbage, 19, "... 19 garbage bytes");
		is_int((long long) c.s.frames, 1, "... 1 frame");
	}

	/* bad end byte */
	n = hex(
	    "68 01 72 00 72 00 00 68 9C 00 51 17 68 01 72 00 72 00 00 68 9C 00 "
	    "51 16",
	    buf);
	collect(&c, buf, n, n);
	ok(c.frames == 1 && c.bad == 1 && c.s.bad_end == 1,
	   "bad end byte: counted, the next frame found");

	/* L = 200 and L = 255 */
	{
		uint8_t a[6] = {0x01, 0x72, 0x00, 0x72, 0x00, 0x00};
		uint8_t val[251];
		int len;

		for (size_t i = 0; i < sizeof(val); i++)
			val[i] = (uint8_t) (i * 7); /* includes 68 and 16 once scrambled */
		len = dlt645_build_read_reply(buf, sizeof(buf), 2, a, 0x04000401, val,
		                              196, false);
		is_int(len, 2 + 12 + 200, "an L = 200 reply is %d bytes", len);
		collect(&c, buf, (size_t) len, (size_t) len);
		ok(c.frames == 1 && strstr(c.log, "91 200]") != NULL,
		   "stream: L = 200 in one read");
		collect(&c, buf, (size_t) len, 7);
		ok(c.frames == 1 && c.s.garbage == 0,
		   "stream: L = 200 in 7-byte reads");
		len = dlt645_build_read_reply(buf, sizeof(buf), 4, a, 0x04000401, val,
		                              251, false);
		memcpy(buf + len, buf, (size_t) len); /* twice */
		collect(&c, buf, 2 * (size_t) len, 100);
		ok(c.frames == 2 && strstr(c.log, "91 255]") != NULL,
		   "stream: two L = 255 frames (the buffer's size) back to back");
	}

	/* a false 68 .. 68 with a large L does not hold up a real frame */
	n = hex("68 11 22 33 44 55 66 68 91 F0 "
	        "68 01 72 00 72 00 00 68 9C 00 51 16",
	        buf);
	collect(&c, buf, n, n);
	is_int(c.frames, 1, "a false start with L = F0 does not hide a frame");
	is_int((long long) dlt645_stream_pending(&c.s), 0,
	       "... and is dropped (nothing pending)");
	is_int((long long) c.s.garbage, 10, "... as 10 garbage bytes");
	/* a genuine partial frame is kept */
	n = hex("68 01 72 00 72 00 00 68 91 08 33 33 34", buf);
	collect(&c, buf, n, n);
	is_int((long long) dlt645_stream_pending(&c.s), 13,
	       "a partial frame stays pending (13 bytes)");

	/* chunking does not change the outcome */
	{
		int same = 0;
		int tries = 0;
		size_t total = 0;
		static const char *const parts[] = {
		    "00 68 68 16 FE",
		    "68 01 72 00 72 00 00 68 91 08 33 33 34 33 33 33 33 33 E8 16",
		    "FE FE 68 01 72 00 72 00 00 68 9C 00 51 16",
		    "68 11 22 33 44 55 66 68 91 F0 68 AA",
		    "68 AA AA AA AA AA AA 68 11 04 33 33 34 33 AE 16",
		    "68 01 72 00 72 00 00 68 9C 00 51 17",
		    "FE 68 01 72 00 72 00 00 68 D1 01 35 BC 16 99",
		};

		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			total += hex(parts[i], buf + total);
		collect(&c, buf, total, total);
		is_str(c.log,
		       "B[5] F[000072007201 9C 0] F[AAAAAAAAAAAA 11 4] B[6] "
		       "F[000072007201 D1 1] ",
		       "mixed stream in one read");
		for (size_t chunk = 1; chunk <= total; chunk++)
		{
			collect(&c2, buf, total, chunk);
			tries++;
			if (strcmp(c.log, c2.log) == 0 && c.s.garbage == c2.s.garbage &&
			    c.s.preamble == c2.s.preamble &&
			    c.s.bad_checksum == c2.s.bad_checksum &&
			    c.s.bad_end == c2.s.bad_end)
				same++;
			else
				diag("chunk %zu: %s", chunk, c2.log);
		}
		{
			static const size_t odd[] = {1, 3, 2, 17, 5, 40, 1, 1, 9};

			memset(&c2, 0, sizeof(c2));
			dlt645_stream_init(&c2.s);
			feed(&c2, buf, total, odd, sizeof(odd) / sizeof(odd[0]));
			tries++;
			if (strcmp(c.log, c2.log) == 0 && c.s.garbage == c2.s.garbage)
				same++;
		}
		is_int(same, tries, "same events and counters for %d chunkings",
		       tries);
	}
}

int
main(void)
{
	test_read_requests();
	test_number_replies();
	test_address_frames();
	test_vendor_frame();
	test_relay_frames();
	test_other_constructed();
	test_rejected_vectors();
	test_frame_errors();
	test_messages();
	test_values();
	test_addresses();
	test_vendor_table();
	test_lookup();
	test_stream();
	return done();
}
