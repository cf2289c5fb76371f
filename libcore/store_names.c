/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Breaker names in a store: registration (even while the database fails),
 * id resolution for the writer, and lookups. */
#include <string.h>

#include "store_impl.h"

int
trip__store_upsert_name(sqlite3 *db, const char *name, const char *cfg,
                        int *db_id)
{
    static const char *sql =
        "INSERT INTO breakers(name, config, version) VALUES(?1, ?2, ?3) "
        "ON CONFLICT(name) DO UPDATE SET config = excluded.config, "
        "version = excluded.version RETURNING id";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, cfg ? cfg : "{}", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, trip_version(), -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *db_id = sqlite3_column_int(st, 0);
            rc = sqlite3_step(st);
        }
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static trip__name *
trip_find_(trip_store *s, const char *name)
{
    for (size_t i = 0; i < s->n_names; i++)
        if (strcmp(s->names[i].name, name) == 0)
            return &s->names[i];
    return NULL;
}

static trip__name *
trip_add_name_(trip_store *s, const char *name)
{
    if (s->n_names == s->cap_names) {
        size_t cap = s->cap_names ? 2 * s->cap_names : 16;
        trip__name *p = trip__realloc(s->names, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        s->names = p;
        s->cap_names = cap;
    }
    trip__name *e = &s->names[s->n_names];
    memset(e, 0, sizeof *e);
    e->name = trip__strdup(name);
    if (e->name == NULL)
        return NULL;
    e->id = -1; /* set once the database has been tried */
    e->db_id = -1;
    s->n_names++;
    return e;
}

/* Try the database for entry e; db_mu and names_mu held. */
static void
trip_register_db_(trip_store *s, trip__name *e)
{
    int id = -1;
    int rc = trip__store_upsert_name(s->db, e->name, e->config_json, &id);
    if (rc != SQLITE_OK) {
        trip__store_set_error(s, s->db, rc, "cannot register a breaker in");
        return;
    }
    e->db_id = id;
}

int
trip__store_register(trip_store *s, const char *name, const trip_config *cfg,
                     int *breaker_id)
{
    if (s == NULL || name == NULL || breaker_id == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_attach: NULL argument");
    if (s->opts.read_only)
        return trip__fail(TRIP_EINVAL,
                          "trip_breaker_attach: history %s was "
                          "opened read-only",
                          s->path);
    char *json = NULL;
    if (trip_config_to_json(cfg, &json) != TRIP_OK)
        return TRIP_ENOMEM;
    pthread_mutex_lock(&s->db_mu);
    pthread_mutex_lock(&s->names_mu);
    int rc = TRIP_OK;
    trip__name *e = trip_find_(s, name);
    if (e == NULL)
        e = trip_add_name_(s, name);
    if (e == NULL) {
        rc = trip__fail(TRIP_ENOMEM, "trip_breaker_attach: out of memory");
        trip_string_free(json);
    } else {
        trip__free(e->config_json);
        e->config_json = trip__strdup(json);
        trip_string_free(json);
        trip_register_db_(s, e);
        /* the first id handed out for a name is kept for good: a
         * provisional one is mapped to the database's by the writer */
        if (e->id < 0)
            e->id = e->db_id >= 0
                        ? e->db_id
                        : TRIP__PROVISIONAL_BASE + (int)(e - s->names);
        *breaker_id = e->id;
    }
    pthread_mutex_unlock(&s->names_mu);
    pthread_mutex_unlock(&s->db_mu);
    return rc;
}

int
trip__store_resolve(trip_store *s, int id)
{
    if (id < TRIP__PROVISIONAL_BASE && !atomic_load(&s->remap))
        return id;
    pthread_mutex_lock(&s->names_mu);
    trip__name *e = NULL;
    if (id >= TRIP__PROVISIONAL_BASE) {
        size_t i = (size_t)(id - TRIP__PROVISIONAL_BASE);
        e = i < s->n_names ? &s->names[i] : NULL;
    } else {
        for (size_t i = 0; i < s->n_names && e == NULL; i++)
            if (s->names[i].id == id)
                e = &s->names[i];
    }
    if (e != NULL && e->db_id < 0)
        trip_register_db_(s, e);
    int out = e != NULL ? e->db_id : -1;
    pthread_mutex_unlock(&s->names_mu);
    return out;
}

void
trip__store_forget_ids(trip_store *s)
{
    pthread_mutex_lock(&s->names_mu);
    for (size_t i = 0; i < s->n_names; i++)
        s->names[i].db_id = -1;
    atomic_store(&s->remap, 1);
    pthread_mutex_unlock(&s->names_mu);
}
