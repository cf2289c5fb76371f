/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A growable string used to write JSON and Prometheus text. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static int
trip_buf_reserve_(trip__buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = trip__realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void
trip__buf_printf(trip__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || trip_buf_reserve_(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
trip__buf_json_str(trip__buf *b, const char *s)
{
    trip__buf_printf(b, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            trip__buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            trip__buf_printf(b, "\\u%04x", c);
        else
            trip__buf_printf(b, "%c", c);
    }
    trip__buf_printf(b, "\"");
}

void
trip__buf_json_num(trip__buf *b, double v)
{
    if (isfinite(v))
        trip__buf_printf(b, "%.17g", v);
    else
        trip__buf_printf(b, "null");
}

int
trip__buf_finish(trip__buf *b, char **out)
{
    if (b->failed || trip_buf_reserve_(b, 0) != 0) {
        trip__free(b->data);
        b->data = NULL;
        *out = NULL;
        return trip__fail(TRIP_ENOMEM, "out of memory writing a report");
    }
    b->data[b->len] = '\0';
    *out = b->data;
    b->data = NULL;
    return TRIP_OK;
}

int
trip__utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80                 ? 0
                : c >= 0xC2 && c <= 0xDF ? 1
                : c >= 0xE0 && c <= 0xEF ? 2
                : c >= 0xF0 && c <= 0xF4 ? 3
                                         : -1;
        if (n < 0)
            return 0;
        for (int k = 1; k <= n; k++)
            if ((p[k] & 0xC0) != 0x80)
                return 0;
        /* overlong three- and four-byte forms, surrogates, past U+10FFFF */
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) ||
            (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0;
        p += n + 1;
    }
    return 1;
}
