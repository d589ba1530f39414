/*
 * tou_calendar.h
 *	  Compiled time-of-use tariff calendars: a tariff's versions, seasons,
 *	  day types, holidays, day schedules and prices, loaded once per backend
 *	  into a compact structure and walked to split an interval into slices
 *	  of constant period and price.
 *
 * Units: time in PostgreSQL microseconds (TimestampTz), prices in micro-yuan
 * per kWh (int64), energy elsewhere in milli-Wh... see exact.h.
 */
#ifndef TOU_CALENDAR_H
#define TOU_CALENDAR_H

#include "postgres.h"
#include "datatype/timestamp.h"

#define TOU_NPERIODS      5 /* sharp, peak, flat, valley, deep */
#define TOU_MAX_REGISTERS 8
#define TOU_NO_PRICE      (-1)

typedef struct TouCalendar TouCalendar;

/* One piece of an interval: a period at a price, for usec microseconds. */
typedef struct TouSlice
{
	int16 period;  /* 0 .. TOU_NPERIODS-1 */
	int16 version; /* index of the tariff version */
	int64 price_u; /* micro-yuan per kWh */
	int64 usec;    /* time spent */
} TouSlice;

/* Growable list of slices, merged by (period, price). */
typedef struct TouSliceList
{
	int n;
	int cap;
	TouSlice *s;
	TouSlice inline_s[16];
} TouSliceList;

extern const char *const tou_period_names[TOU_NPERIODS];
extern int tou_period_from_name(const char *name);

/* Compiled calendar for a tariff, cached per backend; errors if unknown. */
extern TouCalendar *tou_calendar_get(int64 tariff_id);

/* Forget every compiled calendar (called on tariff changes). */
extern void tou_calendar_invalidate_all(void);

/*
 * Split [from, to) into slices; the list is reset first. Slices with the
 * same period and price are merged, so n stays small for any interval.
 */
extern void tou_calendar_slices(TouCalendar *cal, TimestampTz from,
                                TimestampTz to, TouSliceList *out);

/* Price of a period at an instant, or TOU_NO_PRICE. */
extern int64 tou_calendar_price_at(TouCalendar *cal, TimestampTz t,
                                   int period);

/* Period of each per-rate register of the version in force at t. */
extern int tou_calendar_registers(TouCalendar *cal, TimestampTz t,
                                  int16 *periods);

extern void tou_slices_init(TouSliceList *l);

#endif /* TOU_CALENDAR_H */
