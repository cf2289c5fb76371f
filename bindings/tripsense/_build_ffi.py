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
"""

GLUE_SOURCE = """
#include <stddef.h>

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
"""

ffibuilder = FFI()
ffibuilder.cdef(read_cdef(SOURCES))
ffibuilder.cdef(GLUE_CDEF)
ffibuilder.set_source(
    "tripsense._tripsense",
    '#include "tripsense/tripsense.h"\n' + GLUE_SOURCE,
    sources=SOURCES,
    include_dirs=[_rel(ROOT / d) for d in ("include", "libcore", "adaptive")]
    + [_rel(ROOT) or "."],
    define_macros=[("_POSIX_C_SOURCE", "200809L")],
    extra_compile_args=["-std=c11", "-fvisibility=hidden"],
    libraries=["sqlite3", "gsl", "gslcblas", "m", "pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
