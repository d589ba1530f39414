/*
 * opts.h
 *	  Command-line options of prepaid-ingest (and --help).
 */
#ifndef INGEST_OPTS_H
#define INGEST_OPTS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum poll_mode
{
	POLL_ENERGY,
	POLL_FULL
} poll_mode;

typedef struct ingest_opts
{
	const char *listen_host; /* NULL = any */
	int port;
	const char *dsn; /* libpq conninfo; NULL = PG* environment */
	char name[64];   /* daemon name: claimed_by, ingest_batch.daemon */
	const char *spool_dir;
	bool spool_sync; /* fdatasync the spool when a batch closes */
	int batch_size;
	int batch_delay_ms;
	long max_buffer; /* readings buffered before polls are held back */
	poll_mode poll;
	int status_every; /* energy polls read status word 3 at least this often */
	int poll_window;  /* polls in progress at once at most */
	int64_t time_scale;
	int64_t time_start_us;       /* simulated start; 0 = now */
	const char *time_start_text; /* as given (T or T@W) */
	int request_timeout_ms;
	int ident_wait_ms;
	int idle_timeout_s;
	int command_poll_ms;
	int reload_interval_s;
	int stats_interval_s;
	int stats_port; /* 0 = off */
	int log_level;
	const char *replay_file;
	uint8_t password[4];
	uint8_t operator_code[4];
	long max_connections;
	const char *config_file; /* --config, re-read on SIGHUP */
} ingest_opts;

/* Fills *o from argv and the environment; exits on --help, --version and
 * on errors (status 0 / 2). */
extern void opts_parse(int argc, char **argv, ingest_opts *o);

/*
 * Reads a --config file ("name = value" lines). reload_only: only the
 * options SIGHUP may change, and errors return -1 instead of exiting.
 */
extern int opts_load_file(const char *path, ingest_opts *o, bool reload_only);

#endif /* INGEST_OPTS_H */
