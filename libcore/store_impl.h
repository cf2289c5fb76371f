/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The history store's private layout, shared by its open, ring, writer and
 * read modules. */
#ifndef TRIPSENSE_STORE_IMPL_H
#define TRIPSENSE_STORE_IMPL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "store_internal.h"

/* Schema version written to PRAGMA user_version; application_id marks the
 * file as ours ("TRIP"). */
#define TRIP__SCHEMA_VERSION 3
#define TRIP__APP_ID 0x54524950

/* Ids handed out while the database could not register a name: resolved to
 * real ids by the writer once the database works again. */
#define TRIP__PROVISIONAL_BASE (1 << 30)

/* Per-breaker counters (drops, sampling) are kept in slots indexed by the
 * low bits of the id: exact while a store has fewer breakers than this. */
#define TRIP__SLOTS 1024

/* Read statements kept prepared: rows and count(*) of the four tables, for
 * one breaker or all (16), and the two name lookups. */
#define TRIP__READS 18

/* One ring slot of Vyukov's bounded queue: the record's fields and a
 * 32-bit sequence number in 32 bytes, two slots per cache line (the
 * sequence is compared as a signed difference, so it may wrap). */
typedef struct trip__slot {
    int64_t wall_ns;
    int64_t latency_ns;
    int32_t breaker_id;
    int8_t outcome;
    uint8_t state, decision, slow;
    float weight;
    _Atomic uint32_t seq;
} trip__slot;

_Static_assert(sizeof(trip__slot) == 32, "a ring slot is 32 bytes");

/* A growable array of rows queued for the writer (rollups, transitions,
 * baselines), guarded by the store's queue mutex. */
typedef struct trip__rows {
    void *p;
    size_t n, cap, size;
} trip__rows;

/* A name known to this store, with its database id (or -1 until the
 * database has accepted it). */
typedef struct trip__name {
    char *name;
    char *config_json;
    int id;    /* the id breakers were given */
    int db_id; /* the database's id, -1 while unresolved */
} trip__name;

struct trip_store {
    char *path;
    char *vfs;
    trip_store_opts opts;
    int memory; /* ":memory:": one connection for reads and writes */

    /* writer connection (also the reader for :memory: and read-only) */
    sqlite3 *db;
    pthread_mutex_t db_mu;
    /* reader connection for files opened for writing */
    sqlite3 *rdb;
    pthread_mutex_t rdb_mu;
    /* the read API's statements, prepared once on the reader connection
     * (rdb, else db) and reset after each use; under that connection's
     * mutex (store_read.c) */
    sqlite3_stmt *reads[TRIP__READS];

    /* the outcome ring: producers anywhere, one consumer (the writer) */
    trip__slot *ring;
    uint64_t mask;
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) _Atomic uint64_t head; /* written by the writer only */
    _Alignas(64) _Atomic int64_t sampled_out;
    _Atomic uint64_t sample_ctr[TRIP__SLOTS];
    _Atomic int64_t dropped_by[TRIP__SLOTS]; /* ring full + write errors */

    /* queued rows of the roll path */
    pthread_mutex_t q_mu;
    trip__rows q_rollups, q_transitions, q_baselines;
    _Atomic int64_t q_lost;

    /* names, guarded by names_mu */
    pthread_mutex_t names_mu;
    trip__name *names;
    size_t n_names, cap_names;

    /* writer thread and its wake-ups */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t w_mu;
    pthread_cond_t w_cond;    /* wakes the writer */
    pthread_cond_t done_cond; /* wakes flush() waiters */
    int stop;
    uint64_t flush_req;  /* generation asked for */
    uint64_t flush_done; /* generation the writer finished */

    /* status, written by the writer (and open/register) */
    _Atomic int status;
    pthread_mutex_t msg_mu;
    char message[256];
    _Atomic int64_t written, dropped_error, rollups_written, held;
    _Atomic int64_t transitions_written, batches, write_errors, retries;
    _Atomic int64_t reopens;
    _Atomic int remap; /* ids handed out may differ from database ids */
};

/* ---- store_open.c --------------------------------------------------- */

/* Map a SQLite result code to a tripsense status. */
int trip__sqlite_status(int rc);

/* Record an error as the store's status and message (rc a SQLite code);
 * returns the tripsense status. */
int trip__store_set_error(trip_store *s, sqlite3 *db, int rc, const char *what);
/* The same with the message given (one saved before it was replaced). */
int trip__store_set_error_msg(trip_store *s, int rc, const char *what,
                              const char *msg);
void trip__store_set_ok(trip_store *s);

/* The file was deleted or replaced: close both connections and open the
 * path again (a new file gets the schema). db_mu held by the caller.
 * TRIP_OK or an error status (the store keeps retrying). */
int trip__store_reconnect(trip_store *s);

/* Forget every name's database id (after a reconnect). */
void trip__store_forget_ids(trip_store *s);

/* ---- store_read.c ----------------------------------------------------- */

/* Finalize the read API's prepared statements: before the connections
 * close (a connection with statements left does not close). Every
 * reader excluded: db_mu and rdb_mu held, or the store being freed. */
void trip__store_forget_reads(trip_store *s);

/* Create or check the schema on db; TRIP_OK or an error status with the
 * message set through trip__fail. */
int trip__store_schema(sqlite3 *db, const char *path, int read_only);

/* ---- store_names.c ---------------------------------------------------- */

/* Insert or update a breaker row and return its database id; the caller
 * holds db_mu. SQLite result code. */
int trip__store_upsert_name(sqlite3 *db, const char *name, const char *cfg,
                            int *db_id);

/* The database id for a breaker id, registering it if needed (writer
 * only, db_mu held). -1 if the database cannot say yet. */
int trip__store_resolve(trip_store *s, int id);

/* ---- store_writer.c --------------------------------------------------- */

void *trip__store_writer_main(void *arg);

/* ---- store_rows.c ------------------------------------------------------- */

int trip__rows_push(trip__rows *r, const void *row, size_t count);
void trip__rows_free(trip__rows *r);

#endif /* TRIPSENSE_STORE_IMPL_H */
