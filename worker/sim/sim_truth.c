/*
 * sim_truth.c
 *	  The ground truth for the tests: one CSV line per reply the meter model
 *	  produced (and per relay change it made by itself), with the meter's
 *	  registers and relay state at that instant -- the format is the
 *	  contract in worker/sim/README.md -- and the summary printed at exit.
 *	  Lines are formatted by hand (no printf per field): the truth file is
 *	  written at the simulator's full frame rate.
 */
#include "sim.h"

#include <string.h>

#include "log.h"

#define LINE_CAP 1024

static const char header[] = "sim_time,address,event,di,value,energy_wh,"
                             "rate_wh,relay,meter_time,fault\n";

/* Appends the decimal digits of v. */
static char *
put_i64(char *p, int64_t v)
{
	char tmp[24];
	int n = 0;
	uint64_t u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

	if (v < 0)
		*p++ = '-';
	do
	{
		tmp[n++] = (char) ('0' + u % 10);
		u /= 10;
	} while (u);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Appends v as exactly `width` digits (v >= 0). */
static char *
put_fixed(char *p, int64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--)
	{
		p[i] = (char) ('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

static char *
put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

/* "YYYY-MM-DD hh:mm:ss" */
static char *
put_datetime(char *p, const dlt645_datetime *t)
{
	p = put_fixed(p, t->year, 4);
	*p++ = '-';
	p = put_fixed(p, t->month, 2);
	*p++ = '-';
	p = put_fixed(p, t->day, 2);
	*p++ = ' ';
	p = put_fixed(p, t->hour, 2);
	*p++ = ':';
	p = put_fixed(p, t->minute, 2);
	*p++ = ':';
	p = put_fixed(p, t->second, 2);
	return p;
}

int
sim_truth_open(sim_ctx *ctx, const char *path)
{
	ctx->truth = fopen(path, "w");
	if (ctx->truth == NULL)
		return -1;
	setvbuf(ctx->truth, NULL, _IOFBF, 1 << 20);
	fputs(header, ctx->truth);
	fflush(ctx->truth);
	ctx->truth_flushed = mono_us();
	return 0;
}

void
sim_truth_line(sim_ctx *ctx, const sim_meter *m, int64_t t, const char *event,
               const char *di, const char *value, const char *fault)
{
	char line[LINE_CAP], *p = line;
	dlt645_datetime dt;
	size_t vlen = strlen(value);

	if (ctx->truth == NULL)
		return;
	/* sim_time: "2026-01-01 08:00:00.000000+00" */
	sim_local_datetime(t, &dt);
	p = put_datetime(p, &dt);
	*p++ = '.';
	p = put_fixed(p, t - sim_floor_div(t, 1000000) * 1000000, 6);
	p = put_str(p, "+00,");
	p = put_str(p, m->addr_text);
	*p++ = ',';
	p = put_str(p, event);
	*p++ = ',';
	p = put_str(p, di);
	*p++ = ',';
	if (vlen > LINE_CAP - 400)
		vlen = LINE_CAP - 400;
	memcpy(p, value, vlen);
	p += vlen;
	*p++ = ',';
	p = put_i64(p, m->regs.total);
	*p++ = ',';
	for (int i = 0; i < m->nrates; i++)
	{
		if (i)
			*p++ = ';';
		p = put_i64(p, m->regs.rate[i]);
	}
	*p++ = ',';
	p = put_str(p, m->relay_open ? "open," : "closed,");
	sim_local_datetime(sim_meter_local_us(m, t), &dt);
	p = put_datetime(p, &dt);
	*p++ = ',';
	p = put_str(p, fault);
	*p++ = '\n';
	fwrite(line, 1, (size_t) (p - line), ctx->truth);
	ctx->st.truth_lines++;
}

void
sim_truth_flush(sim_ctx *ctx, bool force)
{
	int64_t now;

	if (ctx->truth == NULL)
		return;
	now = mono_us();
	if (force || now - ctx->truth_flushed >= 200000)
	{
		fflush(ctx->truth);
		ctx->truth_flushed = now;
	}
}

void
sim_truth_close(sim_ctx *ctx)
{
	if (ctx->truth == NULL)
		return;
	if (fclose(ctx->truth) != 0)
		log_error("writing the truth file failed");
	ctx->truth = NULL;
}

void
sim_summary(sim_ctx *ctx, FILE *out, const char *sep)
{
	char start[40], end[40];
	int64_t wall = mono_us() - ctx->mono_start;
	const sim_stats *s = &ctx->st;

	simclock_format(ctx->sim_start_us, start, sizeof(start));
	simclock_format(sim_now(ctx), end, sizeof(end));
	fprintf(
	    out,
	    "meters=%d%sgateways=%d%sconnections=%d%sconnects=%llu%s"
	    "disconnects=%llu%sframes_in=%llu%sbad_frames_in=%llu%s"
	    "garbage_in=%llu%sframes_out=%llu%sreplies=%llu%serrors=%llu%s"
	    "no_target=%llu%scollisions=%llu%srelay_ops=%llu%sfaults=%llu%s"
	    "heartbeats=%llu%stx_overflow=%llu%struth_lines=%llu%s"
	    "wall_s=%lld.%03lld%ssim_start=%s%ssim_end=%s\n",
	    ctx->nmeters, sep, ctx->ngateways, sep, ctx->nconns, sep,
	    (unsigned long long) s->connects, sep,
	    (unsigned long long) s->disconnects, sep,
	    (unsigned long long) s->frames_in, sep,
	    (unsigned long long) s->bad_frames_in, sep,
	    (unsigned long long) s->garbage_in, sep,
	    (unsigned long long) s->frames_out, sep,
	    (unsigned long long) s->replies, sep, (unsigned long long) s->errors,
	    sep, (unsigned long long) s->no_target, sep,
	    (unsigned long long) s->collisions, sep,
	    (unsigned long long) s->relay_ops, sep, (unsigned long long) s->faults,
	    sep, (unsigned long long) s->heartbeats, sep,
	    (unsigned long long) s->tx_overflow, sep,
	    (unsigned long long) s->truth_lines, sep, (long long) (wall / 1000000),
	    (long long) (wall / 1000 % 1000), sep, start, sep, end);
}
