/*
 * fuzz_dlt645.c
 *	  libFuzzer target for the DL/T 645 codec (codec/dlt645.c). Built by
 *	  `make fuzz` with -fsanitize=fuzzer,address,undefined and run by
 *	  scripts/test.sh over tests/fuzz/seeds (the worked frames).
 *
 *	  Besides "no crash, no sanitizer report" it checks invariants, and
 *	  aborts when one fails:
 *	  - the stream parser gives the same events and counters whether the
 *	    input arrives in one piece or in pseudo-random chunks;
 *	  - every frame it yields, and the input when it is one whole frame,
 *	    re-encodes to the same bytes (frame and message layers);
 *	  - decoded values re-encode and decode to the same values, for the
 *	    frame's DI and for every DI of the registry applied to the input;
 *	  - text helpers never write past their buffers and report lengths
 *	    consistently.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dlt645.h"

#define CHECK(cond)                                                           \
	do                                                                        \
	{                                                                         \
		if (!(cond))                                                          \
			__builtin_trap();                                                 \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t
mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
	return h;
}

static bool
same_value(const dlt645_value *a, const dlt645_value *b)
{
	return a->num == b->num && a->decimals == b->decimals &&
	       a->sel == b->sel && a->flags == b->flags &&
	       memcmp(&a->time, &b->time, sizeof(a->time)) == 0 &&
	       memcmp(a->raw, b->raw, sizeof(a->raw)) == 0;
}

/* Formats every value and key, and checks encode/decode agree. */
static void
check_values(const dlt645_di_def *def, uint32_t di, const uint8_t *bytes,
             size_t len)
{
	dlt645_value v[DLT645_MAX_VALUES];
	dlt645_value w[DLT645_MAX_VALUES];
	uint8_t enc[DLT645_MAX_DATA];
	dlt645_error err;
	char text[64];
	int n =
	    dlt645_values_decode(def, di, bytes, len, v, DLT645_MAX_VALUES, &err);
	int m;

	if (n < 0)
	{
		char line[128];

		CHECK(err.code == (dlt645_status) -n);
		CHECK(err.offset <= (int64_t) len);
		CHECK(dlt645_error_format(&err, line, sizeof(line)) <
		      (int) sizeof(line));
		CHECK(dlt645_error_detail(&err, line, sizeof(line)) <
		      (int) sizeof(line));
		return;
	}
	for (int i = 0; i < n; i++)
	{
		CHECK(dlt645_value_format(def, &v[i], text, sizeof(text)) <
		      (int) sizeof(text));
		CHECK(dlt645_value_key(def, v[i].sel, NULL, text, sizeof(text)) <
		      (int) sizeof(text));
	}
	m = dlt645_values_encode(def, v, n, enc, sizeof(enc));
	CHECK(m == n * def->size);
	CHECK(dlt645_values_decode(def, di, enc, (size_t) m, w, DLT645_MAX_VALUES,
	                           &err) == n);
	for (int i = 0; i < n; i++)
		CHECK(same_value(&v[i], &w[i]));
}

/* Checks one decoded frame; returns a digest of it. */
static uint64_t
check_frame(const dlt645_frame *f)
{
	uint8_t out[DLT645_MAX_WIRE];
	dlt645_message msg;
	dlt645_error err;
	char text[256];
	int n;

	/* the frame layer is canonical */
	n = dlt645_frame_encode(out, sizeof(out), 0, f->address, f->control,
	                        f->data, f->len);
	CHECK(n == DLT645_OVERHEAD + f->len);
	CHECK(memcmp(out, f->raw, (size_t) n) == 0);
	dlt645_address_format(f->address, text);
	CHECK(strlen(text) == 12);

	if (dlt645_message_parse(f, &msg, &err) == DLT645_OK)
	{
		/* so is the message layer */
		n = dlt645_message_encode(&msg, 0, out, sizeof(out));
		CHECK(n == DLT645_OVERHEAD + f->len);
		CHECK(memcmp(out, f->raw, (size_t) n) == 0);
		if ((msg.fields & DLT645_HAS_DI) && (msg.fields & DLT645_HAS_VALUE))
		{
			const dlt645_di_def *def = dlt645_di_find(NULL, msg.di);

			CHECK(dlt645_di_name(def, msg.di, text, sizeof(text)) <
			      (int) sizeof(text));
			if (def != NULL)
				check_values(def, msg.di, msg.value, msg.value_len);
		}
		if (msg.fields & DLT645_HAS_SERR)
			for (unsigned bit = 0; bit < 16; bit++)
				(void) dlt645_serr_bit_name(msg.func, msg.serr_len, bit);
		if (msg.fields & DLT645_HAS_FREEZE)
			CHECK(dlt645_freeze_kind(&msg.freeze) != NULL);
		if (msg.fields & DLT645_HAS_TIME)
			CHECK(dlt645_datetime_valid(&msg.time));
	}
	else
	{
		CHECK(err.offset >= 0 && err.offset < DLT645_OVERHEAD + f->len);
		CHECK(dlt645_error_detail(&err, text, sizeof(text)) <
		      (int) sizeof(text));
	}
	return mix(mix(f->control, f->len), f->raw[DLT645_HEADER_LEN + f->len]);
}

typedef struct run
{
	uint64_t digest;
	dlt645_stream s;
} run;

/* Runs the stream parser over data in chunks from a PRNG (0 = one piece). */
static void
stream_run(run *r, const uint8_t *data, size_t size, uint64_t seed)
{
	size_t off = 0;

	r->digest = 0;
	dlt645_stream_init(&r->s);
	while (off < size)
	{
		size_t len = size - off;
		const uint8_t *p = data + off;
		dlt645_frame f;
		dlt645_error err;
		dlt645_event ev;

		if (seed != 0)
		{
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			len = 1 + (size_t) ((seed >> 33) % 64);
			if (len > size - off)
				len = size - off;
		}
		off += len;
		while ((ev = dlt645_stream_next(&r->s, &p, &len, &f, &err)) !=
		       DLT645_NEED_MORE)
		{
			if (ev == DLT645_FRAME)
				r->digest = mix(r->digest, check_frame(&f));
			else
			{
				CHECK(err.code == DLT645_E_CHECKSUM ||
				      err.code == DLT645_E_END);
				CHECK(r->s.last_len >= DLT645_OVERHEAD);
				r->digest = mix(r->digest, 1000 + err.code);
			}
		}
		CHECK(len == 0);
		CHECK(dlt645_stream_pending(&r->s) < DLT645_MAX_FRAME);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static run whole;
	static run chunked;
	uint64_t seed = 1;
	dlt645_frame f;
	dlt645_error err;

	/* strict decoding of the whole input */
	if (dlt645_frame_decode(data, size, &f, &err) == DLT645_OK)
	{
		check_frame(&f);
		CHECK(f.offset + DLT645_OVERHEAD + f.len == size);
	}
	else
	{
		char line[256];

		CHECK(err.offset <= (int64_t) size);
		CHECK(dlt645_error_format(&err, line, sizeof(line)) <
		      (int) sizeof(line));
		CHECK(dlt645_error_detail(&err, line, sizeof(line)) <
		      (int) sizeof(line));
	}

	/* the stream parser, whole and chunked, must agree */
	for (size_t i = 0; i < size; i++)
		seed = mix(seed, data[i]);
	stream_run(&whole, data, size, 0);
	stream_run(&chunked, data, size, seed | 1);
	CHECK(whole.digest == chunked.digest);
	CHECK(whole.s.frames == chunked.s.frames);
	CHECK(whole.s.bad_checksum == chunked.s.bad_checksum);
	CHECK(whole.s.bad_end == chunked.s.bad_end);
	CHECK(whole.s.garbage == chunked.s.garbage);
	CHECK(whole.s.preamble == chunked.s.preamble);

	/* every DI of the registry over the raw input */
	if (size <= DLT645_MAX_DATA)
		for (size_t i = 0; i < dlt645_std_table.n; i++)
		{
			const dlt645_di_def *d = &dlt645_std_table.defs[i];
			uint32_t di = (uint32_t) d->di3 << 24 | (uint32_t) d->di2 << 16 |
			              (uint32_t) d->di1_hi << 8 | d->di0_lo;

			check_values(d, di, data, size);
		}

	/* the standard table's indexed lookup agrees with a linear scan */
	if (size >= 4)
	{
		uint32_t di = (uint32_t) data[0] << 24 | (uint32_t) data[1] << 16 |
		              (uint32_t) data[2] << 8 | data[3];
		const dlt645_di_def *want = NULL;

		for (size_t i = 0; i < dlt645_std_table.n && want == NULL; i++)
		{
			const dlt645_di_def *d = &dlt645_std_table.defs[i];

			if (d->di3 == data[0] && d->di2 == data[1] &&
			    data[2] >= d->di1_lo && data[2] <= d->di1_hi &&
			    data[3] >= d->di0_lo && data[3] <= d->di0_hi)
				want = d;
		}
		CHECK(dlt645_di_find(NULL, di) == want);
	}

	/* text parsers */
	if (size < 32)
	{
		char text[33];
		uint8_t addr[DLT645_ADDR_LEN];
		uint32_t di;

		memcpy(text, data, size);
		text[size] = '\0';
		if (dlt645_address_parse(text, addr, &err) == DLT645_OK)
		{
			char back[13];

			dlt645_address_format(addr, back);
			CHECK(strlen(text) == 12);
		}
		if (dlt645_di_parse(text, &di, &err) == DLT645_OK)
			CHECK(strlen(text) == 8);
	}
	return 0;
}
