/*
 * tap.h
 *	  A minimal Test Anything Protocol producer for the C unit tests, so
 *	  that prove(1) reports them with the other suites:
 *
 *	    plan(n);                      or no plan and done() prints it
 *	    ok(cond, "name %d", x);
 *	    is_int(got, expected, "name");
 *	    is_str(got, expected, "name");
 *	    diag("note");
 *	    return done();                exit status 1 if anything failed
 *
 *	  Header-only; include it from exactly one file per test program.
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_run = 0;
static int tap_failed = 0;
static int tap_planned = -1;

static inline void
plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
}

static inline void diag(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static inline void
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline int
tap_vok(int cond, const char *fmt, va_list ap)
{
	tap_run++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_run);
	vprintf(fmt, ap);
	printf("\n");
	return cond;
}

static inline int ok(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline int
ok(int cond, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = tap_vok(cond, fmt, ap);
	va_end(ap);
	return r;
}

static inline int is_int(long long got, long long expected, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

static inline int
is_int(long long got, long long expected, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = tap_vok(got == expected, fmt, ap);
	va_end(ap);
	if (!r)
		diag("     got: %lld\n#     expected: %lld", got, expected);
	return r;
}

static inline int is_str(const char *got, const char *expected,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline int
is_str(const char *got, const char *expected, const char *fmt, ...)
{
	va_list ap;
	int r;
	int same = (got == NULL || expected == NULL) ? got == expected
	                                             : strcmp(got, expected) == 0;

	va_start(ap, fmt);
	r = tap_vok(same, fmt, ap);
	va_end(ap);
	if (!r)
		diag("     got: '%s'\n#     expected: '%s'", got ? got : "(null)",
		     expected ? expected : "(null)");
	return r;
}

/* Prints the plan if none was given; the exit status for main. */
static inline int
done(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_run);
	else if (tap_planned != tap_run)
	{
		diag("planned %d tests but ran %d", tap_planned, tap_run);
		return 1;
	}
	if (tap_failed > 0)
		diag("failed %d of %d tests", tap_failed, tap_run);
	return tap_failed > 0 ? 1 : 0;
}

#endif /* TAP_H */
