/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What the engine hands the store: the lock-free outcome ring, the queue of
 * roll-path rows, and per-breaker loss counts. */
#include <string.h>

#include "store_impl.h"

#define TRIP_RLX_ memory_order_relaxed

/* Sampling: whether this outcome's raw row is kept. */
static int
trip_keep_(trip_store *s, const trip__outcome_rec *r)
{
    if (r->outcome < 0)
        return s->opts.record_rejections;
    switch (s->opts.sample_mode) {
    case TRIP_SAMPLE_ONE_IN_N: {
        _Atomic uint64_t *c =
            &s->sample_ctr[(uint32_t)r->breaker_id % TRIP__SLOTS];
        return atomic_fetch_add_explicit(c, 1, TRIP_RLX_) % s->opts.sample_n ==
               0;
    }
    case TRIP_SAMPLE_FAILURES:
        return r->outcome == TRIP_FAILURE || r->outcome == TRIP_TIMEOUT ||
               r->slow;
    default:
        return 1;
    }
}

int
trip__store_push_outcome(trip_store *s, const trip__outcome_rec *r)
{
    if (!trip_keep_(s, r)) {
        if (r->outcome >= 0)
            atomic_fetch_add_explicit(&s->sampled_out, 1, TRIP_RLX_);
        return 0;
    }
    uint64_t pos = atomic_load_explicit(&s->tail, TRIP_RLX_);
    for (;;) {
        trip__slot *slot = &s->ring[pos & s->mask];
        uint32_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        int32_t dif = (int32_t)(seq - (uint32_t)pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&s->tail, &pos, pos + 1,
                                                      TRIP_RLX_, TRIP_RLX_)) {
                slot->wall_ns = r->wall_ns;
                slot->latency_ns = r->latency_ns;
                slot->breaker_id = r->breaker_id;
                slot->outcome = r->outcome;
                slot->state = r->state;
                slot->decision = r->decision;
                slot->slow = r->slow;
                slot->weight = r->weight;
                atomic_store_explicit(&slot->seq, (uint32_t)pos + 1,
                                      memory_order_release);
                return 1; /* accepted rows are counted by the tail */
            }
        } else if (dif < 0) {
            /* one counter per breaker; the total is their sum */
            atomic_fetch_add_explicit(
                &s->dropped_by[(uint32_t)r->breaker_id % TRIP__SLOTS], 1,
                TRIP_RLX_);
            return -1;
        } else {
            pos = atomic_load_explicit(&s->tail, TRIP_RLX_);
        }
    }
}

int
trip__rows_push(trip__rows *r, const void *row, size_t count)
{
    if (r->n + count > r->cap) {
        size_t cap = r->cap ? r->cap : 64;
        while (cap < r->n + count)
            cap *= 2;
        void *p = trip__realloc(r->p, cap * r->size);
        if (p == NULL)
            return TRIP_ENOMEM;
        r->p = p;
        r->cap = cap;
    }
    memcpy((char *)r->p + r->n * r->size, row, count * r->size);
    r->n += count;
    return TRIP_OK;
}

void
trip__rows_free(trip__rows *r)
{
    trip__free(r->p);
    r->p = NULL;
    r->n = r->cap = 0;
}

/* Rows waiting in the queue beyond this are dropped and counted, so a dead
 * database cannot grow memory without bound. */
#define TRIP_QUEUE_MAX_ (1u << 20)

static void
trip_queue_(trip_store *s, trip__rows *q, const void *rows, size_t n)
{
    if (s == NULL || n == 0)
        return;
    pthread_mutex_lock(&s->q_mu);
    int rc =
        q->n + n > TRIP_QUEUE_MAX_ ? TRIP_ENOSPC : trip__rows_push(q, rows, n);
    pthread_mutex_unlock(&s->q_mu);
    if (rc != TRIP_OK)
        atomic_fetch_add(&s->q_lost, (int64_t)n);
}

void
trip__store_push_rollup(trip_store *s, const trip_rollup_row *r)
{
    trip_queue_(s, &s->q_rollups, r, 1);
}

void
trip__store_push_transition(trip_store *s, const trip_transition_row *r)
{
    trip_queue_(s, &s->q_transitions, r, 1);
}

void
trip__store_push_baselines(trip_store *s, const trip_baseline_row *rows,
                           size_t n)
{
    trip_queue_(s, &s->q_baselines, rows, n);
}

int64_t
trip__store_dropped(trip_store *s, int breaker_id)
{
    if (s == NULL)
        return 0;
    return atomic_load_explicit(
        &s->dropped_by[(uint32_t)breaker_id % TRIP__SLOTS], TRIP_RLX_);
}

int
trip__store_health(trip_store *s)
{
    return s == NULL ? TRIP_OK : atomic_load_explicit(&s->status, TRIP_RLX_);
}
