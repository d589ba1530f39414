/*
 * log.h
 *	  Levelled logging to stderr for the worker programs (prepaid-ingest,
 *	  prepaid-sim): one line per message, "<UTC time> <prog>[pid] LEVEL: text".
 *	  Single-threaded use; the level may change at any time (SIGHUP reload).
 */
#ifndef WORKER_LOG_H
#define WORKER_LOG_H

enum log_level
{
	LOGL_ERROR = 0,
	LOGL_WARN = 1,
	LOGL_INFO = 2,
	LOGL_DEBUG = 3
};

/* Program name printed in every line (a pointer to a constant string). */
extern void log_init(const char *prog, int level);
extern void log_set_level(int level);
extern int log_get_level(void);

/* "error", "warn"/"warning", "info", "debug" -> level; -1 if unknown. */
extern int log_parse_level(const char *name);
extern const char *log_level_name(int level);

extern void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...)                                                        \
	do                                                                        \
	{                                                                         \
		if (log_get_level() >= LOGL_DEBUG)                                    \
			log_msg(LOGL_DEBUG, __VA_ARGS__);                                 \
	} while (0)

#endif /* WORKER_LOG_H */
