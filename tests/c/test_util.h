/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Helpers shared by the cmocka tests: float comparison and a fake clock. */
#ifndef TRIPSENSE_TEST_UTIL_H
#define TRIPSENSE_TEST_UTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

/* cmocka 1.1.5 has no double assert: compare with a relative tolerance
 * (absolute below 1e-300), NaN equal to NaN. */
#define assert_close(a, b, rel)                                                \
    assert_close_((a), (b), (rel), __FILE__, __LINE__)
static inline void
assert_close_(double a, double b, double rel, const char *file, int line)
{
    if (isnan(a) && isnan(b))
        return;
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    double tol = rel * (scale > 1e-300 ? scale : 1e-300);
    if (!(fabs(a - b) <= tol)) {
        print_error("%.17g != %.17g (rel %.3g)\n", a, b, rel);
        _fail(file, line);
    }
}

#define TEST_S_ 1000000000LL
#define TEST_MS_ 1000000LL

/* A number from the environment variable `name`, or def when it is unset or
 * not in (0, max]. Two such knobs let the slow tests run under memcheck
 * (mk/reliability.mk) without changing their normal runs:
 * TRIP_SIM_SCALE (default 1) shortens the long simulations to that fraction
 * of their simulated time, with a floor that keeps every code path;
 * TRIP_TEST_SLOWDOWN (default 1) stretches the real-time waits of the
 * multi-process tests by that factor. */
static inline double
test_env_double(const char *name, double def, double max)
{
    const char *s = getenv(name);
    double v = s ? strtod(s, NULL) : def;
    return v > 0 && v <= max ? v : def;
}

/* ---- golden files of tests/data (format: tests/data/make_golden.py) ---- */

#include <stdlib.h>
#include <string.h>

#define GOLDEN_MAX_COLS_ 16
#define GOLDEN_MAX_PARAMS_ 16

/* A golden table: row r, column c is d[r * ncols + c] (as a double) and
 * ll[r * ncols + c] (as an integer, exact for times in ns). */
typedef struct golden {
    size_t nrows, ncols;
    double *d;
    long long *ll;
    char keys[GOLDEN_MAX_PARAMS_][64];
    char vals[GOLDEN_MAX_PARAMS_][1024];
    int nparams;
} golden;

static inline void
golden_row_(golden *g, char *line)
{
    size_t c = 0;
    double d[GOLDEN_MAX_COLS_];
    long long ll[GOLDEN_MAX_COLS_];
    for (char *tok = strtok(line, " \t\r\n"); tok && c < GOLDEN_MAX_COLS_;
         tok = strtok(NULL, " \t\r\n"), c++) {
        d[c] = strtod(tok, NULL);
        ll[c] = strtoll(tok, NULL, 10);
    }
    if (g->nrows == 0)
        g->ncols = c;
    g->d = realloc(g->d, (g->nrows + 1) * g->ncols * sizeof *g->d);
    g->ll = realloc(g->ll, (g->nrows + 1) * g->ncols * sizeof *g->ll);
    assert_non_null(g->d);
    assert_non_null(g->ll);
    memcpy(g->d + g->nrows * g->ncols, d, g->ncols * sizeof *d);
    memcpy(g->ll + g->nrows * g->ncols, ll, g->ncols * sizeof *ll);
    g->nrows++;
}

/* Load tests/data/<name>; fails the test if it cannot. */
static inline golden *
golden_load(const char *name)
{
    char path[1024], line[4096];
    snprintf(path, sizeof path, "%s/%s", TRIP_TEST_DATA_DIR, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        print_error("cannot open %s\n", path);
    assert_non_null(f);
    golden *g = calloc(1, sizeof *g);
    assert_non_null(g);
    while (fgets(line, sizeof line, f)) {
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        if (*p >= 'a' && *p <= 'z' && strncmp(p, "nan", 3) != 0 &&
            strncmp(p, "inf", 3) != 0 && g->nparams < GOLDEN_MAX_PARAMS_) {
            size_t k = strcspn(p, " \t");
            snprintf(g->keys[g->nparams], 64, "%.*s", (int)k, p);
            snprintf(g->vals[g->nparams++], 1024, "%s", p + k + 1);
            continue;
        }
        golden_row_(g, p);
    }
    fclose(f);
    return g;
}

/* The text of parameter key, or fail the test. */
static inline const char *
golden_param(const golden *g, const char *key)
{
    for (int i = 0; i < g->nparams; i++)
        if (strcmp(g->keys[i], key) == 0)
            return g->vals[i];
    print_error("golden parameter %s missing\n", key);
    fail();
    return "";
}

static inline void
golden_free(golden *g)
{
    if (g == NULL)
        return;
    free(g->d);
    free(g->ll);
    free(g);
}

#endif /* TRIPSENSE_TEST_UTIL_H */
