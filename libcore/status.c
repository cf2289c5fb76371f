/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Status codes, their messages, and the per-thread last error message. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static _Thread_local char trip_errbuf_[512];

const char *
trip_strerror(int status)
{
    switch (status) {
#define TRIP_STATUS_MSG_(name, value, msg)                                     \
    case value:                                                                \
        return msg;
        TRIP_STATUS_MAP(TRIP_STATUS_MSG_)
#undef TRIP_STATUS_MSG_
    default:
        return "unknown status";
    }
}

const char *
trip_status_name(int status)
{
    switch (status) {
#define TRIP_STATUS_NAME_(name, value, msg)                                    \
    case value:                                                                \
        return "TRIP_" #name;
        TRIP_STATUS_MAP(TRIP_STATUS_NAME_)
#undef TRIP_STATUS_NAME_
    default:
        return "TRIP_UNKNOWN";
    }
}

const char *
trip_errmsg(void)
{
    return trip_errbuf_;
}

int
trip__fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(trip_errbuf_, sizeof trip_errbuf_, fmt, ap);
    va_end(ap);
    return status;
}

void
trip__clear_error(void)
{
    trip_errbuf_[0] = '\0';
}

void
trip_string_free(char *s)
{
    trip__free(s);
}

const char *
trip_version(void)
{
#define TRIP_STR2_(x) #x
#define TRIP_STR_(x) TRIP_STR2_(x)
    return TRIP_STR_(TRIP_VERSION_MAJOR) "." TRIP_STR_(
        TRIP_VERSION_MINOR) "." TRIP_STR_(TRIP_VERSION_PATCH);
}

uint64_t
trip__hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}
