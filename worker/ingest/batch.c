/*
 * batch.c
 *	  Batches of readings and the spool (see batch.h).
 *
 *	  Spool: files <spool-dir>/<name>-<seq>.spool of lines
 *	    B <batch_no>            a batch begins
 *	    <COPY text line>        a reading (starts with a digit)
 *	    E <batch_no> <rows>     the batch is complete
 *	    K <batch_no>            the batch is committed in PostgreSQL
 *	  Rows of a loop turn are written with one write() before the turn
 *	  ends; a batch is only sent after its E line (fdatasync with
 *	  --spool-sync=batch). A file is deleted once every batch in it is
 *	  committed and a newer file exists. At start every file is read, the
 *	  uncommitted batches (a torn last line is ignored; a batch without E
 *	  was never sent, its rows on disk are the batch) are rewritten into a
 *	  new file and queued again.
 */
#include "batch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "reading.h"

#define SEG_MAX        (64L << 20) /* start a new spool file after 64 MiB */
#define RETRY_DELAY_US 1000000
#define WRITER_QUEUE   3 /* closed batches waiting before polls slow down */

typedef struct batch batch;
struct batch
{
	batch *next;
	int64_t batch_no;
	char *buf;
	size_t len, cap, spooled;
	uint32_t rows;
	uint32_t seg;
	int64_t opened;
};

typedef struct segment
{
	uint32_t seq;
	uint32_t pending; /* batches in it not committed (or still open) */
	bool live;
} segment;

static pgsess *writer;
static batch *open_b;
static batch *q_head, *q_tail;
static int64_t next_no = 1;
static long buffered;
static int n_queued; /* closed batches not committed */
static int seg_fd = -1;
static uint32_t seg_cur;
static off_t seg_size;
static segment *segs;
static uint32_t n_segs;
static int64_t retry_at;
static int64_t w_inserted;
static bool w_duplicate;

/* --- spool files ----------------------------------------------------------- */

static void
seg_path(uint32_t seq, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s-%08u.spool", G.opts.spool_dir, G.opts.name, seq);
}

static void
spool_fail(const char *what)
{
	log_error("spool %s in %s failed: %s; exiting (the spool is replayed at "
	          "the next start)",
	          what, G.opts.spool_dir, strerror(errno));
	exit(1);
}

static void
spool_write(const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t w = write(seg_fd, data, len);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			spool_fail("write");
		}
		data += w;
		len -= (size_t) w;
		seg_size += w;
	}
}

static segment *
seg_find(uint32_t seq)
{
	for (uint32_t i = 0; i < n_segs; i++)
		if (segs[i].seq == seq)
			return &segs[i];
	return NULL;
}

static void
seg_open(uint32_t seq)
{
	char path[4096];
	segment *grown;

	seg_path(seq, path, sizeof(path));
	if (seg_fd >= 0)
		close(seg_fd);
	seg_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (seg_fd < 0)
		spool_fail("open");
	seg_cur = seq;
	seg_size = lseek(seg_fd, 0, SEEK_END);
	grown = realloc(segs, sizeof(segment) * (n_segs + 1));
	if (grown == NULL)
		spool_fail("allocation");
	segs = grown;
	segs[n_segs++] = (segment){seq, 0, true};
}

/* Deletes spool files whose batches are all committed. */
static void
seg_gc(void)
{
	for (uint32_t i = 0; i < n_segs;)
	{
		if (segs[i].pending == 0 && segs[i].seq != seg_cur)
		{
			char path[4096];

			seg_path(segs[i].seq, path, sizeof(path));
			if (unlink(path) != 0 && errno != ENOENT)
				log_warn("cannot remove spool file %s: %s", path,
				         strerror(errno));
			segs[i] = segs[--n_segs];
			continue;
		}
		i++;
	}
}

static void
spool_sync(void)
{
	if (G.opts.spool_sync && fdatasync(seg_fd) != 0)
		spool_fail("fdatasync");
}

/* --- batches ---------------------------------------------------------------- */

static batch *
batch_new(int64_t no)
{
	batch *b = calloc(1, sizeof(batch));

	if (b == NULL)
	{
		log_error("out of memory creating a batch");
		exit(1);
	}
	b->batch_no = no;
	b->seg = seg_cur;
	b->opened = G.now_mono;
	return b;
}

static void
batch_append(batch *b, const char *data, size_t len)
{
	if (b->len + len > b->cap)
	{
		size_t cap = b->cap ? b->cap * 2 : 65536;
		char *grown;

		while (cap < b->len + len)
			cap *= 2;
		grown = realloc(b->buf, cap);
		if (grown == NULL)
		{
			log_error("out of memory growing batch %lld",
			          (long long) b->batch_no);
			exit(1);
		}
		b->buf = grown;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
}

static void
update_pause(void)
{
	if (!G.paused && buffered >= G.opts.max_buffer)
	{
		G.paused = true;
		log_warn("%ld readings wait for PostgreSQL (--max-buffer %ld): polls "
		         "are delayed until they are written (meters keep their "
		         "registers, nothing is lost)",
		         buffered, G.opts.max_buffer);
	}
	else if (G.paused && buffered < G.opts.max_buffer / 10 * 9)
	{
		G.paused = false;
		log_info("buffer below its limit again (%ld readings): polling "
		         "resumes",
		         buffered);
	}
	/* PostgreSQL is up but behind: taking more readings now would only
	 * spend CPU it needs; polls wait a moment (while it is down they go on
	 * into the spool, up to --max-buffer) */
	G.throttled = n_queued >= WRITER_QUEUE && writer && pgsess_ready(writer);
	G.stats.readings_buffered = (uint64_t) buffered;
}

static void start_send(void);

static void
enqueue_closed(batch *b)
{
	b->next = NULL;
	if (q_tail)
		q_tail->next = b;
	else
		q_head = b;
	q_tail = b;
	n_queued++;
	update_pause();
	start_send();
}

void
batch_add(const char *line, size_t len)
{
	if (open_b == NULL)
	{
		char marker[40];
		segment *s = seg_find(seg_cur);

		open_b = batch_new(next_no++);
		s->pending++;
		spool_write(marker,
		            (size_t) snprintf(marker, sizeof(marker), "B %lld\n",
		                              (long long) open_b->batch_no));
	}
	batch_append(open_b, line, len);
	open_b->rows++;
	buffered++;
	update_pause();
	if (open_b->rows >= (uint32_t) G.opts.batch_size)
		batch_close_open();
}

void
batch_spool_flush(void)
{
	if (open_b && open_b->spooled < open_b->len)
	{
		spool_write(open_b->buf + open_b->spooled,
		            open_b->len - open_b->spooled);
		open_b->spooled = open_b->len;
	}
}

void
batch_close_open(void)
{
	char marker[64];
	batch *b = open_b;

	if (b == NULL)
		return;
	batch_spool_flush();
	spool_write(marker,
	            (size_t) snprintf(marker, sizeof(marker), "E %lld %u\n",
	                              (long long) b->batch_no, b->rows));
	spool_sync();
	open_b = NULL;
	if (seg_size > SEG_MAX)
		seg_open(seg_cur + 1);
	enqueue_closed(b);
}

int64_t
batch_timers(int64_t now)
{
	int64_t next = INT64_MAX;

	update_pause(); /* the writer may have gone down or come back */
	if (open_b)
	{
		int64_t due = open_b->opened + (int64_t) G.opts.batch_delay_ms * 1000;

		if (due <= now)
			batch_close_open();
		else
			next = due;
	}
	if (retry_at && now >= retry_at)
	{
		retry_at = 0;
		start_send();
	}
	if (retry_at && retry_at < next)
		next = retry_at;
	return next;
}

long
batch_buffered(void)
{
	return buffered;
}

bool
batch_drained(void)
{
	return open_b == NULL && q_head == NULL;
}

/* --- writing a batch ------------------------------------------------------ */

static bool
write_step(pgsess *s, pgop *op, int n)
{
	batch *b = op->arg;

	if (n == 0)
	{
		char sql[512];

		w_inserted = 0;
		w_duplicate = false;
		snprintf(sql, sizeof(sql),
		         "BEGIN; COPY pg_temp.ingest_stage (%s) FROM STDIN",
		         READING_COPY_COLUMNS);
		return pgsess_send(s, sql);
	}
	if (n == 1)
	{
		char sql[512];
		char *name =
		    PQescapeLiteral(s->conn, G.opts.name, strlen(G.opts.name));
		bool ok;

		if (name == NULL)
			return false;
		snprintf(sql, sizeof(sql),
		         "SELECT inserted, duplicate FROM "
		         "prepaid.ingest_batch_write(%s, %lld, %u); COMMIT",
		         name, (long long) b->batch_no, b->rows);
		PQfreemem(name);
		ok = pgsess_send(s, sql);
		return ok;
	}
	return false;
}

static void
write_result(pgsess *s, pgop *op, int n, const PGresult *res)
{
	(void) s;
	(void) op;
	if (n == 1 && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1)
	{
		w_inserted = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		w_duplicate = PQgetvalue(res, 0, 1)[0] == 't';
	}
}

static void
write_copy(pgop *op, const char **data, size_t *len)
{
	batch *b = op->arg;

	*data = b->buf;
	*len = b->len;
}

static void write_done(pgsess *s, pgop *op, pgop_outcome outcome,
                       const char *err);

static pgop write_op = {.step = write_step,
                        .result = write_result,
                        .copy_data = write_copy,
                        .done = write_done};

static void
write_done(pgsess *s, pgop *op, pgop_outcome outcome, const char *err)
{
	batch *b = op->arg;
	char marker[40];
	segment *seg;

	(void) s;
	if (outcome != PGOP_OK)
	{
		G.stats.batch_errors++;
		log_error("batch %lld (%u readings) not written: %s; retrying",
		          (long long) b->batch_no, b->rows, err);
		retry_at = G.now_mono + RETRY_DELAY_US;
		return;
	}
	spool_write(marker, (size_t) snprintf(marker, sizeof(marker), "K %lld\n",
	                                      (long long) b->batch_no));
	if (w_duplicate)
	{
		G.stats.batches_duplicate++;
		log_info("batch %lld was committed before (a retry): skipped",
		         (long long) b->batch_no);
	}
	else
	{
		G.stats.batches_committed++;
		G.stats.readings_written += (uint64_t) w_inserted;
		G.stats.readings_duplicate += b->rows - (uint64_t) w_inserted;
		log_debug("batch %lld committed: %lld of %u readings inserted",
		          (long long) b->batch_no, (long long) w_inserted, b->rows);
	}
	buffered -= b->rows;
	n_queued--;
	update_pause();
	q_head = b->next;
	if (q_head == NULL)
		q_tail = NULL;
	seg = seg_find(b->seg);
	if (seg && seg->pending > 0)
		seg->pending--;
	free(b->buf);
	free(b);
	seg_gc();
	start_send();
}

static void
start_send(void)
{
	if (q_head == NULL || write_op.queued || retry_at || writer == NULL)
		return;
	write_op.arg = q_head;
	pgsess_submit(writer, &write_op);
}

void
batch_on_ready(pgsess *s)
{
	(void) s;
	start_send();
}

/* --- start: replaying the spool ---------------------------------------------- */

typedef struct found
{
	int64_t no;
	batch *b;
	bool committed;
} found;

static found *fb;
static size_t n_fb, cap_fb;

static found *
found_get(int64_t no)
{
	for (size_t i = n_fb; i > 0; i--)
		if (fb[i - 1].no == no)
			return &fb[i - 1];
	if (n_fb == cap_fb)
	{
		size_t cap = cap_fb ? cap_fb * 2 : 64;
		found *grown = realloc(fb, sizeof(found) * cap);

		if (grown == NULL)
			spool_fail("allocation");
		fb = grown;
		cap_fb = cap;
	}
	fb[n_fb] = (found){no, NULL, false};
	return &fb[n_fb++];
}

static void
read_segment(const char *path, int64_t *max_no)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	batch *cur = NULL;

	if (f == NULL)
		spool_fail("read");
	while ((len = getline(&line, &cap, f)) > 0)
	{
		long long no;
		unsigned rows;

		if (line[len - 1] != '\n')
			break; /* torn last line: never counted as taken */
		if (line[0] == 'B' && sscanf(line, "B %lld", &no) == 1)
		{
			found *x = found_get(no);

			if (x->b == NULL)
				x->b = batch_new(no);
			cur = x->b;
			if (no > *max_no)
				*max_no = no;
		}
		else if (line[0] == 'E' && sscanf(line, "E %lld %u", &no, &rows) == 2)
			cur = NULL;
		else if (line[0] == 'K' && sscanf(line, "K %lld", &no) == 1)
			found_get(no)->committed = true;
		else if (cur && line[0] >= '0' && line[0] <= '9')
		{
			batch_append(cur, line, (size_t) len);
			cur->rows++;
		}
	}
	free(line);
	fclose(f);
}

static int
cmp_found(const void *a, const void *b)
{
	int64_t x = ((const found *) a)->no, y = ((const found *) b)->no;

	return x < y ? -1 : x > y;
}

void
batch_init(pgsess *w, int64_t last_committed)
{
	char prefix[80], path[4096];
	DIR *d;
	struct dirent *e;
	uint32_t max_seq = 0, *old = NULL, n_old = 0;
	int64_t max_no = 0;
	long replayed = 0;
	uint32_t requeued = 0;

	writer = w;
	if (mkdir(G.opts.spool_dir, 0750) != 0 && errno != EEXIST)
		spool_fail("mkdir");
	snprintf(prefix, sizeof(prefix), "%s-", G.opts.name);
	d = opendir(G.opts.spool_dir);
	if (d == NULL)
		spool_fail("opendir");
	while ((e = readdir(d)) != NULL)
	{
		unsigned seq;
		size_t pl = strlen(prefix);
		uint32_t *grown;

		if (strncmp(e->d_name, prefix, pl) != 0 ||
		    sscanf(e->d_name + pl, "%8u.spool", &seq) != 1 ||
		    strlen(e->d_name) != pl + 14)
			continue;
		grown = realloc(old, sizeof(uint32_t) * (n_old + 1));
		if (grown == NULL)
			spool_fail("allocation");
		old = grown;
		old[n_old++] = seq;
		if (seq > max_seq)
			max_seq = seq;
	}
	closedir(d);
	for (uint32_t i = 0; i < n_old; i++)
	{
		seg_path(old[i], path, sizeof(path));
		read_segment(path, &max_no);
	}
	if (n_fb > 0)
		qsort(fb, n_fb, sizeof(found), cmp_found);
	seg_open(max_seq + 1);
	for (size_t i = 0; i < n_fb; i++)
	{
		batch *b = fb[i].b;
		char marker[64];

		if (b == NULL)
			continue;
		if (fb[i].committed || b->rows == 0)
		{
			free(b->buf);
			free(b);
			continue;
		}
		b->seg = seg_cur;
		spool_write(marker,
		            (size_t) snprintf(marker, sizeof(marker), "B %lld\n",
		                              (long long) b->batch_no));
		spool_write(b->buf, b->len);
		spool_write(marker,
		            (size_t) snprintf(marker, sizeof(marker), "E %lld %u\n",
		                              (long long) b->batch_no, b->rows));
		b->spooled = b->len;
		segs[n_segs - 1].pending++;
		n_queued++;
		buffered += b->rows;
		replayed += b->rows;
		requeued++;
		b->next = NULL;
		if (q_tail)
			q_tail->next = b;
		else
			q_head = b;
		q_tail = b;
	}
	if (fdatasync(seg_fd) != 0)
		spool_fail("fdatasync");
	for (uint32_t i = 0; i < n_old; i++)
	{
		seg_path(old[i], path, sizeof(path));
		unlink(path);
	}
	free(old);
	free(fb);
	fb = NULL;
	n_fb = cap_fb = 0;
	next_no = (max_no > last_committed ? max_no : last_committed) + 1;
	update_pause();
	if (requeued)
		log_info("spool: %u uncommitted batches (%ld readings) taken over "
		         "from the last run; they are sent again (batches already "
		         "committed are skipped by prepaid.ingest_batch)",
		         requeued, replayed);
	log_info("spool %s: next batch %lld", G.opts.spool_dir,
	         (long long) next_no);
}

void
batch_shutdown(void)
{
	while (q_head)
	{
		batch *b = q_head;

		q_head = b->next;
		free(b->buf);
		free(b);
	}
	q_tail = NULL;
	if (open_b)
	{
		free(open_b->buf);
		free(open_b);
		open_b = NULL;
	}
	if (seg_fd >= 0)
		close(seg_fd);
	seg_fd = -1;
	free(segs);
	segs = NULL;
	n_segs = 0;
}
