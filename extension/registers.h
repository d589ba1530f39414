/*
 * registers.h
 *	  Meter energy registers: reading the per-rate register arrays of
 *	  readings and the step between two register values, with rollover at
 *	  the register's modulus. Shared by settlement and the rollups.
 */
#ifndef PREPAID_REGISTERS_H
#define PREPAID_REGISTERS_H

#include "postgres.h"

/*
 * The values of an int8[] of registers into out (at most
 * TOU_MAX_REGISTERS); returns how many, or 0 when an element is NULL
 * (incomplete registers: the caller prices from the total instead).
 */
extern int registers_read(Datum array, int64 *out);

/*
 * cur - prev in Wh; a register that wrapped at modulus (previous value in
 * the top 10 %, new one in the bottom 10 %, a step of at most 1 % of the
 * modulus) counts the step across the wrap; any other step backwards is
 * -1.
 */
extern int64 registers_delta(int64 prev, int64 cur, int64 modulus);

#endif /* PREPAID_REGISTERS_H */
