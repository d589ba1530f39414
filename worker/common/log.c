/*
 * log.c
 *	  Levelled logging to stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "worker";
static int log_level = LOGL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_init(const char *prog, int level)
{
	log_prog = prog;
	log_level = level;
}

void
log_set_level(int level)
{
	if (level >= LOGL_ERROR && level <= LOGL_DEBUG)
		log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

int
log_parse_level(const char *name)
{
	for (int i = 0; i <= LOGL_DEBUG; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	if (strcasecmp(name, "warning") == 0)
		return LOGL_WARN;
	return -1;
}

const char *
log_level_name(int level)
{
	return (level >= 0 && level <= LOGL_DEBUG) ? level_names[level] : "?";
}

void
log_msg(int level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(
	    line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, log_prog, (int) getpid(), level_names[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t) n - 1, fmt, ap);
	va_end(ap);
	if (n > (int) sizeof(line) - 2)
		n = (int) sizeof(line) - 2;
	line[n++] = '\n';
	/* one write per line: lines of concurrent processes do not mix */
	if (write(STDERR_FILENO, line, (size_t) n) < 0)
		return;
}
