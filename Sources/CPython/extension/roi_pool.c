/* Bindings of roi_pool, ps_roi_align and ps_roi_pool (forward and backward). Arguments arrive already converted by
   swiftrcnn/ops (float arrays of one dtype, int64 argmax, preallocated outputs); each wrapper passes them through
   with the GIL released. */
#include "ext.h"

/* roi_pool(input, rois, pooled_h, pooled_w, spatial_scale, output, argmax or None) */
static PyObject *py_roi_pool(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *in, *r, *o, *a;
    long long ph, pw;
    double scale;
    if (!PyArg_ParseTuple(args, "OOLLdOO", &in, &r, &ph, &pw, &scale, &o, &a)) return NULL;
    ext_args x = {0};
    int has_argmax = a != Py_None;
    if (ext_args_add(&x, in, "input", 0) || ext_args_add(&x, r, "boxes", 0) || ext_args_add(&x, o, "output", 1) ||
        (has_argmax && ext_args_add(&x, a, "argmax", 1))) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_roi_pool(EXT_ARR(x, 0), EXT_ARR(x, 1), ph, pw, scale, EXT_ARR(x, 2),
                            has_argmax ? EXT_ARR(x, 3) : NULL, err));
    Py_RETURN_NONE;
}

/* roi_pool_backward(grad_output, rois or None, argmax, grad_input) */
static PyObject *py_roi_pool_backward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *g, *r, *a, *gi;
    if (!PyArg_ParseTuple(args, "OOOO", &g, &r, &a, &gi)) return NULL;
    ext_args x = {0};
    int has_rois = r != Py_None;
    if (ext_args_add(&x, g, "grad_output", 0) || ext_args_add(&x, a, "argmax", 0) ||
        ext_args_add(&x, gi, "grad_input", 1) || (has_rois && ext_args_add(&x, r, "boxes", 0))) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_roi_pool_backward(EXT_ARR(x, 0), has_rois ? EXT_ARR(x, 3) : NULL, EXT_ARR(x, 1), EXT_ARR(x, 2),
                                     err));
    Py_RETURN_NONE;
}

/* ps_roi_align(input, rois, pooled_h, pooled_w, spatial_scale, sampling_ratio, output) */
static PyObject *py_ps_roi_align(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *in, *r, *o;
    long long ph, pw, sr;
    double scale;
    if (!PyArg_ParseTuple(args, "OOLLdLO", &in, &r, &ph, &pw, &scale, &sr, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, in, "input", 0) || ext_args_add(&x, r, "boxes", 0) || ext_args_add(&x, o, "output", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_ps_roi_align(EXT_ARR(x, 0), EXT_ARR(x, 1), ph, pw, scale, sr, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* ps_roi_align_backward(grad_output, rois, spatial_scale, sampling_ratio, grad_input) */
static PyObject *py_ps_roi_align_backward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *g, *r, *gi;
    long long sr;
    double scale;
    if (!PyArg_ParseTuple(args, "OOdLO", &g, &r, &scale, &sr, &gi)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, g, "grad_output", 0) || ext_args_add(&x, r, "boxes", 0) ||
        ext_args_add(&x, gi, "grad_input", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_ps_roi_align_backward(EXT_ARR(x, 0), EXT_ARR(x, 1), scale, sr, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* ps_roi_pool(input, rois, pooled_h, pooled_w, spatial_scale, output) */
static PyObject *py_ps_roi_pool(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *in, *r, *o;
    long long ph, pw;
    double scale;
    if (!PyArg_ParseTuple(args, "OOLLdO", &in, &r, &ph, &pw, &scale, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, in, "input", 0) || ext_args_add(&x, r, "boxes", 0) || ext_args_add(&x, o, "output", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_ps_roi_pool(EXT_ARR(x, 0), EXT_ARR(x, 1), ph, pw, scale, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* ps_roi_pool_backward(grad_output, rois, spatial_scale, grad_input) */
static PyObject *py_ps_roi_pool_backward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *g, *r, *gi;
    double scale;
    if (!PyArg_ParseTuple(args, "OOdO", &g, &r, &scale, &gi)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, g, "grad_output", 0) || ext_args_add(&x, r, "boxes", 0) ||
        ext_args_add(&x, gi, "grad_input", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_ps_roi_pool_backward(EXT_ARR(x, 0), EXT_ARR(x, 1), scale, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

PyMethodDef ext_roi_pool_methods[] = {
    {"roi_pool", py_roi_pool, METH_VARARGS, NULL},
    {"roi_pool_backward", py_roi_pool_backward, METH_VARARGS, NULL},
    {"ps_roi_align", py_ps_roi_align, METH_VARARGS, NULL},
    {"ps_roi_align_backward", py_ps_roi_align_backward, METH_VARARGS, NULL},
    {"ps_roi_pool", py_ps_roi_pool, METH_VARARGS, NULL},
    {"ps_roi_pool_backward", py_ps_roi_pool_backward, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};
