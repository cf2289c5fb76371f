/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Allocation wrappers with a hook that fails the Nth allocation for tests. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static atomic_long trip_alloc_count_;
static atomic_long trip_alloc_fail_at_; /* 0: never; else count to fail */

static int
trip_alloc_should_fail_(void)
{
    long n =
        atomic_fetch_add_explicit(&trip_alloc_count_, 1, memory_order_relaxed) +
        1;
    long at = atomic_load_explicit(&trip_alloc_fail_at_, memory_order_relaxed);
    if (at != 0 && n == at) {
        atomic_store_explicit(&trip_alloc_fail_at_, 0, memory_order_relaxed);
        return 1;
    }
    return 0;
}

void
trip__test_fail_alloc_after(long n)
{
    long now = atomic_load_explicit(&trip_alloc_count_, memory_order_relaxed);
    atomic_store_explicit(&trip_alloc_fail_at_, n > 0 ? now + n : 0,
                          memory_order_relaxed);
}

long
trip__test_alloc_count(void)
{
    return atomic_load_explicit(&trip_alloc_count_, memory_order_relaxed);
}

void *
trip__malloc(size_t n)
{
    return trip_alloc_should_fail_() ? NULL : malloc(n ? n : 1);
}

void *
trip__calloc(size_t count, size_t size)
{
    return trip_alloc_should_fail_()
               ? NULL
               : calloc(count ? count : 1, size ? size : 1);
}

void *
trip__aligned_calloc(size_t align, size_t size)
{
    if (trip_alloc_should_fail_())
        return NULL;
    size_t rounded = (size + align - 1) / align * align;
    void *p = aligned_alloc(align, rounded ? rounded : align);
    if (p)
        memset(p, 0, rounded ? rounded : align);
    return p;
}

void *
trip__realloc(void *p, size_t n)
{
    return trip_alloc_should_fail_() ? NULL : realloc(p, n ? n : 1);
}

void
trip__free(void *p)
{
    free(p);
}

char *
trip__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = trip__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
