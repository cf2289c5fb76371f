# SPDX-License-Identifier: GPL-3.0-or-later
"""The hand-written cdef must match the public headers exactly.

Both are parsed with pycparser (a dependency of cffi): every TRIP_API
function, every struct field (name, type and order) and every enum value in
include/tripsense/*.h must appear identically in bindings/tripsense/_cdef.h,
and the cdef may not declare API the headers do not have.
"""
import copy
import re
from pathlib import Path

import pytest
from pycparser import c_ast, c_generator, c_parser

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = ROOT / "include" / "tripsense"
# In the order tripsense.h includes them, so each type is declared before use.
HEADERS = [INCLUDE / name for name in re.findall(
    r'#include "(\w+\.h)"', (INCLUDE / "tripsense.h").read_text())]
CDEF = ROOT / "bindings" / "tripsense" / "_cdef.h"

PRELUDE = """
typedef long int64_t; typedef unsigned long uint64_t;
typedef int int32_t; typedef unsigned int uint32_t;
typedef unsigned char uint8_t; typedef unsigned long size_t;
"""


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _preprocess_header(text):
    """Turn a public header into plain C that pycparser accepts."""
    status = re.findall(r"X\((\w+),\s*(-?\d+),", text)
    text = _strip_comments(text)
    text = re.sub(r'#ifdef __cplusplus\s*extern "C" \{\s*#endif', "", text)
    text = re.sub(r"#ifdef __cplusplus\s*\}\s*#endif", "", text)
    text = re.sub(r"^\s*#(?:[^\n]*\\\n)*[^\n]*", "", text, flags=re.M)
    if status:
        body = ", ".join(f"TRIP_{n} = {v}" for n, v in status)
        text = text.replace("TRIP_STATUS_MAP(TRIP_STATUS_ENUM_)", body)
    return text.replace("TRIP_API", "")


def _preprocess_cdef(text):
    text = _strip_comments(text)
    return re.sub(r'extern "Python"[^;]*;', "", text)


def _parse(text):
    return c_parser.CParser().parse(PRELUDE + text)


def _anonymous(node):
    """Copy a type node with every declared name removed."""
    node = copy.deepcopy(node)

    class V(c_ast.NodeVisitor):
        def visit_TypeDecl(self, n):
            n.declname = None
            self.generic_visit(n)

        def visit_Decl(self, n):
            n.name = None
            self.generic_visit(n)

    V().visit(node)
    return node


def _render(node):
    return c_generator.CGenerator().visit(_anonymous(node)).strip()


def _api(ast):
    funcs, structs, enums = {}, {}, {}

    class V(c_ast.NodeVisitor):
        def visit_Decl(self, n):
            if isinstance(n.type, c_ast.FuncDecl):
                funcs[n.name] = _render(n.type)
            self.generic_visit(n)

        def visit_Struct(self, n):
            if n.decls is not None:
                structs[n.name] = [(d.name, _render(d.type)) for d in n.decls]

        def visit_Enum(self, n):
            if n.values is not None:
                enums[n.name] = [
                    (e.name, c_generator.CGenerator().visit(e.value))
                    for e in n.values.enumerators
                ]

    V().visit(ast)
    return funcs, structs, enums


@pytest.fixture(scope="module")
def apis():
    assert HEADERS, "no public headers found"
    listed = {h.name for h in HEADERS} | {"tripsense.h"}
    assert listed == {h.name for h in INCLUDE.glob("*.h")}, \
        "a public header is not included by tripsense.h"
    header = _api(_parse("\n".join(_preprocess_header(h.read_text())
                                   for h in HEADERS)))
    cdef = _api(_parse(_preprocess_cdef(CDEF.read_text())))
    return header, cdef


def test_headers_declare_an_api(apis):
    (funcs, structs, enums), _ = apis
    assert "trip_allow" in funcs and "trip_snapshot" in structs
    assert len(funcs) > 50


def test_every_function_is_in_the_cdef_with_the_same_signature(apis):
    (hf, _, _), (cf, _, _) = apis
    missing = sorted(set(hf) - set(cf))
    assert not missing, f"functions missing from _cdef.h: {missing}"
    differ = {k: (hf[k], cf[k]) for k in hf if hf[k] != cf[k]}
    assert not differ, f"signatures differ (header, cdef): {differ}"
    extra = sorted(set(cf) - set(hf))
    assert not extra, f"_cdef.h declares functions the headers lack: {extra}"


def test_every_struct_field_is_in_the_cdef_in_order(apis):
    (_, hs, _), (_, cs, _) = apis
    missing = sorted(set(hs) - set(cs))
    assert not missing, f"structs missing from _cdef.h: {missing}"
    for name, fields in hs.items():
        assert cs[name] == fields, f"struct {name} differs from its header"


def test_every_enum_value_is_in_the_cdef(apis):
    (_, _, he), (_, _, ce) = apis
    for name, values in he.items():
        assert ce.get(name) == values, f"enum {name} differs from its header"


def test_the_checker_detects_a_drift(apis):
    (hf, hs, _), _ = apis
    text = _preprocess_cdef(CDEF.read_text())
    broken = text.replace("int64_t in_flight;", "int in_flight;", 1)
    broken = broken.replace("int64_t rejected, limited, late, in_flight;",
                            "int64_t rejected, limited, late;")
    _, bs, _ = _api(_parse(broken))
    assert bs["trip_snapshot"] != hs["trip_snapshot"]


def test_every_declared_function_is_linked():
    from tripsense._lowlevel import lib

    funcs, _, _ = _api(_parse(_preprocess_cdef(CDEF.read_text())))
    optional = set(re.findall(r"@optional (\w+)", CDEF.read_text()))
    absent = [f for f in funcs if f not in optional and not hasattr(lib, f)]
    assert not absent, f"declared but not in the extension: {absent}"
