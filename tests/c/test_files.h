/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Temporary history files for tests and benchmarks (no cmocka needed). */
#ifndef TRIPSENSE_TEST_FILES_H
#define TRIPSENSE_TEST_FILES_H

#include <stdio.h>
#include <unistd.h>

/* Remove a SQLite file and its -wal and -shm companions. */
static inline void
test_rm_db(const char *path)
{
    char side[512];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* A fresh path /tmp/tripsense-<tag>-<pid>.db (removed if it existed). */
static inline void
test_db_path(char *out, size_t n, const char *tag)
{
    snprintf(out, n, "/tmp/tripsense-%s-%d.db", tag, (int)getpid());
    test_rm_db(out);
}

#endif /* TRIPSENSE_TEST_FILES_H */
