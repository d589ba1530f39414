/*
 * dlt645.h
 *	  DL/T 645-2007 codec: frames, messages (the data field of each function
 *	  code), data identifiers with exact values, and a stream parser for TCP
 *	  byte streams. Plain C11: no PostgreSQL, no malloc, no floating point,
 *	  no global mutable state (reentrant and thread-safe). Compiled into the
 *	  extension (prepaid.dlt645_*), the ingest daemon, the simulator, the unit
 *	  tests, the fuzz target and the decode benchmark.
 *
 *	  Protocol reference: shared/dlt645.md. Design notes, the DI table and
 *	  how to add a vendor table: docs/dlt645.md.
 *
 *	  Layers (each usable on its own):
 *	    frame    dlt645_frame_decode / dlt645_frame_encode
 *	             [FE..] 68 A0..A5 68 C L data(+0x33) CS 16
 *	    message  dlt645_message_parse / dlt645_message_encode and the
 *	             dlt645_build_* helpers: the fields of each function code
 *	             (DI, SEQ, password, operator code, N1 N2, time, freeze time,
 *	             SERR, value bytes)
 *	    values   dlt645_di_find, dlt645_values_decode / dlt645_values_encode:
 *	             a table-driven DI registry and exact values (int64 plus a
 *	             number of decimals)
 *	    stream   dlt645_stream_next: push bytes in, pull frames out,
 *	             resynchronise after garbage and bad checksums
 *
 *	  Conventions
 *	  - Addresses are 6 bytes A0..A5 in wire order (low byte first). Their
 *	    text form is 12 characters, A5 first, as on the nameplate; nibbles
 *	    that are not BCD digits are written as hex letters (A..F).
 *	  - A DI is a uint32_t written as in the standard, DI3 first:
 *	    "00 01 FF 00" is 0x0001FF00. On the wire DI0 goes first.
 *	  - Every byte in a struct is plain (the 0x33 offset removed); encoders
 *	    add it.
 *	  - Functions that produce a length or a count return it (>= 0), or a
 *	    negative dlt645_status on failure. Functions without a natural count
 *	    return a dlt645_status. Decoders fill an optional dlt645_error with
 *	    the byte offset of the problem.
 *	  - Numbers are exact: value = num / 10^decimals. Never float.
 */
#ifndef DLT645_H
#define DLT645_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------
 * Frame layout
 * ------------------------------------------------------------------------ */

#define DLT645_ADDR_LEN      6
#define DLT645_MAX_DATA      255 /* L is one byte */
#define DLT645_HEADER_LEN    10  /* 68 A0..A5 68 C L */
#define DLT645_OVERHEAD      12  /* header + CS + 16 */
#define DLT645_MAX_FRAME     (DLT645_OVERHEAD + DLT645_MAX_DATA) /* 267 */
#define DLT645_MAX_PREAMBLE  4 /* FE bytes an encoder writes at most */
#define DLT645_MAX_WIRE      (DLT645_MAX_PREAMBLE + DLT645_MAX_FRAME) /* 271 */
#define DLT645_START         0x68
#define DLT645_END           0x16
#define DLT645_PREAMBLE_BYTE 0xFE
#define DLT645_SCRAMBLE      0x33

/* Control byte C */
#define DLT645_CTRL_REPLY     0x80 /* D7: 1 = meter -> master */
#define DLT645_CTRL_ABNORMAL  0x40 /* D6: abnormal reply (only with D7) */
#define DLT645_CTRL_FOLLOW_UP 0x20 /* D5: more frames follow */
#define DLT645_CTRL_FUNC_MASK 0x1F /* D4..D0: function code */

/* Function codes (C & DLT645_CTRL_FUNC_MASK) */
#define DLT645_FN_SECURITY      0x03 /* [SG] ESAM security authentication */
#define DLT645_FN_TIME_SYNC     0x08 /* broadcast time sync, no reply */
#define DLT645_FN_READ          0x11 /* replies 91, B1 (more), D1 */
#define DLT645_FN_READ_FOLLOW   0x12 /* read follow-up: 92, B2, D2 */
#define DLT645_FN_READ_ADDRESS  0x13 /* 93 */
#define DLT645_FN_WRITE         0x14 /* 94, D4 */
#define DLT645_FN_WRITE_ADDRESS 0x15 /* 95 */
#define DLT645_FN_FREEZE        0x16 /* 96, D6 */
#define DLT645_FN_BAUD_RATE     0x17 /* 97, D7 */
#define DLT645_FN_PASSWORD      0x18 /* 98, D8 */
#define DLT645_FN_DEMAND_CLEAR  0x19 /* 99, D9 */
#define DLT645_FN_METER_CLEAR   0x1A /* 9A, DA */
#define DLT645_FN_EVENT_CLEAR   0x1B /* 9B, DB */
#define DLT645_FN_CONTROL       0x1C /* relay / alarm / keep-power: 9C, DC */
#define DLT645_FN_OUTPUT        0x1D /* multi-function terminal output */

/* 0x1C control type N1 */
#define DLT645_N1_TRIP           0x1A /* open the relay (cut supply) */
#define DLT645_N1_PERMIT_CLOSE   0x1B /* the user may close the relay */
#define DLT645_N1_CLOSE          0x1C /* close the relay now */
#define DLT645_N1_TRIP_RESTORE_1 0x1D /* [SG] trip, restore after N2 x 5 min */
#define DLT645_N1_TRIP_RESTORE_2 0x1E /* [SG] same, second variant */
#define DLT645_N1_ALARM_ON       0x2A
#define DLT645_N1_ALARM_OFF      0x2B
#define DLT645_N1_KEEP_POWER_ON  0x3A /* 保电: ignore trips while set */
#define DLT645_N1_KEEP_POWER_OFF 0x3B

/* SERR bits of abnormal replies (1 byte, standard) */
#define DLT645_SERR_OTHER            0x01
#define DLT645_SERR_NO_DATA          0x02 /* DI unknown / not supported */
#define DLT645_SERR_UNAUTHORIZED     0x04 /* password wrong / unauthorised */
#define DLT645_SERR_BAUD_FIXED       0x08
#define DLT645_SERR_TOO_MANY_ZONES   0x10
#define DLT645_SERR_TOO_MANY_PERIODS 0x20
#define DLT645_SERR_TOO_MANY_TARIFFS 0x40

/* Status word 3 (04 00 05 03) bits used by the platform */
#define DLT645_SW3_RELAY_OPEN     (1u << 4) /* relay state: 1 open */
#define DLT645_SW3_RELAY_CMD_OPEN (1u << 6) /* relay command: 1 open */
#define DLT645_SW3_PRETRIP_ALARM  (1u << 7)
#define DLT645_SW3_KEEP_POWER     (1u << 12)

/* Some DIs used by the platform */
#define DLT645_DI_FORWARD_ACTIVE_TOTAL 0x00010000u
#define DLT645_DI_FORWARD_ACTIVE_BLOCK 0x0001FF00u
#define DLT645_DI_FORWARD_ACTIVE_PREV1 0x0001FF01u /* month freeze block */
#define DLT645_DI_VOLTAGE_BLOCK        0x0201FF00u
#define DLT645_DI_CURRENT_BLOCK        0x0202FF00u
#define DLT645_DI_ACTIVE_POWER_BLOCK   0x0203FF00u
#define DLT645_DI_POWER_FACTOR_TOTAL   0x02060000u
#define DLT645_DI_FREQUENCY            0x02800002u
#define DLT645_DI_ACTIVE_DEMAND        0x02800004u
#define DLT645_DI_MAX_DEMAND           0x01010000u
#define DLT645_DI_DATE                 0x04000101u
#define DLT645_DI_TIME                 0x04000102u
#define DLT645_DI_COMM_ADDRESS         0x04000401u
#define DLT645_DI_METER_NUMBER         0x04000402u
#define DLT645_DI_STATUS_WORD_3        0x04000503u
#define DLT645_DI_STATUS_BLOCK         0x040005FFu
#define DLT645_DI_DAILY_FREEZE_TIME    0x05060001u
#define DLT645_DI_DAILY_FREEZE_FWD     0x05060101u
#define DLT645_DI_REMAINING_ENERGY     0x00900100u
#define DLT645_DI_OVERDRAFT_ENERGY     0x00900101u
#define DLT645_DI_REMAINING_AMOUNT     0x00900200u
#define DLT645_DI_OVERDRAFT_AMOUNT     0x00900201u

/* ------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------ */

typedef enum dlt645_status
{
	DLT645_OK = 0,
	/* frame (link layer) */
	DLT645_E_EMPTY,     /* no bytes, or only FE preamble bytes */
	DLT645_E_START,     /* first byte after the preamble is not 68 */
	DLT645_E_TRUNCATED, /* fewer bytes than the header and L require */
	DLT645_E_START2,    /* byte 7 of the frame is not 68 */
	DLT645_E_CHECKSUM,  /* CS is not the sum of the bytes before it */
	DLT645_E_END,       /* the byte after CS is not 16 */
	DLT645_E_TRAILING,  /* bytes after the end byte */
	/* message (data field of a function code) */
	DLT645_E_DATA_LENGTH, /* L does not fit the function's layout */
	/* values */
	DLT645_E_UNKNOWN_DI,   /* no registry entry for the DI */
	DLT645_E_VALUE_LENGTH, /* value bytes do not fit the DI's format */
	DLT645_E_BCD,          /* a byte is not two BCD digits */
	DLT645_E_DATETIME,     /* a date/time field is out of range */
	/* encoding and text arguments */
	DLT645_E_RANGE,     /* a value does not fit its format */
	DLT645_E_PRECISION, /* a value has more decimals than its format */
	DLT645_E_BUFFER,    /* output buffer too small */
	DLT645_E_ADDRESS,   /* address text is not 12 hex digits */
	DLT645_E_DI_TEXT,   /* DI text is not 8 hex digits */
	DLT645_E_ARGUMENT,  /* another invalid argument */
	DLT645_STATUS_COUNT
} dlt645_status;

/*
 * Where and why decoding failed. Offsets count from the first byte of the
 * input given to the decoder (FE preamble bytes included); -1 when the
 * field does not apply. Meaning of expected/got per code:
 *   E_EMPTY        got = FE bytes seen
 *   E_START        expected 0x68, got = the byte at offset
 *   E_TRUNCATED    expected = bytes the frame needs from its first 68,
 *                  got = bytes present from it; offset = end of input
 *   E_START2       expected 0x68, got = the byte
 *   E_CHECKSUM     expected = sum of bytes start..offset-1 (mod 256),
 *                  got = the CS byte
 *   E_END          expected 0x16, got = the byte
 *   E_TRAILING     got = number of trailing bytes
 *   E_DATA_LENGTH  offset = the L byte; expected = the length the layout
 *                  needs (at_least: a minimum), got = L
 *   E_UNKNOWN_DI   offset = first DI byte; got = -1 (see di)
 *   E_VALUE_LENGTH offset = first value byte; expected = bytes per element
 *                  (at_least: a multiple of it, up to `limit` elements),
 *                  got = value bytes
 *   E_BCD          offset = the byte; got = its plain value (0x33 removed)
 *   E_DATETIME     offset = the byte; got = the decoded field; what = name
 *   E_ADDRESS, E_DI_TEXT  offset = character position; got = the char
 */
typedef struct dlt645_error
{
	dlt645_status code;
	int64_t offset;
	int64_t start;    /* offset of the frame's first 68, -1 if unknown */
	int32_t expected; /* see above; -1 if none */
	int32_t got;      /* see above; -1 if none */
	int32_t limit;    /* E_VALUE_LENGTH: most elements; else -1 */
	bool at_least;    /* expected is a minimum / a multiple */
	uint32_t di;      /* E_UNKNOWN_DI, E_VALUE_LENGTH: the DI */
	const char *what; /* field name ("month", "checksum", ...) or NULL */
} dlt645_error;

/* Short lower-case description of a status, e.g. "checksum mismatch". */
extern const char *dlt645_strerror(dlt645_status code);

/*
 * One line for logs, e.g.
 * "checksum mismatch at byte 14: expected AE, got AF". Returns its length
 * (truncated to cap - 1 like snprintf; cap 128 always suffices).
 */
extern int dlt645_error_format(const dlt645_error *err, char *buf, size_t cap);

/*
 * Full sentence(s) for an errdetail, e.g.
 * "Byte 14 is AF; the sum of bytes 0..13 is AE." (cap 256 always suffices).
 */
extern int dlt645_error_detail(const dlt645_error *err, char *buf, size_t cap);

/* ------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------ */

typedef struct dlt645_frame
{
	uint8_t address[DLT645_ADDR_LEN]; /* A0..A5 in wire order */
	uint8_t control;                  /* C */
	uint8_t len;                      /* L: bytes in data[] */
	uint8_t preamble;                 /* FE bytes skipped before the 68 (max
									   * 255 counted) */
	size_t offset;                    /* offset of the first 68 in the input
	                                   * (0 for frames from a stream) */
	const uint8_t *raw;               /* the frame on the wire, 68..16
									   * (12 + len bytes): in the caller's
									   * buffer, or the stream's (valid until
									   * the next call on the stream) */
	uint8_t data[DLT645_MAX_DATA];    /* data field, 0x33 removed */
} dlt645_frame;

/*
 * Decodes exactly one frame: any number of FE bytes, then 68 .. 16 and
 * nothing after it. Addresses are not validated (they need not be BCD).
 */
extern dlt645_status dlt645_frame_decode(const uint8_t *buf, size_t len,
                                         dlt645_frame *frame,
                                         dlt645_error *err);

/*
 * Writes `preamble` (0..4) FE bytes and a frame; data is plain (the 0x33
 * offset is added here). Returns the bytes written (preamble + 12 + len) or
 * -DLT645_E_BUFFER / -DLT645_E_ARGUMENT (len > 255, preamble > 4).
 */
extern int dlt645_frame_encode(uint8_t *out, size_t cap, unsigned preamble,
                               const uint8_t address[DLT645_ADDR_LEN],
                               uint8_t control, const uint8_t *data,
                               size_t len);

static inline uint8_t
dlt645_function(uint8_t control)
{
	return control & DLT645_CTRL_FUNC_MASK;
}

static inline bool
dlt645_is_reply(uint8_t control)
{
	return (control & DLT645_CTRL_REPLY) != 0;
}

/* Abnormal (error) reply: D7 and D6 set. */
static inline bool
dlt645_is_abnormal(uint8_t control)
{
	return (control & (DLT645_CTRL_REPLY | DLT645_CTRL_ABNORMAL)) ==
	       (DLT645_CTRL_REPLY | DLT645_CTRL_ABNORMAL);
}

/* Name of a function code ("read", "control", ...), or NULL if unknown. */
extern const char *dlt645_function_name(uint8_t func);

/* ------------------------------------------------------------------------
 * Dates and times (BCD fields of the wire; years 2000..2099)
 * ------------------------------------------------------------------------ */

#define DLT645_NO_WEEKDAY 0xFF

typedef struct dlt645_datetime
{
	uint16_t year;   /* 2000..2099 */
	uint8_t month;   /* 1..12 */
	uint8_t day;     /* 1..days in the month */
	uint8_t hour;    /* 0..23 */
	uint8_t minute;  /* 0..59 */
	uint8_t second;  /* 0..59 */
	uint8_t weekday; /* 0 = Sunday .. 6, or DLT645_NO_WEEKDAY */
} dlt645_datetime;

/* Fields checked: year, month, day (with leap years), hour, minute, second,
 * and weekday when it is not DLT645_NO_WEEKDAY. */
extern bool dlt645_datetime_valid(const dlt645_datetime *t);

/* Day of the week, 0 = Sunday, for a Gregorian date. */
extern int dlt645_weekday(unsigned year, unsigned month, unsigned day);

/*
 * Text of a date/time: parts is a combination of the flags below.
 * "2026-11-24 21:30:05" = DATE | HM | SECONDS. Returns the length.
 */
#define DLT645_DT_DATE    0x01 /* YYYY-MM-DD */
#define DLT645_DT_HM      0x02 /* hh:mm */
#define DLT645_DT_SECONDS 0x04 /* :ss (with HM) */
extern int dlt645_datetime_format(const dlt645_datetime *t, unsigned parts,
                                  char *buf, size_t cap);

/*
 * Freeze time of function 0x16, wire order mm hh DD MM. A field of
 * DLT645_FREEZE_ANY (99) is a wildcard; wildcards go from the month down:
 * month = 99 monthly at DD hh:mm; month = day = 99 daily at hh:mm;
 * month = day = hour = 99 hourly at :mm; all 99 instant freeze.
 */
#define DLT645_FREEZE_ANY 99

typedef struct dlt645_freeze
{
	uint8_t month;
	uint8_t day;
	uint8_t hour;
	uint8_t minute;
} dlt645_freeze;

/* "instant", "hourly", "daily", "monthly", "once", or NULL if invalid. */
extern const char *dlt645_freeze_kind(const dlt645_freeze *f);

/* ------------------------------------------------------------------------
 * Messages: the fields of each function code
 * ------------------------------------------------------------------------ */

/* Which fields of a dlt645_message are set (bit mask). */
#define DLT645_HAS_DI           0x0001 /* di */
#define DLT645_HAS_SEQ          0x0002 /* seq (0x12 / 0x92) */
#define DLT645_HAS_PASSWORD     0x0004 /* password PA P0 P1 P2 */
#define DLT645_HAS_OPERATOR     0x0008 /* operator_code C0..C3 */
#define DLT645_HAS_CONTROL      0x0010 /* n1, n2 (0x1C) */
#define DLT645_HAS_TIME         0x0020 /* time: 0x08 time, 0x1C valid-until */
#define DLT645_HAS_FREEZE       0x0040 /* freeze (0x16) */
#define DLT645_HAS_DATA_ADDRESS 0x0080 /* data_address (0x93 reply, 0x15) */
#define DLT645_HAS_BYTE         0x0100 /* byte: 0x17 Z, 0x1D output */
#define DLT645_HAS_NEW_PASSWORD 0x0200 /* new_password (0x18 / 0x98) */
#define DLT645_HAS_SERR         0x0400 /* serr, serr_len (abnormal) */
#define DLT645_HAS_VALUE        0x0800 /* value, value_len (may be 0) */

/*
 * A parsed frame. Field layouts per function (request | normal reply):
 *   0x03 security     DI value           | value
 *   0x08 time sync    time (ss mm hh DD MM YY) | (none: no reply)
 *   0x11 read         DI [value=params]  | DI value
 *   0x12 follow-up    DI SEQ             | DI value SEQ
 *   0x13 read address (none)             | data_address (the meter's)
 *   0x14 write        DI password operator value | (none)
 *   0x15 write addr.  data_address (new) | (none)
 *   0x16 freeze       freeze (mm hh DD MM) | (none)
 *   0x17 baud rate    byte (Z)           | byte
 *   0x18 password     DI password new_password | new_password
 *   0x19, 0x1A        password operator  | (none)
 *   0x1B event clear  password operator DI | (none)
 *   0x1C control      password operator N1 N2 time(valid-until) | (none)
 *                     (L != 16 with PA 98/99 [SG]: password operator value)
 *   0x1D output       byte               | byte
 *   abnormal reply    SERR (1 byte; 2 bytes accepted, low byte first)
 *   unknown function  value (all data)
 */
typedef struct dlt645_message
{
	uint8_t address[DLT645_ADDR_LEN]; /* frame address, wire order */
	uint8_t control;
	uint8_t func;    /* control & 0x1F */
	bool reply;      /* D7 */
	bool abnormal;   /* D7 and D6 */
	bool follow_up;  /* D5 */
	uint16_t fields; /* DLT645_HAS_* */
	uint32_t di;
	uint8_t seq;
	uint8_t n1;
	uint8_t n2;
	uint8_t byte;
	uint8_t password[4];      /* PA P0 P1 P2 in wire order */
	uint8_t operator_code[4]; /* C0 C1 C2 C3 in wire order */
	uint8_t new_password[4];
	uint8_t data_address[DLT645_ADDR_LEN];
	uint8_t serr_len; /* 1 or 2 */
	uint16_t serr;
	dlt645_datetime time;
	dlt645_freeze freeze;
	const uint8_t *value; /* plain bytes (into frame->data when parsed) */
	uint8_t value_len;
	int64_t value_offset; /* offset of value[0] in the decoder's input */
} dlt645_message;

/* Reads the fields of frame->data per the layout above. */
extern dlt645_status dlt645_message_parse(const dlt645_frame *frame,
                                          dlt645_message *msg,
                                          dlt645_error *err);

/*
 * Zeroes msg and sets address, control, func, reply, abnormal, follow_up
 * (serr_len 1). Fill the fields of the layout, then dlt645_message_encode.
 */
extern void dlt645_message_init(dlt645_message *msg,
                                const uint8_t address[DLT645_ADDR_LEN],
                                uint8_t control);

/*
 * Encodes a message as a frame with `preamble` FE bytes: writes the fields
 * of the layout of (func, direction), whatever msg->fields says; value is
 * written where the layout has one. Returns bytes written or a negative
 * status (E_BUFFER, E_DATETIME for an invalid time/freeze, E_ARGUMENT).
 * dlt645_message_parse of the result gives back the same fields.
 */
extern int dlt645_message_encode(const dlt645_message *msg, unsigned preamble,
                                 uint8_t *out, size_t cap);

/*
 * Builders. Each returns bytes written (preamble FE + frame) or a negative
 * status. `preamble` is 0..4; a master usually sends 4.
 */
/* 0x11 read: data = DI. */
extern int dlt645_build_read(uint8_t *out, size_t cap, unsigned preamble,
                             const uint8_t address[DLT645_ADDR_LEN],
                             uint32_t di);
/* 0x12 read follow-up: DI + SEQ. */
extern int dlt645_build_read_follow_up(uint8_t *out, size_t cap,
                                       unsigned preamble,
                                       const uint8_t address[DLT645_ADDR_LEN],
                                       uint32_t di, uint8_t seq);
/* 0x13 read address to AA AA AA AA AA AA. */
extern int dlt645_build_read_address(uint8_t *out, size_t cap,
                                     unsigned preamble);
/* 0x14 write: DI + password + operator code + value (plain bytes, e.g.
 * from dlt645_values_encode). */
extern int dlt645_build_write(uint8_t *out, size_t cap, unsigned preamble,
                              const uint8_t address[DLT645_ADDR_LEN],
                              uint32_t di, const uint8_t password[4],
                              const uint8_t operator_code[4],
                              const uint8_t *value, size_t value_len);
/* 0x08 broadcast time sync to 99 99 99 99 99 99 (meters do not reply). */
extern int dlt645_build_time_sync(uint8_t *out, size_t cap, unsigned preamble,
                                  const dlt645_datetime *t);
/* 0x16 freeze (use the broadcast address for all meters: no reply). */
extern int dlt645_build_freeze(uint8_t *out, size_t cap, unsigned preamble,
                               const uint8_t address[DLT645_ADDR_LEN],
                               const dlt645_freeze *when);
/* 0x1C relay / alarm / keep-power control: N1 = DLT645_N1_*, N2 = 0
 * normally, valid_until in the meter's local time. */
extern int dlt645_build_control(uint8_t *out, size_t cap, unsigned preamble,
                                const uint8_t address[DLT645_ADDR_LEN],
                                const uint8_t password[4],
                                const uint8_t operator_code[4], uint8_t n1,
                                uint8_t n2,
                                const dlt645_datetime *valid_until);
/* Reply to 0x11: 91 (B1 with follow_up) with DI + value bytes. */
extern int dlt645_build_read_reply(uint8_t *out, size_t cap, unsigned preamble,
                                   const uint8_t address[DLT645_ADDR_LEN],
                                   uint32_t di, const uint8_t *value,
                                   size_t value_len, bool follow_up);
/* Reply to 0x13: 93 with the address as data. */
extern int dlt645_build_address_reply(uint8_t *out, size_t cap,
                                      unsigned preamble,
                                      const uint8_t address[DLT645_ADDR_LEN]);
/* Normal reply without data (L = 0) to func: 94, 95, 96, 99, 9A, 9B, 9C. */
extern int dlt645_build_ack(uint8_t *out, size_t cap, unsigned preamble,
                            const uint8_t address[DLT645_ADDR_LEN],
                            uint8_t func);
/* Abnormal reply (C = func | 0xC0) with a 1-byte SERR. */
extern int dlt645_build_error_reply(uint8_t *out, size_t cap,
                                    unsigned preamble,
                                    const uint8_t address[DLT645_ADDR_LEN],
                                    uint8_t func, uint8_t serr);

/*
 * Names of the set bits of a SERR: the standard's 1-byte SERR for any
 * function ("other", "no_data", "unauthorized", "baud_rate_fixed",
 * "too_many_zones", "too_many_periods", "too_many_tariffs", "reserved");
 * for 2-byte error words the [SG] control (0x1C) and security (0x03)
 * words. NULL for a bit without a name.
 */
extern const char *dlt645_serr_bit_name(uint8_t func, unsigned serr_len,
                                        unsigned bit);

/*
 * 0x1C N1 by name and back: "trip" (alias "open"), "permit_close",
 * "close", "trip_restore_1", "trip_restore_2", "alarm_on", "alarm_off",
 * "keep_power_on", "keep_power_off". dlt645_control_code returns -1 for an
 * unknown name; dlt645_control_name NULL for an unknown code.
 */
extern int dlt645_control_code(const char *name);
extern const char *dlt645_control_name(uint8_t n1);

/* ------------------------------------------------------------------------
 * Data identifiers: the registry
 * ------------------------------------------------------------------------ */

typedef enum dlt645_format
{
	DLT645_FMT_NUMBER,         /* BCD, size bytes, decimals, sign bit */
	DLT645_FMT_DEMAND,         /* XX.XXXX (3 B) + YYMMDDhhmm (5 B) */
	DLT645_FMT_YYMMDDhhmm,     /* 5 B, wire mm hh DD MM YY */
	DLT645_FMT_YYMMDDWW,       /* 4 B, wire WW DD MM YY */
	DLT645_FMT_hhmmss,         /* 3 B, wire ss mm hh */
	DLT645_FMT_YYMMDDWWhhmmss, /* 7 B, wire ss mm hh WW DD MM YY */
	DLT645_FMT_DDhh,           /* 2 B, wire hh DD (settlement day) */
	DLT645_FMT_ADDRESS,        /* 6 B raw, A0 first (address, meter no.) */
	DLT645_FMT_BITS            /* 1 or 2 B binary bit field, low byte first */
} dlt645_format;

/* How an element's selector (tariff, phase, index) appears in names. */
typedef enum dlt645_qual
{
	DLT645_QUAL_NONE,   /* no selector */
	DLT645_QUAL_TARIFF, /* 0 "total", n "t<n>" */
	DLT645_QUAL_PHASE,  /* 0 "total", 1..3 "a", "b", "c" */
	DLT645_QUAL_INDEX   /* n "<n>" */
} dlt645_qual;

/* Which DI byte selects the element of a single-value DI. */
#define DLT645_SEL_NONE 0
#define DLT645_SEL_DI1  1
#define DLT645_SEL_DI0  2

/*
 * One registry row: a DI or a range of DIs with one layout. DI3 and DI2
 * are fixed; DI1 and DI0 range over [lo, hi]. Rows of a table are sorted by
 * (di3, di2, di1_lo, di0_lo) and do not overlap (dlt645_di_table_check).
 *
 * A single-value row describes one element whose selector is DI1 or DI0
 * (sel_byte) or none. A block row (block > 0) describes 1..block elements
 * of `size` bytes each (the count comes from the reply length), the first
 * with selector block_first. With hist set, DI0 is a history index: 0
 * current, n the n-th previous settlement day / freeze ("_prev<n>" in the
 * DI name).
 */
typedef struct dlt645_di_def
{
	uint8_t di3, di2;
	uint8_t di1_lo, di1_hi;
	uint8_t di0_lo, di0_hi;
	uint8_t sel_byte;    /* DLT645_SEL_* (single-value rows) */
	uint8_t qual;        /* dlt645_qual */
	uint8_t format;      /* dlt645_format */
	uint8_t size;        /* bytes per element */
	uint8_t decimals;    /* implied decimals (NUMBER, DEMAND) */
	bool is_signed;      /* sign bit = bit 7 of the last byte */
	bool hist;           /* DI0 is a history index */
	uint8_t block;       /* 0 single value, else most elements */
	uint8_t block_first; /* selector of a block's first element */
	const char *name;    /* snake_case base name, e.g. "forward_active" */
	const char *unit;    /* "kWh", "kW", "V", "A", "Hz", "yuan", ... or "" */
	const char *title;   /* English description */
} dlt645_di_def;

/*
 * A table of rows; `next` is searched when no row matches, so a vendor
 * table can override or extend the standard one (set next to
 * &dlt645_std_table).
 */
typedef struct dlt645_di_table
{
	const char *name;
	const dlt645_di_def *defs;
	size_t n;
	const struct dlt645_di_table *next;
} dlt645_di_table;

/* The standard F1/F15 set, documented in docs/dlt645.md. */
extern const dlt645_di_table dlt645_std_table;

/* The row describing di, or NULL. table NULL = dlt645_std_table. */
extern const dlt645_di_def *dlt645_di_find(const dlt645_di_table *table,
                                           uint32_t di);

/*
 * Checks a table's rows (sorted, no overlaps, consistent sizes/formats);
 * on failure writes the reason into why and returns DLT645_E_ARGUMENT.
 * Does not follow `next`.
 */
extern dlt645_status dlt645_di_table_check(const dlt645_di_table *table,
                                           char *why, size_t cap);

/* DI name, e.g. "forward_active_total", "forward_active_t2_prev1",
 * "voltage_block", "status_word_3". Returns its length. */
extern int dlt645_di_name(const dlt645_di_def *def, uint32_t di, char *buf,
                          size_t cap);

/* "8 hex digits" (DI3 first) <-> DI. */
extern dlt645_status dlt645_di_parse(const char *text, uint32_t *di,
                                     dlt645_error *err);
extern void dlt645_di_format(uint32_t di, char out[9]);

/* ------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------ */

#define DLT645_MAX_VALUES 64 /* most elements in one reply (1 + 63 tariffs) */

/* dlt645_value.flags */
/* element bytes all FF (BCD formats only): not supported, num 0 */
#define DLT645_VALUE_ABSENT 0x01
#define DLT645_VALUE_NO_TIME                                                  \
	0x02 /* date/time bytes all 00: never happened (DEMAND: the time only) */

/*
 * One decoded element. By format:
 *   NUMBER     num / 10^decimals (signed when the DI is)
 *   DEMAND     num / 10^decimals and time (minutes)
 *   date/time  time (fields of the format; weekday when it has one)
 *   DDhh       time.day, time.hour
 *   ADDRESS    raw[0..5] (A0 first)
 *   BITS       num (the bit field)
 */
typedef struct dlt645_value
{
	int64_t num;
	uint8_t decimals;
	uint8_t sel; /* tariff 0..63 (0 total), phase 0..3 (0 total), index */
	uint8_t flags;
	dlt645_datetime time;
	uint8_t raw[DLT645_ADDR_LEN];
} dlt645_value;

/*
 * Decodes the value bytes of di (described by def) into out[0..cap).
 * Returns the number of elements or a negative status with err (offsets
 * relative to data[0]): E_VALUE_LENGTH, E_BCD, E_DATETIME, E_BUFFER.
 */
extern int dlt645_values_decode(const dlt645_di_def *def, uint32_t di,
                                const uint8_t *data, size_t len,
                                dlt645_value *out, int cap, dlt645_error *err);

/*
 * The values of a parsed message (its DI and value bytes), looking the DI
 * up in table (NULL = standard); *def_out (may be NULL) gets the row.
 * Error offsets are relative to the decoder's input. E_UNKNOWN_DI when the
 * DI has no row, E_ARGUMENT when the message has no DI and value.
 */
extern int dlt645_message_values(const dlt645_message *msg,
                                 const dlt645_di_table *table,
                                 dlt645_value *out, int cap,
                                 const dlt645_di_def **def_out,
                                 dlt645_error *err);

/*
 * Encodes n elements for def (1 for a single-value row; 1..block for a
 * block). NUMBER/DEMAND values are rescaled exactly from their own
 * decimals to the format's (E_PRECISION if digits would be lost, E_RANGE
 * if too large or negative for an unsigned format); flags ABSENT and
 * NO_TIME write FF / 00 bytes. A weekday left as DLT645_NO_WEEKDAY in a
 * format that has one is computed from the date. Returns bytes written or a negative status.
 */
extern int dlt645_values_encode(const dlt645_di_def *def,
                                const dlt645_value *vals, int n, uint8_t *out,
                                size_t cap);

/* A NUMBER/DEMAND element of value num / 10^decimals. */
static inline dlt645_value
dlt645_number(int64_t num, unsigned decimals)
{
	dlt645_value v = {0};

	v.num = num;
	v.decimals = (uint8_t) decimals;
	v.time.weekday = DLT645_NO_WEEKDAY;
	return v;
}

/*
 * JSON-friendly key of an element: DI base name, selector and suffix, e.g.
 * "forward_active_total_kwh", "voltage_a_v", "status_word_3",
 * "price_t1_yuan_per_kwh". suffix NULL = the unit in lower case ("/" as
 * "_per_"); otherwise it replaces the unit ("at" gives
 * "max_demand_forward_active_total_at"; "" gives no suffix). Returns its
 * length.
 */
extern int dlt645_value_key(const dlt645_di_def *def, uint8_t sel,
                            const char *suffix, char *buf, size_t cap);

/*
 * Exact text of an element: "112280.26", "-1.234", "2026-11-20 14:15",
 * "2026-11-24" (YYMMDDWW), "21:30:05", "01 00:00" (DDhh), "000072007201"
 * (ADDRESS), "80" (BITS, decimal). Absent elements give "" (length 0);
 * DEMAND gives the number (the time separately with
 * dlt645_datetime_format). Returns the length.
 */
extern int dlt645_value_format(const dlt645_di_def *def, const dlt645_value *v,
                               char *buf, size_t cap);

/* Names of status-word bits (word 1..7), e.g. word 3 bit 4 "relay_open";
 * NULL for a bit without a name. */
extern const char *dlt645_status_bit_name(unsigned word, unsigned bit);

/*
 * Name of a bit of a BITS element of def with selector sel: the status
 * words (04 00 05 01..07 and the block), the baud-rate feature words
 * ("baud_600" .. "baud_19200"), the active combination word
 * ("forward_add", "forward_subtract", "reverse_add", "reverse_subtract").
 * NULL for other DIs and for bits without a name.
 */
extern const char *dlt645_bit_name(const dlt645_di_def *def, uint8_t sel,
                                   unsigned bit);

/* ------------------------------------------------------------------------
 * Exact numbers and BCD
 * ------------------------------------------------------------------------ */

/* "-14.12" from (-1412, 2). Returns the length (cap 24 always suffices). */
extern int dlt645_fixed_format(int64_t num, unsigned decimals, char *buf,
                               size_t cap);

/*
 * num / 10^from as a multiple of 10^-to, exactly: E_PRECISION if non-zero
 * digits would be dropped, E_RANGE on overflow. E.g. energy 0.01 kWh
 * (from 2) to Wh (to 3).
 */
extern dlt645_status dlt645_rescale(int64_t num, unsigned from, unsigned to,
                                    int64_t *out);

/* One BCD byte: 0..99, or -1 if a nibble is above 9. */
static inline int
dlt645_bcd_to_bin(uint8_t b)
{
	return ((b >> 4) > 9 || (b & 0x0F) > 9) ? -1 : (b >> 4) * 10 + (b & 0x0F);
}

/* 0..99 to one BCD byte. */
static inline uint8_t
dlt645_bin_to_bcd(unsigned v)
{
	return (uint8_t) (((v / 10) << 4) | (v % 10));
}

/*
 * n (1..9) BCD bytes, low byte first, to a number; with is_signed, bit 7
 * of the last byte is the sign. On E_BCD, *bad (may be NULL) is the index
 * of the offending byte.
 */
extern dlt645_status dlt645_bcd_decode(const uint8_t *bytes, size_t n,
                                       bool is_signed, int64_t *out,
                                       size_t *bad);

/* The inverse; E_RANGE if v does not fit (or is negative and !is_signed). */
extern dlt645_status dlt645_bcd_encode(int64_t v, size_t n, bool is_signed,
                                       uint8_t *out);

/* ------------------------------------------------------------------------
 * Addresses
 * ------------------------------------------------------------------------ */

extern const uint8_t dlt645_wildcard_address[DLT645_ADDR_LEN];  /* AA x 6 */
extern const uint8_t dlt645_broadcast_address[DLT645_ADDR_LEN]; /* 99 x 6 */

/*
 * 12 hex digits, A5 first ("000072007201", "AAAAAAAAAAAA") to wire order.
 * Any hex digit is accepted (use dlt645_address_is_bcd / _is_wildcard to
 * restrict). E_ADDRESS with err->offset = position of the bad character.
 */
extern dlt645_status dlt645_address_parse(const char *text,
                                          uint8_t address[DLT645_ADDR_LEN],
                                          dlt645_error *err);

/* Wire order to 12 characters + NUL, A5 first; non-BCD nibbles as A..F. */
extern void dlt645_address_format(const uint8_t address[DLT645_ADDR_LEN],
                                  char out[13]);

extern bool dlt645_address_is_bcd(const uint8_t address[DLT645_ADDR_LEN]);
extern bool dlt645_address_is_wildcard(const uint8_t address[DLT645_ADDR_LEN]);
extern bool
dlt645_address_is_broadcast(const uint8_t address[DLT645_ADDR_LEN]);

/*
 * Does a request sent to `target` address the meter `mine`? True when
 * target is the broadcast address or each byte equals mine's or is AA
 * (wildcard, also the standard's partial wildcard of high bytes).
 * Compares raw bytes.
 */
extern bool dlt645_address_matches(const uint8_t target[DLT645_ADDR_LEN],
                                   const uint8_t mine[DLT645_ADDR_LEN]);

/* ------------------------------------------------------------------------
 * Stream parser (one per TCP connection, ~320 bytes, no allocation)
 * ------------------------------------------------------------------------ */

typedef enum dlt645_event
{
	DLT645_NEED_MORE = 0, /* all input consumed; a partial frame is kept */
	DLT645_FRAME = 1,     /* *frame holds a frame with a good checksum */
	DLT645_BAD_FRAME = 2  /* a candidate frame was rejected: *err says why
						   * (offsets relative to s->last), s->last /
						   * s->last_len hold its bytes */
} dlt645_event;

typedef struct dlt645_stream
{
	/* counters (read them freely; dlt645_stream_init zeroes them) */
	uint64_t frames;       /* good frames returned */
	uint64_t bad_checksum; /* candidates rejected for their checksum */
	uint64_t bad_end;      /* candidates rejected for their end byte */
	uint64_t garbage;      /* bytes skipped outside frames (not FE) */
	uint64_t preamble;     /* FE bytes skipped */
	/* the last frame or rejected candidate, 68..16 (valid until the next
	 * call on this stream) */
	const uint8_t *last;
	uint16_t last_len;
	/* private */
	uint16_t head, tail; /* buffered bytes: buf[head..tail) */
	uint8_t fe_run;      /* FE bytes just before the current position */
	uint8_t buf[DLT645_MAX_FRAME];
} dlt645_stream;

extern void dlt645_stream_init(dlt645_stream *s);

/*
 * Push and pull in one call: takes bytes from *data / *len (advancing
 * them) and returns the next event. Call it in a loop until it returns
 * DLT645_NEED_MORE; then every input byte has been consumed (buffered or
 * skipped) and the caller's buffer may be reused. *data may be NULL when
 * *len is 0.
 *
 *	 const uint8_t *p = buf; size_t n = got;
 *	 while ((ev = dlt645_stream_next(&s, &p, &n, &frame, &err)) != 0)
 *		 ev == DLT645_FRAME ? handle(&frame) : count_bad(&err, s.last);
 *
 * Rules: FE bytes are skipped; a candidate starts at a 68 whose byte 7 is
 * also 68; its end comes from L (never from scanning for 16); a candidate
 * with a wrong CS or end byte is rejected (BAD_FRAME) and scanning resumes
 * at the byte after its first 68; other bytes are garbage. An incomplete
 * candidate is kept for the next call, unless a complete frame with a good
 * checksum lies wholly inside its span, in which case the candidate is
 * garbage (so a false 68 with a large L cannot hold up real frames). The
 * frames and counters do not depend on how the input is chunked.
 */
extern dlt645_event dlt645_stream_next(dlt645_stream *s, const uint8_t **data,
                                       size_t *len, dlt645_frame *frame,
                                       dlt645_error *err);

/* Bytes buffered (a partial candidate); 0 when between frames. */
extern size_t dlt645_stream_pending(const dlt645_stream *s);

#endif /* DLT645_H */
