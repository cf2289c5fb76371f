# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the ``tripsense._tripsense`` extension with cffi in API mode.

The C sources come from ``sources.txt`` at the project root, the same list
CMake compiles, so the Python extension and the C library cannot differ.
For development only, ``TRIPSENSE_EXTRA_SOURCES`` (paths separated by
``os.pathsep``) appends further C files, e.g. a link stub for a module that
is still being written. Release builds never set it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _rel(path: Path) -> str:
    """Return path relative to the working directory when possible.

    setuptools refuses absolute source paths in some versions, and pip
    builds from the project root, where this gives ``libcore/x.c``.
    """
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def read_sources(root: Path = ROOT) -> list[str]:
    """Return the C sources listed in ``sources.txt`` (comments skipped)."""
    listing = root / "sources.txt"
    if not listing.exists():
        raise RuntimeError(
            f"{listing} not found: build from a checkout or an sdist of tripsense"
        )
    out = []
    for line in listing.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(_rel(root / line))
    extra = os.environ.get("TRIPSENSE_EXTRA_SOURCES", "")
    out.extend(_rel(Path(p)) for p in extra.split(os.pathsep) if p.strip())
    return out


_OPTIONAL = re.compile(
    r"/\* @optional (\w+)[^*]*\*/(.*?)/\* @end optional \*/", re.S
)


def read_cdef(sources: list[str]) -> str:
    """Return ``_cdef.h`` without the optional blocks no source defines.

    A block marked ``@optional name`` is kept only if one of the sources
    defines ``name`` (function bodies follow the house style: the name at
    the start of a line, or a one-line definition ending in ``{``).
    """
    text = (HERE / "_cdef.h").read_text()
    code = "\n".join(Path(s).read_text(errors="replace") for s in sources)

    def keep(m: re.Match) -> str:
        name = m.group(1)
        pat = rf"(^{name}\s*\()|(\b{name}\s*\([^;{{}}]*\)\s*\{{)"
        return m.group(2) if re.search(pat, code, re.M) else ""

    return _OPTIONAL.sub(keep, text)


SOURCES = read_sources()

# Glue for the Python hot path, compiled into the extension only (not part
# of the C API, so not in _cdef.h). cffi calls a function of one argument
# as METH_O, without packing a tuple and converting each argument: a call
# of these costs about half one of trip_allow(b, t). A tripsense_py_call
# holds the breaker with the ticket; Breaker clears b when it is closed,
# and the library answers TRIP_EINVAL for a NULL breaker. Anonymous
# structs and unions are C11, which the build asks for.
GLUE_CDEF = """
typedef struct tripsense_py_call {
    trip_breaker *b;
    union {
        trip_ticket t;
        struct {
            int64_t start_ns;
            uint64_t generation;
            int decision;
            int state;
        };
    };
} tripsense_py_call;
int tripsense_py_allow(tripsense_py_call *c);
int tripsense_py_allow_priority(tripsense_py_call *c, int priority);
int tripsense_py_success(tripsense_py_call *c);
int tripsense_py_record(tripsense_py_call *c, int outcome);
int tripsense_py_record_weighted(tripsense_py_call *c, int outcome,
                                 double weight);
#define TRIPSENSE_PY_NO_BLOCK 1
int64_t tripsense_py_enter(tripsense_py_call *owner);
int tripsense_py_exit_success(tripsense_py_call *owner);
int tripsense_py_exit(tripsense_py_call *owner, int outcome, double weight);
#define TRIPSENSE_PY_NO_HOT 1
int tripsense_py_hot_install(void);
"""

GLUE_SOURCE = """
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The ticket's first fields are also members of the call itself, so that
 * Python reads c.generation in one step instead of c.t.generation in two
 * (each step makes a Python object). The asserts keep the two in step. */
typedef struct tripsense_py_call {
    trip_breaker *b;
    union {
        trip_ticket t;
        struct {
            int64_t start_ns;
            uint64_t generation;
            int decision;
            int state;
        };
    };
} tripsense_py_call;

#define TRIPSENSE_PY_SAME_(f) \\
    _Static_assert(offsetof(tripsense_py_call, f) == \\
                       offsetof(tripsense_py_call, t) + offsetof(trip_ticket, f) \\
                   && sizeof(((tripsense_py_call *)0)->f) == \\
                       sizeof(((trip_ticket *)0)->f), \\
                   "tripsense_py_call." #f " is not trip_ticket." #f)
TRIPSENSE_PY_SAME_(start_ns);
TRIPSENSE_PY_SAME_(generation);
TRIPSENSE_PY_SAME_(decision);
TRIPSENSE_PY_SAME_(state);

static int tripsense_py_allow(tripsense_py_call *c)
{
    return trip_allow(c->b, &c->t);
}

static int tripsense_py_allow_priority(tripsense_py_call *c, int priority)
{
    return trip_allow_priority(c->b, &c->t, priority);
}

static int tripsense_py_success(tripsense_py_call *c)
{
    return trip_record(c->b, &c->t, TRIP_SUCCESS);
}

static int tripsense_py_record(tripsense_py_call *c, int outcome)
{
    return trip_record(c->b, &c->t, outcome);
}

/* the latency comes from the ticket, as in trip_record() */
static int tripsense_py_record_weighted(tripsense_py_call *c, int outcome,
                                        double weight)
{
    return trip_record_weighted(c->b, &c->t, outcome, -1.0, weight);
}

/* `with breaker:` blocks open in this thread, innermost last, each with
 * its ticket and its owner: the Breaker's own tripsense_py_call, whose b
 * is NULL once the breaker is closed. Keeping them here makes the
 * per-thread bookkeeping free for Python (the calls that admit and record
 * are made anyway). Blocks of one owner close last-in first-out; blocks of
 * different owners may close in any order (generators). The array grows by
 * doubling and is freed when its thread ends. */
#define TRIPSENSE_PY_NO_BLOCK 1

typedef struct tripsense_py_block {
    const tripsense_py_call *owner;
    trip_ticket t;
} tripsense_py_block;

static _Thread_local tripsense_py_block *tripsense_py_blocks_;
static _Thread_local size_t tripsense_py_depth_, tripsense_py_cap_;
static pthread_key_t tripsense_py_key_;
static pthread_once_t tripsense_py_once_ = PTHREAD_ONCE_INIT;
static int tripsense_py_key_ok_;

static void tripsense_py_key_init_(void)
{
    tripsense_py_key_ok_ = pthread_key_create(&tripsense_py_key_, free) == 0;
}

static int tripsense_py_grow_(void)
{
    size_t cap = tripsense_py_cap_ ? 2 * tripsense_py_cap_ : 8;
    tripsense_py_block *p;

    (void)pthread_once(&tripsense_py_once_, tripsense_py_key_init_);
    if (!tripsense_py_key_ok_)
        return TRIP_ENOMEM;
    /* a new array, registered before the old one is freed: the key holds
     * a live array at every moment, for the destructor at thread exit */
    p = malloc(cap * sizeof *p);
    if (p == NULL)
        return TRIP_ENOMEM;
    if (pthread_setspecific(tripsense_py_key_, p) != 0) {
        free(p);
        return TRIP_ENOMEM;
    }
    if (tripsense_py_depth_ > 0)
        memcpy(p, tripsense_py_blocks_, tripsense_py_depth_ * sizeof *p);
    free(tripsense_py_blocks_);
    tripsense_py_blocks_ = p;
    tripsense_py_cap_ = cap;
    return TRIP_OK;
}

/* Admit a block for owner: 0 on a pass, and the block is open in this
 * thread; a negative status on an error; on a refusal, the decision in
 * bits 0-1, the ticket's state in bits 2-4 and its generation (58 bits)
 * above, so that Python builds the refusal without a second call. */
static int64_t tripsense_py_enter(tripsense_py_call *owner)
{
    tripsense_py_block *blk;
    int d;

    if (tripsense_py_depth_ == tripsense_py_cap_) {
        d = tripsense_py_grow_();
        if (d != TRIP_OK)
            return d;
    }
    blk = &tripsense_py_blocks_[tripsense_py_depth_];
    d = trip_allow(owner->b, &blk->t);
    if (d < 0)
        return d;
    if (d != TRIP_PASS)
        return (int64_t)d | (int64_t)(blk->t.state & 7) << 2 |
               (int64_t)(blk->t.generation & ((UINT64_C(1) << 58) - 1)) << 5;
    blk->owner = owner;
    tripsense_py_depth_++;
    return TRIP_OK;
}

/* Close owner's innermost open block in this thread and record its outcome
 * (weight < 0: unweighted, as trip_record()). TRIPSENSE_PY_NO_BLOCK if
 * owner has no open block here; else as trip_record(), TRIP_EINVAL once
 * the breaker is closed (the block is closed all the same). */
static int tripsense_py_exit(tripsense_py_call *owner, int outcome,
                             double weight)
{
    size_t i = tripsense_py_depth_;
    trip_ticket t;

    while (i > 0 && tripsense_py_blocks_[i - 1].owner != owner)
        i--;
    if (i == 0)
        return TRIPSENSE_PY_NO_BLOCK;
    t = tripsense_py_blocks_[i - 1].t;
    memmove(&tripsense_py_blocks_[i - 1], &tripsense_py_blocks_[i],
            (tripsense_py_depth_ - i) * sizeof *tripsense_py_blocks_);
    tripsense_py_depth_--;
    if (weight < 0)
        return trip_record(owner->b, &t, outcome);
    return trip_record_weighted(owner->b, &t, outcome, -1.0, weight);
}

static int tripsense_py_exit_success(tripsense_py_call *owner)
{
    return tripsense_py_exit(owner, TRIP_SUCCESS, -1.0);
}
"""

# The functions above as CPython functions that keep the GIL, for the hot
# path (see its header); compiled into the same module, after GLUE_SOURCE.
HOT_SOURCE = (HERE / "_hotpath.c").read_text()

ffibuilder = FFI()
ffibuilder.cdef(read_cdef(SOURCES))
ffibuilder.cdef(GLUE_CDEF)
ffibuilder.set_source(
    "tripsense._tripsense",
    '#include "tripsense/tripsense.h"\n' + GLUE_SOURCE + HOT_SOURCE,
    sources=SOURCES,
    include_dirs=[_rel(ROOT / d) for d in ("include", "libcore", "adaptive")]
    + [_rel(ROOT) or "."],
    define_macros=[("_POSIX_C_SOURCE", "200809L")],
    extra_compile_args=["-std=c11", "-fvisibility=hidden"],
    libraries=["sqlite3", "gsl", "gslcblas", "m", "pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
