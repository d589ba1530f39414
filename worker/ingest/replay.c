/*
 * replay.c
 *	  Backfill from a file of frames (see replay.h).
 */
#include "replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "hex.h"
#include "ingest.h"
#include "log.h"
#include "meters.h"
#include "reading.h"

typedef struct pending
{
	reading r;
	bool used;
} pending;

static pending *acc; /* by meter index */

static long
flush_meter(const meter *m)
{
	pending *p = &acc[m->index];
	char line[READING_LINE_MAX];

	if (!p->used)
		return 0;
	p->used = false;
	if (!(p->r.have & R_ENERGY))
		return 0;
	batch_add(line, reading_render(&p->r, m, line));
	G.stats.readings_taken++;
	return 1;
}

/* One line; returns readings completed (0/1), -1 for a bad line. */
static long
replay_line(char *line, long lineno)
{
	char *sp = strchr(line, ' ');
	uint8_t bytes[DLT645_MAX_WIRE + 16];
	dlt645_frame f;
	dlt645_message msg;
	dlt645_error err;
	int64_t at;
	meter *m;
	pending *p;
	long done = 0;
	int n;

	if (sp == NULL)
		return -1;
	*sp = '\0';
	if (simclock_parse_start(line, &at) != 0)
	{
		log_warn("replay line %ld: bad time \"%s\"", lineno, line);
		return -1;
	}
	n = hex_decode(sp + 1, bytes, sizeof(bytes));
	if (n <= 0 ||
	    dlt645_frame_decode(bytes, (size_t) n, &f, &err) != DLT645_OK ||
	    dlt645_message_parse(&f, &msg, &err) != DLT645_OK)
	{
		G.stats.rejected_bad_frame++;
		log_warn("replay line %ld: not a valid frame", lineno);
		return -1;
	}
	G.stats.frames_in++;
	if (!msg.reply || msg.abnormal || msg.func != DLT645_FN_READ)
		return 0; /* requests and other replies carry no reading */
	m = meters_by_addr(f.address);
	if (m == NULL)
	{
		G.stats.rejected_unknown_meter++;
		return 0;
	}
	p = &acc[m->index];
	if (p->used && p->r.read_at != at)
		done = flush_meter(m);
	if (!p->used)
	{
		memset(&p->r, 0, sizeof(p->r));
		p->r.read_at = at;
		p->used = true;
	}
	if (reading_apply(&p->r, m, &msg) != 0)
		G.stats.rejected_value++;
	return done;
}

long
replay_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0, readings = 0;

	if (f == NULL)
	{
		log_error("--replay: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	acc = calloc(n_meters ? n_meters : 1, sizeof(pending));
	if (acc == NULL)
	{
		fclose(f);
		return -1;
	}
	while ((len = getline(&line, &cap, f)) >= 0)
	{
		long r;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		r = replay_line(line, lineno);
		if (r > 0)
			readings += r;
		batch_spool_flush();
	}
	for (uint32_t i = 0; i < n_meters; i++)
		readings += flush_meter(meters[i]);
	batch_spool_flush();
	batch_close_open();
	free(line);
	free(acc);
	acc = NULL;
	fclose(f);
	log_info("replay %s: %ld lines, %ld readings", path, lineno, readings);
	return readings;
}
