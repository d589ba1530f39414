/*
 * sim_timer.c
 *	  One wall-clock timer per connection (reconnect, heartbeat, release of
 *	  held output) in a binary min-heap ordered by timer_at
 *	  (CLOCK_MONOTONIC microseconds), so the event loop sleeps exactly until
 *	  the next one is due and finds due timers in O(log n).
 */
#include "sim.h"

#include <stdlib.h>

static bool
earlier(const sim_ctx *ctx, int a, int b)
{
	return ctx->conns[ctx->heap[a]].timer_at <
	       ctx->conns[ctx->heap[b]].timer_at;
}

static void
swap(sim_ctx *ctx, int a, int b)
{
	int32_t t = ctx->heap[a];

	ctx->heap[a] = ctx->heap[b];
	ctx->heap[b] = t;
	ctx->conns[ctx->heap[a]].heap_pos = a;
	ctx->conns[ctx->heap[b]].heap_pos = b;
}

static void
sift_up(sim_ctx *ctx, int i)
{
	while (i > 0 && earlier(ctx, i, (i - 1) / 2))
	{
		swap(ctx, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
sift_down(sim_ctx *ctx, int i)
{
	for (;;)
	{
		int l = 2 * i + 1, r = l + 1, s = i;

		if (l < ctx->nheap && earlier(ctx, l, s))
			s = l;
		if (r < ctx->nheap && earlier(ctx, r, s))
			s = r;
		if (s == i)
			return;
		swap(ctx, i, s);
		i = s;
	}
}

static void
heap_remove(sim_ctx *ctx, int conn)
{
	int i = ctx->conns[conn].heap_pos;

	ctx->conns[conn].heap_pos = -1;
	if (--ctx->nheap == i)
		return;
	ctx->heap[i] = ctx->heap[ctx->nheap];
	ctx->conns[ctx->heap[i]].heap_pos = i;
	sift_up(ctx, i);
	sift_down(ctx, ctx->conns[ctx->heap[i]].heap_pos);
}

void
sim_timer_set(sim_ctx *ctx, int conn, int64_t at)
{
	sim_conn *c = &ctx->conns[conn];

	if (ctx->heap == NULL)
		ctx->heap = malloc(sizeof(int32_t) * (size_t) (ctx->nconns + 1));
	if (c->heap_pos >= 0)
		heap_remove(ctx, conn);
	c->timer_at = at;
	if (at == SIM_NEVER)
		return;
	c->heap_pos = ctx->nheap;
	ctx->heap[ctx->nheap++] = conn;
	sift_up(ctx, c->heap_pos);
}

/* The connection whose timer is due at now (removed from the heap), or -1. */
int
sim_timer_due(sim_ctx *ctx, int64_t now)
{
	int conn;

	if (ctx->nheap == 0 || ctx->conns[ctx->heap[0]].timer_at > now)
		return -1;
	conn = ctx->heap[0];
	heap_remove(ctx, conn);
	ctx->conns[conn].timer_at = SIM_NEVER;
	return conn;
}

int64_t
sim_timer_next(const sim_ctx *ctx)
{
	return ctx->nheap ? ctx->conns[ctx->heap[0]].timer_at : SIM_NEVER;
}
