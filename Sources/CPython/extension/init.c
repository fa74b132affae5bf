/* Binding of the parameter initialisation (swiftrcnn.h, "Initialisation"): its result is an srcnn_arrays, returned
   as the capsule that models.c's arrays_info / arrays_read read. */
#include "ext.h"

static void arrays_capsule_free(PyObject *capsule) {
    srcnn_arrays_free((srcnn_arrays *)PyCapsule_GetPointer(capsule, EXT_ARRAYS_CAPSULE));
}

/* initial_state(kind, num_classes, seed, predictors_only, architecture JSON or None) -> arrays capsule */
static PyObject *py_initial_state(PyObject *self, PyObject *args) {
    (void)self;
    int kind, predictors_only;
    long long num_classes;
    PyObject *seed_obj;
    const char *architecture = NULL;
    if (!PyArg_ParseTuple(args, "iLO!pz", &kind, &num_classes, &PyLong_Type, &seed_obj, &predictors_only,
                          &architecture))
        return NULL;
    unsigned long long seed = PyLong_AsUnsignedLongLong(seed_obj);
    if (seed == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "seed: %S is outside [0, 2**64)", seed_obj);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    srcnn_arrays *out = NULL;
    Py_BEGIN_ALLOW_THREADS status = srcnn_initial_state((int32_t)kind, (int64_t)num_classes, (uint64_t)seed,
                                                        (int32_t)predictors_only, architecture, &out, err);
    Py_END_ALLOW_THREADS if (status != SRCNN_OK) return ext_raise(status, err);
    PyObject *result = PyCapsule_New(out, EXT_ARRAYS_CAPSULE, arrays_capsule_free);
    if (!result) srcnn_arrays_free(out);
    return result;
}

PyMethodDef ext_init_methods[] = {{"initial_state", py_initial_state, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
