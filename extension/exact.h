/*
 * exact.h
 *	  Exact fixed-point conversions between numeric and int64, and the units
 *	  pg_prepaid computes in (never floating point):
 *	    energy   mWh-of-kWh: 1 unit = 1e-6 kWh (= 1 mWh)
 *	    price    micro-yuan per kWh: 1 unit = 1e-6 yuan/kWh
 *	    amount   pico-yuan: energy units x price units = 1e-12 yuan
 *	    money    fen (cents): 1 unit = 0.01 yuan = 1e10 pico-yuan
 */
#ifndef EXACT_H
#define EXACT_H

#include "postgres.h"
#include "utils/numeric.h"

#define PICO_PER_FEN  INT64CONST(10000000000)
#define UNITS_PER_KWH INT64CONST(1000000)
#define UNITS_PER_WH  INT64CONST(1000)

/*
 * numeric -> int64 scaled by 10^scale, exactly; ERROR (naming `what`) when
 * the value has more decimals than `scale`, is NaN/infinite, or overflows.
 */
extern int64 numeric_to_fixed(Numeric num, int scale, const char *what);

/* int64 scaled by 10^scale -> numeric with that many decimals. */
extern Numeric fixed_to_numeric(int64 value, int scale);

/* Writes value/10^scale as decimal text into buf (at least 32 bytes). */
extern void fixed_to_text(int64 value, int scale, char *buf);

/*
 * Split `total` over n weights (all >= 0, sum > 0) so the parts are whole
 * units and add up to exactly `total` (largest remainder; ties to the lower
 * index).
 */
extern void split_exact(int64 total, const int64 *weights, int n,
                        int64 *parts);

#endif /* EXACT_H */
