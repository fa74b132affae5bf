/* Bindings of RoIAlign: roi_align, its backward and MultiScaleRoIAlign. Arguments arrive converted by
   swiftrcnn/ops (float arrays of one dtype, (K, 5) rois, int64 image shapes, preallocated outputs). */
#include "ext.h"

/* Feature maps one multiscale call accepts; the library's own limit (maxMultiScaleLevels) is the same. */
#define EXT_MAX_LEVELS 16

/* roi_align(input, rois, pooled_h, pooled_w, spatial_scale, sampling_ratio, aligned, output) */
static PyObject *py_roi_align(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *in, *r, *o;
    long long ph, pw, sr;
    double scale;
    int aligned;
    if (!PyArg_ParseTuple(args, "OOLLdLpO", &in, &r, &ph, &pw, &scale, &sr, &aligned, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, in, "input", 0) || ext_args_add(&x, r, "boxes", 0) || ext_args_add(&x, o, "output", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_roi_align(EXT_ARR(x, 0), EXT_ARR(x, 1), ph, pw, scale, sr, aligned, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* roi_align_backward(grad_output, rois, spatial_scale, sampling_ratio, aligned, grad_input) */
static PyObject *py_roi_align_backward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *g, *r, *gi;
    long long sr;
    double scale;
    int aligned;
    if (!PyArg_ParseTuple(args, "OOdLpO", &g, &r, &scale, &sr, &aligned, &gi)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, g, "grad_output", 0) || ext_args_add(&x, r, "boxes", 0) ||
        ext_args_add(&x, gi, "grad_input", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_roi_align_backward(EXT_ARR(x, 0), EXT_ARR(x, 1), scale, sr, aligned, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* multiscale_roi_align(features, rois, image_shapes, pooled_h, pooled_w, sampling_ratio, canonical_scale,
   canonical_level, output); `features` is a sequence of (N, C, H_l, W_l) arrays. */
static PyObject *py_multiscale_roi_align(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *feats, *r, *shapes, *o;
    long long ph, pw, sr, cscale, clevel;
    if (!PyArg_ParseTuple(args, "OOOLLLLLO", &feats, &r, &shapes, &ph, &pw, &sr, &cscale, &clevel, &o)) return NULL;
    PyObject *seq = PySequence_Fast(feats, "features: expected a sequence of arrays");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > EXT_MAX_LEVELS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "features: expected 1...%d feature maps, got %zd", EXT_MAX_LEVELS, n);
        return NULL;
    }
    ext_array levels[EXT_MAX_LEVELS];
    srcnn_array level_arrays[EXT_MAX_LEVELS];
    Py_ssize_t held = 0;
    for (; held < n; held++) {
        if (ext_array_get(PySequence_Fast_GET_ITEM(seq, held), "features", 0, &levels[held]) != 0) break;
        level_arrays[held] = levels[held].array;
    }
    ext_args x = {0};
    int failed = held < n || ext_args_add(&x, r, "boxes", 0) || ext_args_add(&x, shapes, "image_shapes", 0) ||
                 ext_args_add(&x, o, "output", 1);
    char err[SRCNN_ERR_CAPACITY];
    int32_t status = SRCNN_OK;
    if (!failed) {
        Py_BEGIN_ALLOW_THREADS
        status = srcnn_multiscale_roi_align(level_arrays, (int64_t)n, EXT_ARR(x, 0), EXT_ARR(x, 1), ph, pw, sr,
                                            cscale, clevel, EXT_ARR(x, 2), err);
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t i = 0; i < held; i++) ext_array_release(&levels[i]);
    ext_args_release(&x);
    Py_DECREF(seq);
    if (failed) return NULL;
    if (status != SRCNN_OK) return ext_raise(status, err);
    Py_RETURN_NONE;
}

PyMethodDef ext_roi_align_methods[] = {
    {"roi_align", py_roi_align, METH_VARARGS, NULL},
    {"roi_align_backward", py_roi_align_backward, METH_VARARGS, NULL},
    {"multiscale_roi_align", py_multiscale_roi_align, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};
