/*
 * reading.h
 *	  One reading being assembled from a meter's read replies, and its
 *	  rendering as a line of COPY text for the staging table (columns in
 *	  READING_COPY_COLUMNS). Values stay exact: integers with the decimals of
 *	  their column; energy in Wh.
 */
#ifndef INGEST_READING_H
#define INGEST_READING_H

#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

/* reading.have */
#define R_ENERGY  0x0001
#define R_VOLTAGE 0x0002 /* some of volt[] (see volt_have) */
#define R_CURRENT 0x0004
#define R_POWER   0x0008
#define R_PF      0x0010
#define R_FREQ    0x0020
#define R_DEMAND  0x0040
#define R_SW3     0x0080
#define R_DATE    0x0100
#define R_TIME    0x0200

#define READING_MAX_RATES 8

typedef struct reading
{
	int64_t read_at; /* simulated UTC us */
	uint32_t have;
	uint8_t n_rates;
	uint8_t volt_have, cur_have, pw_have; /* bit i: element i present */
	int64_t energy_wh;
	int64_t rate_wh[READING_MAX_RATES];
	int64_t volt[3]; /* 0.1 V */
	int64_t cur[3];  /* 0.001 A */
	int64_t pw[4];   /* 0.0001 kW: total, A, B, C */
	int64_t pf;      /* 0.001 */
	int64_t freq;    /* 0.01 Hz */
	int64_t demand;  /* 0.0001 kW */
	int64_t sw3;
	dlt645_datetime clock; /* meter local date (R_DATE) and time (R_TIME) */
} reading;

/* Longest line reading_render writes. */
#define READING_LINE_MAX 640

/* Columns of the staging table, in COPY order. */
extern const char READING_COPY_COLUMNS[];
/* CREATE TEMP TABLE statement of the staging table. */
extern const char READING_STAGE_DDL[];

/*
 * Takes the values of a normal read reply into r (DIs of the poll table;
 * others are ignored). Returns 0, or -1 when the values cannot be decoded
 * (counted by the caller).
 */
extern int reading_apply(reading *r, const meter *m,
                         const dlt645_message *msg);

/* One COPY text line (with its newline); returns its length. */
extern size_t reading_render(const reading *r, const meter *m, char *buf);

#endif /* INGEST_READING_H */
