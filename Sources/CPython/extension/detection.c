/* Bindings of the detection-head helpers: Matcher, the balanced sampler and mask pasting. Arguments arrive already
   converted by swiftrcnn/ops (float arrays of one dtype, int64 indices, preallocated outputs); each wrapper passes
   them through with the GIL released. */
#include "ext.h"

/* matcher(match_quality_matrix, high_threshold, low_threshold, allow_low_quality_matches, matches) */
static PyObject *py_matcher(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *q, *m;
    double high, low;
    int allow;
    if (!PyArg_ParseTuple(args, "OddpO", &q, &high, &low, &allow, &m)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, q, "match_quality_matrix", 0) || ext_args_add(&x, m, "matches", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_matcher(EXT_ARR(x, 0), high, low, allow, EXT_ARR(x, 1), err));
    Py_RETURN_NONE;
}

/* balanced_sampler(matched_idxs, batch_size_per_image, positive_fraction, seed, pos_mask, neg_mask) */
static PyObject *py_balanced_sampler(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *idx, *pos, *neg;
    long long batch;
    double fraction;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OLdKOO", &idx, &batch, &fraction, &seed, &pos, &neg)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, idx, "matched_idxs", 0) || ext_args_add(&x, pos, "pos_mask", 1) ||
        ext_args_add(&x, neg, "neg_mask", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_balanced_sampler(EXT_ARR(x, 0), batch, fraction, (uint64_t)seed, EXT_ARR(x, 1), EXT_ARR(x, 2),
                                    err));
    Py_RETURN_NONE;
}

/* paste_masks_in_image(masks, boxes, img_h, img_w, padding, out) */
static PyObject *py_paste_masks_in_image(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *mk, *b, *o;
    long long h, w, padding;
    if (!PyArg_ParseTuple(args, "OOLLLO", &mk, &b, &h, &w, &padding, &o)) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, mk, "masks", 0) || ext_args_add(&x, b, "boxes", 0) || ext_args_add(&x, o, "out", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_paste_masks_in_image(EXT_ARR(x, 0), EXT_ARR(x, 1), h, w, padding, EXT_ARR(x, 2), err));
    Py_RETURN_NONE;
}

PyMethodDef ext_detection_methods[] = {
    {"matcher", py_matcher, METH_VARARGS, NULL},
    {"balanced_sampler", py_balanced_sampler, METH_VARARGS, NULL},
    {"paste_masks_in_image", py_paste_masks_in_image, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};
