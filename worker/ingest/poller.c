/*
 * poller.c
 *	  The read schedule (a binary min-heap of meters by due time) and the
 *	  polls (see poller.h). Slots are staggered by meter id: meter m is read
 *	  at k x interval + offset(m) in simulated time, offset a hash of its
 *	  id, so polls spread evenly and a restart keeps each meter's slot.
 *	  An energy poll reads status word 3 after the energy block only when
 *	  relay.c says so; otherwise it is one exchange.
 *
 *	  At most --poll-window polls are in progress at once: a due poll
 *	  beyond it waits (at the top of the heap) until a poll ends. That
 *	  bounds the requests queued in the daemon, the network and the meters,
 *	  so a command sent to a meter is never behind a flood of polls.
 */
#include "poller.h"

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "log.h"
#include "meters.h"
#include "net.h"
#include "reading.h"
#include "relay.h"

/* polls started per loop turn at most: short turns keep command latency low */
#define RUN_BURST 256
#define RETRY_US  200000 /* a held-back poll is tried again after 0.2 s */
#define WINDOW_US 10000  /* window full: look again (a reply ends a poll) */

struct poll_state
{
	reading r;
	uint8_t step;
	poll_state *next_free;
};

static poll_state *free_polls; /* ended polls, reused: no malloc per poll */

static const uint32_t energy_dis[] = {DLT645_DI_FORWARD_ACTIVE_BLOCK,
                                      DLT645_DI_STATUS_WORD_3};
static const uint32_t full_dis[] = {DLT645_DI_FORWARD_ACTIVE_BLOCK,
                                    DLT645_DI_VOLTAGE_BLOCK,
                                    DLT645_DI_CURRENT_BLOCK,
                                    DLT645_DI_ACTIVE_POWER_BLOCK,
                                    DLT645_DI_POWER_FACTOR_TOTAL,
                                    DLT645_DI_FREQUENCY,
                                    DLT645_DI_ACTIVE_DEMAND,
                                    DLT645_DI_STATUS_WORD_3,
                                    DLT645_DI_DATE,
                                    DLT645_DI_TIME};

/* The heap holds the due time next to the pointer: sifting compares
 * without touching the meters (a cache miss each). */
typedef struct heap_entry
{
	int64_t due;
	meter *m;
} heap_entry;

static heap_entry *heap;
static uint32_t heap_n, heap_cap;

static const uint32_t *
poll_dis(int *n)
{
	if (G.opts.poll == POLL_ENERGY)
	{
		*n = (int) (sizeof(energy_dis) / sizeof(energy_dis[0]));
		return energy_dis;
	}
	*n = (int) (sizeof(full_dis) / sizeof(full_dis[0]));
	return full_dis;
}

/* --- heap ------------------------------------------------------------------ */

static void
heap_set(uint32_t i, heap_entry e)
{
	heap[i] = e;
	e.m->heap_pos = (int32_t) i;
}

static void
sift_up(uint32_t i)
{
	heap_entry e = heap[i];

	while (i > 0)
	{
		uint32_t parent = (i - 1) / 2;

		if (heap[parent].due <= e.due)
			break;
		heap_set(i, heap[parent]);
		i = parent;
	}
	heap_set(i, e);
}

static void
sift_down(uint32_t i)
{
	heap_entry e = heap[i];

	for (;;)
	{
		uint32_t l = 2 * i + 1, best = i;
		int64_t due = e.due;

		if (l < heap_n && heap[l].due < due)
		{
			best = l;
			due = heap[l].due;
		}
		if (l + 1 < heap_n && heap[l + 1].due < due)
			best = l + 1;
		if (best == i)
			break;
		heap_set(i, heap[best]);
		i = best;
	}
	heap_set(i, e);
}

static void
heap_remove(meter *m)
{
	uint32_t i = (uint32_t) m->heap_pos;
	heap_entry last;

	if (m->heap_pos < 0)
		return;
	m->heap_pos = -1;
	last = heap[--heap_n];
	if (i == heap_n)
		return;
	heap_set(i, last);
	sift_down(i);
	sift_up((uint32_t) last.m->heap_pos);
}

static void
heap_push(meter *m)
{
	if (heap_n == heap_cap)
	{
		uint32_t cap = heap_cap ? heap_cap * 2 : 1024;
		heap_entry *grown = realloc(heap, sizeof(heap_entry) * cap);

		if (grown == NULL)
		{
			log_error("out of memory growing the poll schedule");
			exit(1);
		}
		heap = grown;
		heap_cap = cap;
	}
	heap_set(heap_n, (heap_entry){m->due_mono, m});
	sift_up(heap_n++);
}

/* --- schedule --------------------------------------------------------------- */

static int64_t
slot_offset(const meter *m)
{
	uint64_t h = (uint64_t) m->meter_id * 0x9E3779B97F4A7C15ull;

	return (int64_t) ((h >> 16) % (uint64_t) m->interval_us);
}

/* Schedules the first slot strictly after simulated time t. */
static void
schedule_after(meter *m, int64_t t)
{
	int64_t iv = m->interval_us, off = slot_offset(m), k;

	k = (t - off) >= 0 ? (t - off) / iv + 1 : -((off - t) / iv);
	m->due_mono = simclock_mono_at(&G.clock, k * iv + off);
	if (m->heap_pos >= 0)
	{
		uint32_t i = (uint32_t) m->heap_pos;

		heap[i].due = m->due_mono;
		sift_down(i);
		sift_up((uint32_t) m->heap_pos);
	}
	else
		heap_push(m);
}

void
poller_schedule_all(void)
{
	int64_t now = simclock_now(&G.clock);

	for (uint32_t i = 0; i < n_meters; i++)
	{
		meter *m = meters[i];

		if (!(m->flags & M_IN_DB) || m->interval_us <= 0)
			heap_remove(m);
		else if (m->heap_pos < 0)
			schedule_after(m, now);
	}
}

static void
poll_start(meter *m, int64_t sim_now)
{
	poll_state *p = free_polls;

	if (p)
		free_polls = p->next_free;
	else if ((p = malloc(sizeof(poll_state))) == NULL)
	{
		log_error("out of memory starting a poll");
		G.stats.polls_failed++;
		return;
	}
	memset(p, 0, sizeof(*p));
	p->r.read_at = sim_now;
	m->poll = p;
	if (++G.stats.polls_in_progress > G.stats.polls_in_progress_max)
		G.stats.polls_in_progress_max = G.stats.polls_in_progress;
	G.stats.polls_started++;
	net_enqueue(m, false);
}

int64_t
poller_run(int64_t now)
{
	int64_t sim_now = simclock_now(&G.clock);

	for (int n = 0; heap_n > 0 && heap[0].due <= now && n < RUN_BURST; n++)
	{
		meter *m = heap[0].m;

		if (m->conn && !m->poll && (G.paused || G.throttled) && !G.stopping)
		{
			/* held back: try again shortly, the slot is not lost */
			G.stats.polls_delayed++;
			heap[0].due = m->due_mono = now + RETRY_US;
			sift_down(0);
			continue;
		}
		if (m->conn && !m->poll && !G.stopping &&
		    G.stats.polls_in_progress >= (uint64_t) G.opts.poll_window)
			return now + WINDOW_US; /* the poll stays due, on top */
		if (m->conn == NULL)
			G.stats.polls_skipped++;
		else if (m->poll || G.stopping)
			G.stats.polls_delayed++;
		else
			poll_start(m, sim_now);
		schedule_after(m, sim_now);
	}
	return heap_n > 0 ? heap[0].due : INT64_MAX;
}

/* --- polls ------------------------------------------------------------------ */

int
poller_request(meter *m, uint8_t *buf, size_t cap, uint8_t *func, uint32_t *di)
{
	int n;
	const uint32_t *dis = poll_dis(&n);

	if (m->poll == NULL || m->poll->step >= n)
		return 0;
	*func = DLT645_FN_READ;
	*di = dis[m->poll->step];
	return dlt645_build_read(buf, cap, 4, m->addr, *di);
}

static void
poll_end(meter *m)
{
	m->poll->next_free = free_polls;
	free_polls = m->poll;
	m->poll = NULL;
	G.stats.polls_in_progress--;
}

void
poller_abort(meter *m)
{
	if (m->poll == NULL)
		return;
	G.stats.polls_failed++;
	poll_end(m);
}

void
poller_reply(meter *m, const dlt645_message *msg)
{
	poll_state *p = m->poll;
	int n;
	const uint32_t *dis = poll_dis(&n);

	if (p == NULL)
		return;
	if (msg->abnormal || reading_apply(&p->r, m, msg) != 0)
	{
		if (!msg->abnormal)
			G.stats.rejected_value++;
		if (dis[p->step] == DLT645_DI_FORWARD_ACTIVE_BLOCK)
		{
			/* no energy, no reading: the registers are read next slot */
			poller_abort(m);
			return;
		}
	}
	if (dis[p->step] == DLT645_DI_STATUS_WORD_3)
	{
		if (p->r.have & R_SW3)
			relay_note(m, p->r.sw3);
		else
			relay_forget(m);
	}
	if (++p->step < n && dis[p->step] == DLT645_DI_STATUS_WORD_3 &&
	    G.opts.poll == POLL_ENERGY && !relay_read_due(m, p->r.energy_wh))
	{
		G.stats.polls_status_skipped++;
		p->step++; /* one exchange: relay_open stays NULL */
	}
	if (p->step < n)
		return;
	if (p->r.have & R_ENERGY)
	{
		char line[READING_LINE_MAX];

		batch_add(line, reading_render(&p->r, m, line));
		G.stats.readings_taken++;
		poll_end(m);
	}
	else
		poller_abort(m);
}
