/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The Python hot path as CPython functions that keep the GIL.
 *
 * Not compiled on its own: _build_ffi.py appends this file to the cffi
 * module's source, after the glue of GLUE_SOURCE (tripsense_py_call and the
 * tripsense_py_* functions), where cffi has already included Python.h.
 *
 * Why: cffi wraps every C call in Py_BEGIN/END_ALLOW_THREADS and has no way
 * to keep the GIL for chosen functions. A guarded call makes two C calls
 * (admit, record), so threads handed the GIL over twice per call: with four
 * threads on two cores a call cost 7.4 times one thread's (bench/RESULTS.md).
 * These functions call the same glue with the GIL held. They are for the
 * calls that do not wait: admitting and recording do no I/O and take no
 * lock on the closed path. A state change takes the breaker's mutex; no
 * holder of it ever calls into Python or waits for the GIL (listeners run
 * after it is released, and trip_breaker_attach() does its database work
 * without it), so holding the GIL there cannot deadlock nor wait on I/O
 * (docs/python.md). Everything that may
 * wait (store open, flush, close, reads, replay, attach) stays a cffi call
 * and releases the GIL.
 *
 * Python gets them as the module tripsense._tripsense_hot, which
 * tripsense_py_hot_install() creates and puts in sys.modules; its functions
 * have the names, arguments and results of the cffi functions they replace.
 * The tripsense_py_call * argument is converted by cffi's own converter
 * (_cffi_to_c_pointer, what cffi's wrappers use), so a wrong argument raises
 * the TypeError cffi would. PyPy has neither Python's C API in cffi modules
 * nor a GIL hand-off to avoid: there the install answers
 * TRIPSENSE_PY_NO_HOT and Python keeps cffi's functions. */

#define TRIPSENSE_PY_NO_HOT 1

#ifndef PYPY_VERSION

/* ffi.typeof("tripsense_py_call *"), given by bind(); a strong reference */
static PyObject *tripsense_py_hot_type_;

/* The tripsense_py_call * in o; 0, or -1 with an exception set. */
static int
tripsense_py_hot_arg_(PyObject *o, tripsense_py_call **out)
{
    if (tripsense_py_hot_type_ == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "tripsense._tripsense_hot: bind() was not called");
        return -1;
    }
    *out = (tripsense_py_call *)_cffi_to_c_pointer(
        o, (struct _cffi_ctypedescr *)tripsense_py_hot_type_);
    if (*out != NULL)
        return 0;
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError,
                        "tripsense_py_call * argument is NULL");
    return -1;
}

/* A C int from a Python int, as cffi converts one (OverflowError, or the
 * TypeError of PyLong_AsLong). -1 with an exception set on error. */
static int
tripsense_py_hot_int_(PyObject *o, int *out)
{
    long v = PyLong_AsLong(o);

    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < INT_MIN || v > INT_MAX) {
        PyErr_Format(PyExc_OverflowError, "integer %ld does not fit 'int'", v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The (call, int[, double]) arguments of a METH_VARARGS function. */
static int
tripsense_py_hot_args_(PyObject *args, Py_ssize_t n, const char *name,
                       tripsense_py_call **c, int *i, double *d)
{
    if (PyTuple_Size(args) != n) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "%s expected %zd arguments, got %zd",
                         name, n, PyTuple_Size(args));
        return -1;
    }
    if (tripsense_py_hot_arg_(PyTuple_GetItem(args, 0), c) < 0 ||
        tripsense_py_hot_int_(PyTuple_GetItem(args, 1), i) < 0)
        return -1;
    if (n == 3) {
        *d = PyFloat_AsDouble(PyTuple_GetItem(args, 2));
        if (*d == -1.0 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* f_hot_(self, c): METH_O, the glue's f(c) and its result as an int. */
#define TRIPSENSE_PY_HOT_O_(f, from_c)                                         \
    static PyObject *f##_hot_(PyObject *self, PyObject *arg)                   \
    {                                                                          \
        tripsense_py_call *c;                                                  \
        (void)self;                                                            \
        if (tripsense_py_hot_arg_(arg, &c) < 0)                                \
            return NULL;                                                       \
        return from_c(f(c));                                                   \
    }

/* f_hot_(self, (c, i[, d])): METH_VARARGS, the glue's f with the n
 * arguments named in call, (c, i) or (c, i, d). */
#define TRIPSENSE_PY_HOT_V_(f, n, call)                                        \
    static PyObject *f##_hot_(PyObject *self, PyObject *args)                  \
    {                                                                          \
        tripsense_py_call *c;                                                  \
        int i;                                                                 \
        double d = 0.0;                                                        \
        (void)self;                                                            \
        (void)d;                                                               \
        if (tripsense_py_hot_args_(args, n, #f, &c, &i, &d) < 0)               \
            return NULL;                                                       \
        return PyLong_FromLong(f call);                                        \
    }

TRIPSENSE_PY_HOT_O_(tripsense_py_allow, PyLong_FromLong)
TRIPSENSE_PY_HOT_V_(tripsense_py_allow_priority, 2, (c, i))
TRIPSENSE_PY_HOT_O_(tripsense_py_success, PyLong_FromLong)
TRIPSENSE_PY_HOT_V_(tripsense_py_record, 2, (c, i))
TRIPSENSE_PY_HOT_V_(tripsense_py_record_weighted, 3, (c, i, d))
TRIPSENSE_PY_HOT_O_(tripsense_py_enter, PyLong_FromLongLong)
TRIPSENSE_PY_HOT_O_(tripsense_py_exit_success, PyLong_FromLong)
TRIPSENSE_PY_HOT_V_(tripsense_py_exit, 3, (c, i, d))

/* bind(ffi.typeof("tripsense_py_call *")): the type the others convert
 * their first argument to. Called once, before any other function. */
static PyObject *
tripsense_py_hot_bind_(PyObject *self, PyObject *ctype)
{
    PyObject *old = tripsense_py_hot_type_;

    (void)self;
    Py_INCREF(ctype);
    tripsense_py_hot_type_ = ctype;
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

/* clang-format off */
#define TRIPSENSE_PY_HOT_DEF_(f, flags, args)                                 \
    {#f, f##_hot_, flags, #f args ", keeping the GIL."}
/* clang-format on */

static PyMethodDef tripsense_py_hot_methods_[] = {
    {"bind", tripsense_py_hot_bind_, METH_O,
     "bind(ctype): ffi.typeof('tripsense_py_call *'), before any call."},
    TRIPSENSE_PY_HOT_DEF_(tripsense_py_allow, METH_O, "(c)"),
    TRIPSENSE_PY_HOT_DEF_(tripsense_py_allow_priority, METH_VARARGS,
                          "(c, priority)"),
    TRIPSENSE_PY_HOT_DEF_(tripsense_py_success, METH_O, "(c)"),
    TRIPSENSE_PY_HOT_DEF_(tripsense_py_record, METH_VARARGS, "(c, outcome)"),
    TRIPSENSE_PY_HOT_DEF_(tripsense_py_record_weighted, METH_VARARGS,
                          "(c, outcome, weight)"),
    TRIPSENSE_PY_HOT_DEF_(tripsense_py_enter, METH_O, "(owner)"),
    TRIPSENSE_PY_HOT_DEF_(tripsense_py_exit_success, METH_O, "(owner)"),
    TRIPSENSE_PY_HOT_DEF_(tripsense_py_exit, METH_VARARGS,
                          "(owner, outcome, weight)"),
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef tripsense_py_hot_def_ = {
    PyModuleDef_HEAD_INIT,
    "tripsense._tripsense_hot",
    "The hot-path glue of tripsense._tripsense as functions that keep the "
    "GIL (see _hotpath.c).",
    -1,
    tripsense_py_hot_methods_,
    NULL,
    NULL,
    NULL,
    NULL};

/* Create tripsense._tripsense_hot and put it in sys.modules: 0, or -1
 * (no memory; the exception is printed, as cffi does for callbacks). cffi
 * calls this without the GIL, so it takes it. */
static int
tripsense_py_hot_install(void)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *m = PyModule_Create(&tripsense_py_hot_def_);
    int rc = -1;

    if (m != NULL)
        rc = PyDict_SetItemString(PyImport_GetModuleDict(),
                                  "tripsense._tripsense_hot", m);
    Py_XDECREF(m);
    if (rc != 0) {
        PyErr_Print();
        rc = -1;
    }
    PyGILState_Release(g);
    return rc;
}

#else /* PYPY_VERSION */

static int
tripsense_py_hot_install(void)
{
    return TRIPSENSE_PY_NO_HOT;
}

#endif
