/* Bindings of the linear algebra section of swiftrcnn.h. Arguments arrive converted by swiftrcnn.linalg (2-D float
   arrays of one dtype, a preallocated output); the wrapper passes them through with the GIL released. */
#include "ext.h"

/* matmul(a, b, transpose_a, transpose_b, out) */
static PyObject *py_matmul(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *a, *b, *o;
    int ta, tb;
    if (!PyArg_ParseTuple(args, "OOiiO", &a, &b, &ta, &tb, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, a, "a", 0) || ext_args_add(&x, b, "b", 0) || ext_args_add(&x, o, "out", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_matmul(EXT_ARR(x, 0), EXT_ARR(x, 1), ta, tb, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

PyMethodDef ext_linalg_methods[] = {
    {"matmul", py_matmul, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};
