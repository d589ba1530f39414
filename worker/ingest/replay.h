/*
 * replay.h
 *	  --replay FILE: backfill from recorded frames. Each line is
 *	  "<ISO time> <hex frame>"; the read replies of one meter with the same
 *	  time form one reading stamped with that time, written through the
 *	  normal batch path (spool, exactly once).
 */
#ifndef INGEST_REPLAY_H
#define INGEST_REPLAY_H

/* Reads the whole file into batches; returns the readings, -1 on error. */
extern long replay_file(const char *path);

#endif /* INGEST_REPLAY_H */
