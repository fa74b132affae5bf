/* ext_invoke: Python arguments -> one call of swiftrcnn.h, by the function's generated description. Every rule
   about shapes and values is the library's; this file only checks what C needs to make the call (argument count,
   buffer formats, integer ranges, list lengths). */
#include "marshal.h"

#include <string.h>

/* The Python objects behind one call's arguments, released together. */
typedef struct {
    ext_array single[EXT_MAX_PARAMS];
    struct {
        PyObject *seq;       /* PySequence_Fast of the argument: holds its items while the call runs */
        ext_array *held;     /* EXT_ARRAY_LIST: one buffer per item */
        srcnn_array *arrays; /* ... and their descriptions, contiguous for the C call */
        const char **strings;
        Py_ssize_t got;
    } list[EXT_MAX_PARAMS];
    int64_t counts[EXT_MAX_PARAMS];
} call_state;

static void state_release(call_state *s, int n) {
    for (int i = 0; i < n; i++) {
        ext_array_release(&s->single[i]);
        for (Py_ssize_t j = 0; j < s->list[i].got; j++)
            ext_array_release(&s->list[i].held[j]);
        PyMem_Free(s->list[i].held);
        PyMem_Free(s->list[i].arrays);
        PyMem_Free(s->list[i].strings);
        Py_XDECREF(s->list[i].seq);
    }
}

/* `obj` as a Python int (a new reference); TypeError naming the argument for non-integers. */
static PyObject *get_index(PyObject *obj, const char *name) {
    PyObject *index = PyNumber_Index(obj);
    if (!index) PyErr_Format(PyExc_TypeError, "%s: expected an int, got %.100s", name, Py_TYPE(obj)->tp_name);
    return index;
}

/* An integer argument in [lo, hi]; TypeError for non-integers, ValueError out of range. */
static int get_int(PyObject *obj, const char *name, long long lo, long long hi, long long *out) {
    PyObject *index = get_index(obj, name);
    if (!index) return -1;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s: %S is outside [%lld, %lld]", name, obj, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Sets list parameter i's length parameter, or checks it against the length another list set. */
static int set_length(const ext_op *op, ext_value *v, int *length_set, int i, Py_ssize_t n) {
    int l = op->params[i].length;
    if (length_set[l] && v[l].i64 != (int64_t)n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %lld entries (as many as the other list of %s), got %zd",
                     op->params[i].name, (long long)v[l].i64, op->params[l].name, n);
        return -1;
    }
    v[l].i64 = (int64_t)n;
    length_set[l] = 1;
    return 0;
}

static int get_array_list(const ext_op *op, call_state *s, ext_value *v, int *length_set, int i, PyObject *obj) {
    const char *name = op->params[i].name;
    PyObject *seq = PySequence_Fast(obj, "expected a sequence of arrays");
    if (!seq) {
        PyErr_Format(PyExc_TypeError, "%s: expected a sequence of arrays, got %.100s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    s->list[i].seq = seq;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    size_t room = n > 0 ? (size_t)n : 1;
    s->list[i].held = PyMem_Calloc(room, sizeof(ext_array));
    s->list[i].arrays = PyMem_Calloc(room, sizeof(srcnn_array));
    if (!s->list[i].held || !s->list[i].arrays) {
        PyErr_NoMemory();
        return -1;
    }
    char item[160];
    for (Py_ssize_t j = 0; j < n; j++) {
        snprintf(item, sizeof item, "%s[%zd]", name, j);
        if (ext_array_get(PySequence_Fast_GET_ITEM(seq, j), item, 0, &s->list[i].held[j]) != 0) return -1;
        s->list[i].got = j + 1;
        s->list[i].arrays[j] = s->list[i].held[j].array;
    }
    v[i].arrays = s->list[i].arrays;
    return set_length(op, v, length_set, i, n);
}

static int get_string_list(const ext_op *op, call_state *s, ext_value *v, int *length_set, int i, PyObject *obj) {
    const char *name = op->params[i].name;
    PyObject *seq = PySequence_Fast(obj, "expected a sequence of str");
    if (!seq) {
        PyErr_Format(PyExc_TypeError, "%s: expected a sequence of str, got %.100s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    s->list[i].seq = seq;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    s->list[i].strings = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(char *));
    if (!s->list[i].strings) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *str = PySequence_Fast_GET_ITEM(seq, j);
        if (!PyUnicode_Check(str)) {
            PyErr_Format(PyExc_TypeError, "%s[%zd]: expected str, got %.100s", name, j, Py_TYPE(str)->tp_name);
            return -1;
        }
        /* Valid while `seq` holds the str. */
        if (!(s->list[i].strings[j] = PyUnicode_AsUTF8(str))) return -1;
    }
    v[i].strings = s->list[i].strings;
    return set_length(op, v, length_set, i, n);
}

/* Converts Python argument `obj` for parameter i. Returns 0, or -1 with an exception set. */
static int get_argument(const ext_op *op, call_state *s, ext_value *v, int *length_set, int i, PyObject *obj) {
    const ext_param *p = &op->params[i];
    int kind = p->kind & EXT_KIND_MASK;
    long long n;
    if ((p->kind & EXT_OPTIONAL) && obj == Py_None) {
        v[i].array = NULL;
        return 0;
    }
    switch (kind) {
    case EXT_ARRAY_IN:
    case EXT_ARRAY_OUT:
        if (ext_array_get(obj, p->name, kind == EXT_ARRAY_OUT, &s->single[i]) != 0) return -1;
        v[i].array = &s->single[i].array;
        return 0;
    case EXT_ARRAY_LIST: return get_array_list(op, s, v, length_set, i, obj);
    case EXT_STRING_LIST: return get_string_list(op, s, v, length_set, i, obj);
    case EXT_INT32:
        if (get_int(obj, p->name, INT32_MIN, INT32_MAX, &n) != 0) return -1;
        v[i].i32 = (int32_t)n;
        return 0;
    case EXT_INT64:
        if (get_int(obj, p->name, INT64_MIN, INT64_MAX, &n) != 0) return -1;
        v[i].i64 = (int64_t)n;
        return 0;
    case EXT_UINT64: {
        PyObject *index = get_index(obj, p->name);
        if (!index) return -1;
        unsigned long long u = PyLong_AsUnsignedLongLong(index);
        Py_DECREF(index);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s: %S is outside [0, 2**64)", p->name, obj);
            return -1;
        }
        v[i].u64 = u;
        return 0;
    }
    case EXT_DOUBLE: {
        double d = PyFloat_AsDouble(obj);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: expected a number, got %.100s", p->name, Py_TYPE(obj)->tp_name);
            return -1;
        }
        v[i].f64 = d;
        return 0;
    }
    case EXT_STRING:
        if (!PyUnicode_Check(obj)) {
            PyErr_Format(PyExc_TypeError, "%s: expected str, got %.100s", p->name, Py_TYPE(obj)->tp_name);
            return -1;
        }
        v[i].str = PyUnicode_AsUTF8(obj); /* valid while the argument tuple holds it */
        return v[i].str ? 0 : -1;
    }
    PyErr_Format(PyExc_SystemError, "swiftrcnn._C.%s: parameter %s has unknown kind %d", op->name, p->name, kind);
    return -1;
}

PyObject *ext_invoke(const ext_op *op, PyObject *args) {
    if (op->count > EXT_MAX_PARAMS) {
        PyErr_Format(PyExc_SystemError, "swiftrcnn._C.%s: too many parameters", op->name);
        return NULL;
    }
    int expected = 0, counts = 0;
    for (int i = 0; i < op->count; i++) {
        int kind = op->params[i].kind & EXT_KIND_MASK;
        if (kind == EXT_COUNT)
            counts++;
        else if (kind != EXT_LENGTH)
            expected++;
    }
    Py_ssize_t given = PyTuple_GET_SIZE(args);
    if (given != expected) {
        PyErr_Format(PyExc_TypeError, "%s() takes %d arguments (%zd given)", op->name, expected, given);
        return NULL;
    }
    call_state *s = PyMem_Calloc(1, sizeof(call_state));
    if (!s) return PyErr_NoMemory();
    ext_value v[EXT_MAX_PARAMS];
    int length_set[EXT_MAX_PARAMS] = {0};
    memset(v, 0, sizeof v);
    PyObject *result = NULL;
    Py_ssize_t a = 0;
    for (int i = 0; i < op->count; i++) {
        int kind = op->params[i].kind & EXT_KIND_MASK;
        if (kind == EXT_COUNT) {
            v[i].count = &s->counts[i];
        } else if (kind != EXT_LENGTH && get_argument(op, s, v, length_set, i, PyTuple_GET_ITEM(args, a++)) != 0) {
            goto done;
        }
    }
    char err[SRCNN_ERR_CAPACITY];
    err[0] = 0;
    int32_t status;
    Py_BEGIN_ALLOW_THREADS status = op->call(v, err);
    Py_END_ALLOW_THREADS if (status != SRCNN_OK) {
        ext_raise(status, err);
        goto done;
    }
    if (counts == 0) {
        Py_INCREF(Py_None);
        result = Py_None;
    } else if (counts == 1) {
        for (int i = 0; i < op->count; i++)
            if ((op->params[i].kind & EXT_KIND_MASK) == EXT_COUNT) result = PyLong_FromLongLong(s->counts[i]);
    } else if ((result = PyTuple_New(counts))) {
        Py_ssize_t k = 0;
        for (int i = 0; i < op->count; i++) {
            if ((op->params[i].kind & EXT_KIND_MASK) != EXT_COUNT) continue;
            PyObject *c = PyLong_FromLongLong(s->counts[i]);
            if (!c) {
                Py_CLEAR(result);
                break;
            }
            PyTuple_SET_ITEM(result, k++, c);
        }
    }
done:
    state_release(s, op->count);
    PyMem_Free(s);
    return result;
}

/* A generated function: `self` is a capsule holding its ext_op. */
static PyObject *generated_function(PyObject *self, PyObject *args) {
    const ext_op *op = PyCapsule_GetPointer(self, "swiftrcnn._C.op");
    return op ? ext_invoke(op, args) : NULL;
}

int ext_add_generated(PyObject *module) {
    Py_ssize_t n = 0;
    while (ext_ops[n].name)
        n++;
    /* Method definitions must outlive the functions: allocated once per module, never freed. */
    PyMethodDef *defs = PyMem_Calloc((size_t)n + 1, sizeof(PyMethodDef));
    if (!defs) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *module_name = PyModule_GetNameObject(module);
    if (!module_name) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        defs[i] = (PyMethodDef){ext_ops[i].name, generated_function, METH_VARARGS, ext_ops[i].doc};
        PyObject *capsule = PyCapsule_New((void *)&ext_ops[i], "swiftrcnn._C.op", NULL);
        PyObject *f = capsule ? PyCFunction_NewEx(&defs[i], capsule, module_name) : NULL;
        Py_XDECREF(capsule);
        if (!f || PyModule_AddObject(module, ext_ops[i].name, f) != 0) {
            Py_XDECREF(f);
            Py_DECREF(module_name);
            return -1;
        }
    }
    Py_DECREF(module_name);
    for (const ext_constant *c = ext_constants; c->name; c++) {
        int st = c->string ? PyModule_AddStringConstant(module, c->name, c->string)
                           : PyModule_AddObject(module, c->name, PyLong_FromLongLong(c->value));
        if (st != 0) return -1;
    }
    return 0;
}
