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

#include <cmocka.h>

/* cmocka 1.1.5 has no double assert: compare with a relative tolerance
 * (absolute below 1e-300), NaN equal to NaN. */
#define assert_close(a, b, rel) assert_close_((a), (b), (rel), __FILE__, __LINE__)
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

#endif /* TRIPSENSE_TEST_UTIL_H */
