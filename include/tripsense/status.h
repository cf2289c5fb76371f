/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Status codes shared by every fallible tripsense function. */
#ifndef TRIPSENSE_STATUS_H
#define TRIPSENSE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TRIP_API
#elif defined(__GNUC__)
#define TRIP_API __attribute__((visibility("default")))
#else
#define TRIP_API
#endif

/*
 * The one list of status codes: X(name, value, message). It expands to the
 * trip_status enum and to the table behind trip_strerror(), so the two cannot
 * drift. TRIP_OK is zero; every error is negative.
 */
#define TRIP_STATUS_MAP(X)                                                     \
    X(OK, 0, "success")                                                        \
    X(EINVAL, -1, "invalid argument")                                          \
    X(ENOMEM, -2, "out of memory")                                             \
    X(ESTATE, -3, "operation not allowed in the current state")                \
    X(ENOTFOUND, -4, "not found")                                              \
    X(EEXIST, -5, "already exists")                                            \
    X(ERANGE, -6, "value out of range")                                        \
    X(ENOSPC, -7, "buffer too small")                                          \
    X(ESTORE, -8, "history store error")                                       \
    X(EBUSY, -9, "history store is locked by another connection")              \
    X(ESCHEMA, -10, "history store schema is newer than this library")         \
    X(ECORRUPT, -11, "history store file is corrupt or not a database")        \
    X(EREADONLY, -12, "history store is read-only")                            \
    X(EFULL, -13, "disk full")                                                 \
    X(EIO, -14, "input/output error")                                          \
    X(EMATH, -15, "numerical error")                                           \
    X(ETHREAD, -16, "could not start or join a thread")

typedef enum trip_status {
#define TRIP_STATUS_ENUM_(name, value, msg) TRIP_##name = value,
    TRIP_STATUS_MAP(TRIP_STATUS_ENUM_)
#undef TRIP_STATUS_ENUM_
} trip_status;

/**
 * Return a static English description of a status code.
 *
 * @param status any value; unknown values give "unknown status".
 * @return a pointer to a static string, never NULL; do not free it.
 * Thread-safety: safe from any thread.
 */
TRIP_API const char *trip_strerror(int status);

/**
 * Return the symbolic name of a status code ("TRIP_EINVAL").
 *
 * @return a static string, never NULL ("TRIP_UNKNOWN" for unknown values).
 * Thread-safety: safe from any thread.
 */
TRIP_API const char *trip_status_name(int status);

/**
 * Return the detailed message of the last failure in the calling thread.
 *
 * Every function that returns an error status also stores a message that
 * names the problem (for example "config.failure_rate must be in (0, 1],
 * got 1.5"). The message stays until the next failure in the same thread.
 *
 * @return a thread-local string, never NULL (empty when there was no error);
 *         valid until the next tripsense call in this thread.
 * Thread-safety: safe; each thread has its own message.
 */
TRIP_API const char *trip_errmsg(void);

/**
 * Free a string that a tripsense function allocated and returned to you
 * (health JSON, Prometheus text, config JSON). NULL is accepted.
 *
 * Thread-safety: safe from any thread.
 */
TRIP_API void trip_string_free(char *s);

/**
 * Return the library version as "MAJOR.MINOR.PATCH".
 *
 * Thread-safety: safe from any thread.
 */
TRIP_API const char *trip_version(void);

#ifdef __cplusplus
}
#endif
#endif /* TRIPSENSE_STATUS_H */
