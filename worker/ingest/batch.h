/*
 * batch.h
 *	  Readings on their way to PostgreSQL, exactly once: each reading is
 *	  appended to the open batch and to the spool (which makes it "taken");
 *	  a batch closes on size or age and is written by the writer session as
 *	  COPY into a temporary staging table plus prepaid.ingest_batch_write()
 *	  in one transaction, named (daemon, batch_no); the spool records the
 *	  commit. At start the spool's uncommitted batches are sent again
 *	  (ingest_batch makes a repeat a no-op).
 */
#ifndef INGEST_BATCH_H
#define INGEST_BATCH_H

#include "ingest.h"
#include "pgsess.h"

/* Opens the spool and takes over its uncommitted batches; batch numbers
 * continue after max(last_committed, the spool's). Exits on I/O errors. */
extern void batch_init(pgsess *writer, int64_t last_committed);

/* One rendered COPY line. */
extern void batch_add(const char *line, size_t len);

/* Writes the rows added this loop turn to the spool. */
extern void batch_spool_flush(void);

/* Closes the open batch when due; returns the next deadline. */
extern int64_t batch_timers(int64_t now);

/* Closes the open batch now (drain). */
extern void batch_close_open(void);

/* Readings spooled and not yet committed. */
extern long batch_buffered(void);

/* Everything committed. */
extern bool batch_drained(void);

extern void batch_on_ready(pgsess *writer);
extern void batch_shutdown(void);

#endif /* INGEST_BATCH_H */
