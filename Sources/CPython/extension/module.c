/* swiftrcnn._C: the thin CPython extension over libswiftrcnn_capi (swiftrcnn.h). The ops are bound from the header
   by scripts/gen_bindings.py (bindings.gen.c, through marshal.c); this file holds the buffer conversion they share
   and the runtime functions whose results are not a status; models.c binds the model handles, init.c the parameter
   initialisation. */
#include "marshal.h"
#include <string.h>

int ext_array_get(PyObject *obj, const char *name, int writable, ext_array *a) {
    memset(a, 0, sizeof(*a));
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &a->view, flags) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous%s numeric array, got %.100s", name,
                     writable ? " writable" : "", Py_TYPE(obj)->tp_name);
        return -1;
    }
    a->held = 1;
    const char *f = a->view.format ? a->view.format : "B";
    if (*f == '=' || *f == '<' || *f == '@') f++; /* native byte order only; little-endian x86-64 and arm64 */
    int32_t dtype = 0;
    if (f[1] == 0) {
        switch (f[0]) {
        case 'f': dtype = SRCNN_FLOAT32; break;
        case 'd': dtype = SRCNN_FLOAT64; break;
        case 'q':
        case 'l': dtype = a->view.itemsize == 8 ? SRCNN_INT64 : 0; break;
        case 'B':
        case '?': dtype = a->view.itemsize == 1 ? SRCNN_UINT8 : 0; break;
        }
    }
    if (dtype == 0) {
        PyErr_Format(PyExc_TypeError,
                     "%s: unsupported element format '%s' (expected float32, float64, int64 or "
                     "uint8)",
                     name, a->view.format ? a->view.format : "B");
        ext_array_release(a);
        return -1;
    }
    if (a->view.ndim > SRCNN_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: rank %d exceeds %d", name, a->view.ndim, SRCNN_MAX_DIMS);
        ext_array_release(a);
        return -1;
    }
    a->array.data = a->view.buf;
    a->array.ndim = a->view.ndim;
    a->array.dtype = dtype;
    for (int i = 0; i < a->view.ndim; i++)
        a->array.shape[i] = (int64_t)a->view.shape[i];
    return 0;
}

void ext_array_release(ext_array *a) {
    if (a->held) {
        PyBuffer_Release(&a->view);
        a->held = 0;
    }
}

int ext_args_add(ext_args *args, PyObject *obj, const char *name, int writable) {
    if (args->n >= EXT_MAX_ARRAYS) {
        PyErr_SetString(PyExc_RuntimeError, "swiftrcnn._C: too many array arguments");
        return -1;
    }
    if (ext_array_get(obj, name, writable, &args->a[args->n]) != 0) return -1;
    args->n++;
    return 0;
}

void ext_args_release(ext_args *args) {
    for (int i = 0; i < args->n; i++)
        ext_array_release(&args->a[i]);
    args->n = 0;
}

PyObject *ext_raise(int32_t status, const char *message) {
    PyObject *type;
    switch (status) {
    case SRCNN_VALUE_ERROR: type = PyExc_ValueError; break;
    case SRCNN_TYPE_ERROR: type = PyExc_TypeError; break;
    case SRCNN_MEMORY_ERROR: type = PyExc_MemoryError; break;
    default: type = PyExc_RuntimeError; break;
    }
    PyErr_SetString(type, message && message[0] ? message : "swiftrcnn: unknown error");
    return NULL;
}

static PyObject *ext_num_threads(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyLong_FromLong(srcnn_num_threads());
}

static PyObject *ext_kept_memory(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyLong_FromLongLong(srcnn_kept_memory());
}

static PyObject *ext_release_memory(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    int64_t freed;
    Py_BEGIN_ALLOW_THREADS freed = srcnn_release_memory();
    Py_END_ALLOW_THREADS return PyLong_FromLongLong(freed);
}

static PyObject *ext_isa(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyUnicode_FromString(srcnn_isa());
}

static PyObject *ext_isa_supported(PyObject *self, PyObject *args) {
    (void)self;
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    return PyBool_FromLong(srcnn_isa_supported(name));
}

static PyObject *ext_isa_environment_error(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    char err[SRCNN_ERR_CAPACITY];
    if (!srcnn_isa_environment_error(err)) Py_RETURN_NONE;
    return PyUnicode_FromString(err);
}

static PyObject *ext_config_report(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    int64_t n = srcnn_config_report(NULL, 0);
    char *buffer = PyMem_Malloc((size_t)n + 1);
    if (!buffer) return PyErr_NoMemory();
    srcnn_config_report(buffer, n + 1);
    PyObject *result = PyUnicode_FromString(buffer);
    PyMem_Free(buffer);
    return result;
}

static PyMethodDef runtime_methods[] = {
    {"isa", ext_isa, METH_NOARGS, "The instruction-set path the kernels run."},
    {"isa_supported", ext_isa_supported, METH_VARARGS, "isa_supported(name): whether this CPU can run the path."},
    {"isa_environment_error", ext_isa_environment_error, METH_NOARGS,
     "Why SWIFTRCNN_ISA could not be followed, or None."},
    {"config_report", ext_config_report, METH_NOARGS, "The configuration report (show_config)."},
    {"num_threads", ext_num_threads, METH_NOARGS, "Threads used by every op."},
    {"kept_memory", ext_kept_memory, METH_NOARGS, "Bytes of freed buffers the library keeps for reuse."},
    {"release_memory", ext_release_memory, METH_NOARGS, "Frees the kept buffers; returns their bytes."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "swiftrcnn._C",
                                        "Thin bindings to libswiftrcnn_capi (see swiftrcnn.h).", -1, NULL};

static int add_methods(PyObject *module, PyMethodDef *defs) {
    for (PyMethodDef *d = defs; d->ml_name; d++) {
        PyObject *f = PyCFunction_NewEx(d, NULL, NULL);
        if (!f || PyModule_AddObject(module, d->ml_name, f) != 0) {
            Py_XDECREF(f);
            return -1;
        }
    }
    return 0;
}

PyMODINIT_FUNC PyInit__C(void) {
    if (ext_models_ready() != 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    if (add_methods(m, runtime_methods) || add_methods(m, ext_models_methods) || add_methods(m, ext_init_methods) ||
        ext_add_generated(m)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
