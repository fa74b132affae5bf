/* Bindings of the box utilities and suppression ops. Arguments arrive already converted by swiftrcnn/ops (float
   arrays of one dtype, int64 indices, preallocated outputs); each wrapper passes them through with the GIL released. */
#include "ext.h"

/* box_area(boxes, out) */
static PyObject *py_box_area(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *o;
    if (!PyArg_ParseTuple(args, "OO", &b, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, o, "out", 1)) { ext_args_release(&x); return NULL; }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_box_area(EXT_ARR(x, 0), EXT_ARR(x, 1), err));
    Py_RETURN_NONE;
}

/* box_iou(boxes1, boxes2, kind, eps, out) */
static PyObject *py_box_iou(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b1, *b2, *o;
    int kind;
    double eps;
    if (!PyArg_ParseTuple(args, "OOidO", &b1, &b2, &kind, &eps, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b1, "boxes1", 0) || ext_args_add(&x, b2, "boxes2", 0) || ext_args_add(&x, o, "out", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_box_iou(EXT_ARR(x, 0), EXT_ARR(x, 1), kind, eps, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* box_convert(boxes, in_fmt, out_fmt, out) */
static PyObject *py_box_convert(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *o;
    int in_fmt, out_fmt;
    if (!PyArg_ParseTuple(args, "OiiO", &b, &in_fmt, &out_fmt, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, o, "out", 1)) { ext_args_release(&x); return NULL; }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_box_convert(EXT_ARR(x, 0), in_fmt, out_fmt, EXT_ARR(x, 1), err));
    Py_RETURN_NONE;
}

/* clip_boxes_to_image(boxes, height, width, out) */
static PyObject *py_clip_boxes_to_image(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *o;
    long long h, w;
    if (!PyArg_ParseTuple(args, "OLLO", &b, &h, &w, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, o, "out", 1)) { ext_args_release(&x); return NULL; }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_clip_boxes_to_image(EXT_ARR(x, 0), h, w, EXT_ARR(x, 1), err));
    Py_RETURN_NONE;
}

/* remove_small_boxes(boxes, min_size, keep) -> count */
static PyObject *py_remove_small_boxes(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *k;
    double min_size;
    if (!PyArg_ParseTuple(args, "OdO", &b, &min_size, &k)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, k, "keep", 1)) { ext_args_release(&x); return NULL; }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    int64_t count = 0;
    EXT_CALL(srcnn_remove_small_boxes(EXT_ARR(x, 0), min_size, EXT_ARR(x, 1), &count, err));
    return PyLong_FromLongLong(count);
}

/* nms(boxes, scores, iou_threshold, keep) -> count */
static PyObject *py_nms(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *s, *k;
    double thr;
    if (!PyArg_ParseTuple(args, "OOdO", &b, &s, &thr, &k)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, s, "scores", 0) || ext_args_add(&x, k, "keep", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    int64_t count = 0;
    EXT_CALL(srcnn_nms(EXT_ARR(x, 0), EXT_ARR(x, 1), thr, EXT_ARR(x, 2), &count, err));
    return PyLong_FromLongLong(count);
}

/* batched_nms(boxes, scores, idxs, iou_threshold, keep) -> count */
static PyObject *py_batched_nms(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *s, *c, *k;
    double thr;
    if (!PyArg_ParseTuple(args, "OOOdO", &b, &s, &c, &thr, &k)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, s, "scores", 0) || ext_args_add(&x, c, "idxs", 0) ||
        ext_args_add(&x, k, "keep", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    int64_t count = 0;
    EXT_CALL(srcnn_batched_nms(EXT_ARR(x, 0), EXT_ARR(x, 1), EXT_ARR(x, 2), thr, EXT_ARR(x, 3), &count, err));
    return PyLong_FromLongLong(count);
}

/* soft_nms(boxes, scores, method, iou_threshold, sigma, score_threshold, keep, kept_scores) -> count */
static PyObject *py_soft_nms(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *s, *k, *ks;
    int method;
    double thr, sigma, score_thr;
    if (!PyArg_ParseTuple(args, "OOidddOO", &b, &s, &method, &thr, &sigma, &score_thr, &k, &ks)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, s, "scores", 0) || ext_args_add(&x, k, "keep", 1) ||
        ext_args_add(&x, ks, "kept_scores", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    int64_t count = 0;
    EXT_CALL(srcnn_soft_nms(EXT_ARR(x, 0), EXT_ARR(x, 1), method, thr, sigma, score_thr, EXT_ARR(x, 2), EXT_ARR(x, 3),
                        &count, err));
    return PyLong_FromLongLong(count);
}

PyMethodDef ext_boxes_methods[] = {
    {"box_area", py_box_area, METH_VARARGS, NULL},
    {"box_iou", py_box_iou, METH_VARARGS, NULL},
    {"box_convert", py_box_convert, METH_VARARGS, NULL},
    {"clip_boxes_to_image", py_clip_boxes_to_image, METH_VARARGS, NULL},
    {"remove_small_boxes", py_remove_small_boxes, METH_VARARGS, NULL},
    {"nms", py_nms, METH_VARARGS, NULL},
    {"batched_nms", py_batched_nms, METH_VARARGS, NULL},
    {"soft_nms", py_soft_nms, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};
