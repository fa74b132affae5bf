/* Bindings of the anchor generator, the box coder and the py-faster-rcnn conventions. Arrays arrive converted by
   swiftrcnn/ops. The anchor functions of swiftrcnn.h take plain C arrays whose lengths the library cannot see, so
   these wrappers check that the lengths agree before passing the pointers on; every other rule is the library's. */
#include "ext.h"

/* Fails unless argument i of `x` is a 1-D (ndim 1) or (n, 2) (ndim 2) array of `dtype` (TypeError for the dtype,
   ValueError for the shape). Returns 0 or -1. */
static int expect_array(ext_args *x, int i, int32_t dtype, int ndim, const char *name, const char *what) {
    const srcnn_array *a = EXT_ARR(*x, i);
    if (a->dtype != dtype || a->ndim != ndim || (ndim == 2 && a->shape[1] != 2)) {
        PyErr_Format(a->dtype != dtype ? PyExc_TypeError : PyExc_ValueError, "%s: expected %s", name, what);
        return -1;
    }
    return 0;
}

/* Fails unless the entries of `counts` (int64, 1-D) are >= 0 and add up to the length of `values` (1-D). */
static int expect_counts(const srcnn_array *counts, const srcnn_array *values, const char *name) {
    const int64_t *c = (const int64_t *)counts->data;
    int64_t left = values->shape[0];
    for (int64_t l = 0; l < counts->shape[0]; l++) {
        if (c[l] < 0 || c[l] > left) {
            PyErr_Format(PyExc_ValueError, "%s: the per-level counts do not match the %lld values given", name,
                         (long long)values->shape[0]);
            return -1;
        }
        left -= c[l];
    }
    if (left != 0) {
        PyErr_Format(PyExc_ValueError, "%s: the per-level counts do not match the %lld values given", name,
                     (long long)values->shape[0]);
        return -1;
    }
    return 0;
}

/* anchor_generator(sizes, num_sizes, aspect_ratios, num_ratios, image_h, image_w, feature_hw, anchors):
   sizes and aspect_ratios float64 (flat over levels), num_sizes and num_ratios int64 (L,), feature_hw int64 (L, 2). */
static PyObject *py_anchor_generator(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *s, *ns, *r, *nr, *f, *o;
    long long image_h, image_w;
    if (!PyArg_ParseTuple(args, "OOOOLLOO", &s, &ns, &r, &nr, &image_h, &image_w, &f, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, s, "sizes", 0) || ext_args_add(&x, ns, "sizes", 0) ||
        ext_args_add(&x, r, "aspect_ratios", 0) || ext_args_add(&x, nr, "aspect_ratios", 0) ||
        ext_args_add(&x, f, "feature_hw", 0) || ext_args_add(&x, o, "anchors", 1) ||
        expect_array(&x, 0, SRCNN_FLOAT64, 1, "sizes", "a float64 vector") ||
        expect_array(&x, 1, SRCNN_INT64, 1, "sizes", "an int64 vector of per-level counts") ||
        expect_array(&x, 2, SRCNN_FLOAT64, 1, "aspect_ratios", "a float64 vector") ||
        expect_array(&x, 3, SRCNN_INT64, 1, "aspect_ratios", "an int64 vector of per-level counts") ||
        expect_array(&x, 4, SRCNN_INT64, 2, "feature_hw", "an int64 array of (h, w) pairs")) {
        ext_args_release(&x);
        return NULL;
    }
    int64_t levels = EXT_ARR(x, 1)->shape[0];
    if (EXT_ARR(x, 3)->shape[0] != levels) {
        PyErr_Format(PyExc_ValueError, "aspect_ratios: expected %lld levels (as many as sizes), got %lld",
                     (long long)levels, (long long)EXT_ARR(x, 3)->shape[0]);
        ext_args_release(&x);
        return NULL;
    }
    if (EXT_ARR(x, 4)->shape[0] != levels) {
        PyErr_Format(PyExc_ValueError, "feature_hw: expected %lld (h, w) pairs (one per level), got %lld",
                     (long long)levels, (long long)EXT_ARR(x, 4)->shape[0]);
        ext_args_release(&x);
        return NULL;
    }
    if (expect_counts(EXT_ARR(x, 1), EXT_ARR(x, 0), "sizes") ||
        expect_counts(EXT_ARR(x, 3), EXT_ARR(x, 2), "aspect_ratios")) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_anchor_generator(EXT_ARR(x, 0)->data, EXT_ARR(x, 1)->data, EXT_ARR(x, 2)->data,
                                    EXT_ARR(x, 3)->data, levels, image_h, image_w, EXT_ARR(x, 4)->data,
                                    EXT_ARR(x, 5), err));
    Py_RETURN_NONE;
}

/* legacy_generate_anchors(base_size, ratios, scales, anchors): ratios and scales float64 vectors. */
static PyObject *py_legacy_generate_anchors(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *r, *s, *o;
    double base_size;
    if (!PyArg_ParseTuple(args, "dOOO", &base_size, &r, &s, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, r, "ratios", 0) || ext_args_add(&x, s, "scales", 0) || ext_args_add(&x, o, "anchors", 1) ||
        expect_array(&x, 0, SRCNN_FLOAT64, 1, "ratios", "a float64 vector") ||
        expect_array(&x, 1, SRCNN_FLOAT64, 1, "scales", "a float64 vector")) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_legacy_generate_anchors(base_size, EXT_ARR(x, 0)->data, EXT_ARR(x, 0)->shape[0],
                                           EXT_ARR(x, 1)->data, EXT_ARR(x, 1)->shape[0], EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* legacy_bbox_transform(ex_rois, gt_rois, targets) */
static PyObject *py_legacy_bbox_transform(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *e, *g, *o;
    if (!PyArg_ParseTuple(args, "OOO", &e, &g, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, e, "ex_rois", 0) || ext_args_add(&x, g, "gt_rois", 0) || ext_args_add(&x, o, "targets", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_legacy_bbox_transform(EXT_ARR(x, 0), EXT_ARR(x, 1), EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* legacy_bbox_transform_inv(boxes, deltas, pred) */
static PyObject *py_legacy_bbox_transform_inv(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *d, *o;
    if (!PyArg_ParseTuple(args, "OOO", &b, &d, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, d, "deltas", 0) || ext_args_add(&x, o, "pred_boxes", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_legacy_bbox_transform_inv(EXT_ARR(x, 0), EXT_ARR(x, 1), EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* legacy_clip_boxes(boxes, im_h, im_w, out) */
static PyObject *py_legacy_clip_boxes(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *o;
    double im_h, im_w;
    if (!PyArg_ParseTuple(args, "OddO", &b, &im_h, &im_w, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, o, "out", 1)) { ext_args_release(&x); return NULL; }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_legacy_clip_boxes(EXT_ARR(x, 0), im_h, im_w, EXT_ARR(x, 1), err));
    Py_RETURN_NONE;
}

/* legacy_nms(dets, thresh, keep) -> count */
static PyObject *py_legacy_nms(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *d, *k;
    double thresh;
    if (!PyArg_ParseTuple(args, "OdO", &d, &thresh, &k)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, d, "dets", 0) || ext_args_add(&x, k, "keep", 1)) { ext_args_release(&x); return NULL; }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    int64_t count = 0;
    EXT_CALL(srcnn_legacy_nms(EXT_ARR(x, 0), thresh, EXT_ARR(x, 1), &count, err));
    return PyLong_FromLongLong(count);
}

/* box_encode(reference_boxes, proposals, (wx, wy, ww, wh), targets) */
static PyObject *py_box_encode(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *r, *p, *o;
    double w[4];
    if (!PyArg_ParseTuple(args, "OO(dddd)O", &r, &p, &w[0], &w[1], &w[2], &w[3], &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, r, "reference_boxes", 0) || ext_args_add(&x, p, "proposals", 0) ||
        ext_args_add(&x, o, "targets", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_box_encode(EXT_ARR(x, 0), EXT_ARR(x, 1), w, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

/* box_decode(rel_codes, boxes, (wx, wy, ww, wh), bbox_xform_clip, pred_boxes) */
static PyObject *py_box_decode(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *c, *b, *o;
    double w[4], clip;
    if (!PyArg_ParseTuple(args, "OO(dddd)dO", &c, &b, &w[0], &w[1], &w[2], &w[3], &clip, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, c, "rel_codes", 0) || ext_args_add(&x, b, "boxes", 0) ||
        ext_args_add(&x, o, "pred_boxes", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_box_decode(EXT_ARR(x, 0), EXT_ARR(x, 1), w, clip, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

PyMethodDef ext_anchors_methods[] = {
    {"anchor_generator", py_anchor_generator, METH_VARARGS, NULL},
    {"legacy_generate_anchors", py_legacy_generate_anchors, METH_VARARGS, NULL},
    {"legacy_bbox_transform", py_legacy_bbox_transform, METH_VARARGS, NULL},
    {"legacy_bbox_transform_inv", py_legacy_bbox_transform_inv, METH_VARARGS, NULL},
    {"legacy_clip_boxes", py_legacy_clip_boxes, METH_VARARGS, NULL},
    {"legacy_nms", py_legacy_nms, METH_VARARGS, NULL},
    {"box_encode", py_box_encode, METH_VARARGS, NULL},
    {"box_decode", py_box_decode, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};
