/* Bindings of the detection stages (swiftrcnn.h, "Detection stages"). Arguments arrive converted by
   swiftrcnn.models._stages: a list of weight names (str) with a list of float32 arrays, a sequence of feature maps,
   int64 / float64 vectors for the anchor description, preallocated outputs. The anchor vectors are plain C arrays
   whose lengths the library cannot see, so their lengths are checked here; every other rule is the library's. */
#include "ext.h"

/* Feature maps one stage call accepts; the library's own limit (maxStageLevels) is the same. */
#define EXT_MAX_STAGE_LEVELS 16

/* A state dict as parallel C arrays of names and srcnn_arrays, holding the Python buffers until released. */
typedef struct {
    PyObject *names_seq, *weights_seq;
    const char **names;
    ext_array *held;
    srcnn_array *arrays;
    Py_ssize_t count, got;
} stage_weights;

static void weights_release(stage_weights *w) {
    for (Py_ssize_t i = 0; i < w->got; i++) ext_array_release(&w->held[i]);
    PyMem_Free(w->names);
    PyMem_Free(w->held);
    PyMem_Free(w->arrays);
    Py_XDECREF(w->names_seq);
    Py_XDECREF(w->weights_seq);
    memset(w, 0, sizeof(*w));
}

/* Returns 0, or -1 with an exception set (and `w` released). */
static int weights_get(PyObject *names, PyObject *weights, stage_weights *w) {
    memset(w, 0, sizeof(*w));
    w->names_seq = PySequence_Fast(names, "names: expected a sequence of str");
    if (!w->names_seq) return -1;
    w->weights_seq = PySequence_Fast(weights, "weights: expected a sequence of arrays");
    if (!w->weights_seq) {
        weights_release(w);
        return -1;
    }
    w->count = PySequence_Fast_GET_SIZE(w->names_seq);
    if (PySequence_Fast_GET_SIZE(w->weights_seq) != w->count) {
        PyErr_SetString(PyExc_ValueError, "weights: expected as many arrays as names");
        weights_release(w);
        return -1;
    }
    size_t n = w->count > 0 ? (size_t)w->count : 1;
    w->names = PyMem_Calloc(n, sizeof(*w->names));
    w->held = PyMem_Calloc(n, sizeof(*w->held));
    w->arrays = PyMem_Calloc(n, sizeof(*w->arrays));
    if (!w->names || !w->held || !w->arrays) {
        weights_release(w);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < w->count; i++) {
        PyObject *name = PySequence_Fast_GET_ITEM(w->names_seq, i);
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "weights: expected str keys, got %.100s", Py_TYPE(name)->tp_name);
            weights_release(w);
            return -1;
        }
        /* Valid while names_seq holds the str. */
        w->names[i] = PyUnicode_AsUTF8(name);
        if (!w->names[i] ||
            ext_array_get(PySequence_Fast_GET_ITEM(w->weights_seq, i), w->names[i], 0, &w->held[w->got]) != 0) {
            weights_release(w);
            return -1;
        }
        w->arrays[i] = w->held[w->got].array;
        w->got++;
    }
    return 0;
}

/* A sequence of feature maps. */
typedef struct {
    ext_array held[EXT_MAX_STAGE_LEVELS];
    srcnn_array arrays[EXT_MAX_STAGE_LEVELS];
    Py_ssize_t count;
} stage_features;

static void features_release(stage_features *f) {
    for (Py_ssize_t i = 0; i < f->count; i++) ext_array_release(&f->held[i]);
    f->count = 0;
}

static int features_get(PyObject *obj, stage_features *f) {
    f->count = 0;
    PyObject *seq = PySequence_Fast(obj, "features: expected a sequence of arrays");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > EXT_MAX_STAGE_LEVELS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "features: expected 1...%d feature maps, got %zd", EXT_MAX_STAGE_LEVELS, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ext_array_get(PySequence_Fast_GET_ITEM(seq, i), "features", 0, &f->held[i]) != 0) {
            features_release(f);
            Py_DECREF(seq);
            return -1;
        }
        f->arrays[i] = f->held[i].array;
        f->count++;
    }
    Py_DECREF(seq);
    return 0;
}

/* Fails unless argument i of `x` is a 1-D array of `dtype` with `length` elements (length < 0: any). */
static int expect_vector(ext_args *x, int i, int32_t dtype, int64_t length, const char *name) {
    const srcnn_array *a = EXT_ARR(*x, i);
    if (a->dtype != dtype) {
        PyErr_Format(PyExc_TypeError, "%s: expected a %s vector", name, dtype == SRCNN_INT64 ? "int64" : "float64");
        return -1;
    }
    if (a->ndim != 1 || (length >= 0 && a->shape[0] != length)) {
        PyErr_Format(PyExc_ValueError, "%s: expected a vector of %lld values (one per feature level)", name,
                     (long long)length);
        return -1;
    }
    return 0;
}

/* Fails unless the int64 counts are >= 0 and add up to the length of `values`. */
static int expect_total(const srcnn_array *counts, const srcnn_array *values, const char *name) {
    const int64_t *c = (const int64_t *)counts->data;
    int64_t left = values->shape[0];
    for (int64_t l = 0; l < counts->shape[0]; l++) {
        if (c[l] < 0 || c[l] > left) break;
        left -= c[l];
        if (l == counts->shape[0] - 1 && left == 0) return 0;
    }
    PyErr_Format(PyExc_ValueError, "%s: the per-level counts do not match the %lld values given", name,
                 (long long)values->shape[0]);
    return -1;
}

/* rpn_proposals(names, weights, features, image_sizes, batch_h, batch_w, anchor_sizes, num_sizes, aspect_ratios,
   num_ratios, pre_nms_top_n, post_nms_top_n, nms_thresh, score_thresh, boxes, scores, counts) */
static PyObject *py_rpn_proposals(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *names, *weights, *feats, *sizes, *as, *ns, *ar, *nr, *b, *s, *c;
    long long batch_h, batch_w, pre, post;
    double nms_thresh, score_thresh;
    if (!PyArg_ParseTuple(args, "OOOOLLOOOOLLddOOO", &names, &weights, &feats, &sizes, &batch_h, &batch_w, &as, &ns,
                          &ar, &nr, &pre, &post, &nms_thresh, &score_thresh, &b, &s, &c))
        return NULL;
    stage_weights w;
    if (weights_get(names, weights, &w) != 0) return NULL;
    stage_features f;
    if (features_get(feats, &f) != 0) {
        weights_release(&w);
        return NULL;
    }
    ext_args x = {0};
    int failed = ext_args_add(&x, sizes, "image_sizes", 0) || ext_args_add(&x, as, "anchor_sizes", 0) ||
                 ext_args_add(&x, ns, "anchor_sizes", 0) || ext_args_add(&x, ar, "aspect_ratios", 0) ||
                 ext_args_add(&x, nr, "aspect_ratios", 0) || ext_args_add(&x, b, "boxes", 1) ||
                 ext_args_add(&x, s, "scores", 1) || ext_args_add(&x, c, "counts", 1) ||
                 expect_vector(&x, 1, SRCNN_FLOAT64, -1, "anchor_sizes") ||
                 expect_vector(&x, 2, SRCNN_INT64, f.count, "anchor_sizes") ||
                 expect_vector(&x, 3, SRCNN_FLOAT64, -1, "aspect_ratios") ||
                 expect_vector(&x, 4, SRCNN_INT64, f.count, "aspect_ratios") ||
                 expect_total(EXT_ARR(x, 2), EXT_ARR(x, 1), "anchor_sizes") ||
                 expect_total(EXT_ARR(x, 4), EXT_ARR(x, 3), "aspect_ratios");
    char err[SRCNN_ERR_CAPACITY];
    int32_t status = SRCNN_OK;
    if (!failed) {
        Py_BEGIN_ALLOW_THREADS
        status = srcnn_rpn_proposals(w.names, w.arrays, w.count, f.arrays, f.count, EXT_ARR(x, 0), batch_h, batch_w,
                                     EXT_ARR(x, 1)->data, EXT_ARR(x, 2)->data, EXT_ARR(x, 3)->data,
                                     EXT_ARR(x, 4)->data, pre, post, nms_thresh, score_thresh, EXT_ARR(x, 5),
                                     EXT_ARR(x, 6), EXT_ARR(x, 7), err);
        Py_END_ALLOW_THREADS
    }
    ext_args_release(&x);
    features_release(&f);
    weights_release(&w);
    if (failed) return NULL;
    if (status != SRCNN_OK) return ext_raise(status, err);
    Py_RETURN_NONE;
}

/* roi_heads_detect(names, weights, num_classes, masks, features, proposals, proposal_counts, image_sizes,
   score_thresh, nms_thresh, detections_per_img, boxes, scores, labels, mask_probs or None, counts) */
static PyObject *py_roi_heads_detect(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *names, *weights, *feats, *p, *pc, *sizes, *b, *s, *l, *m, *c;
    long long num_classes, per_image;
    int masks;
    double score_thresh, nms_thresh;
    if (!PyArg_ParseTuple(args, "OOLpOOOOddLOOOOO", &names, &weights, &num_classes, &masks, &feats, &p, &pc, &sizes,
                          &score_thresh, &nms_thresh, &per_image, &b, &s, &l, &m, &c))
        return NULL;
    stage_weights w;
    if (weights_get(names, weights, &w) != 0) return NULL;
    stage_features f;
    if (features_get(feats, &f) != 0) {
        weights_release(&w);
        return NULL;
    }
    ext_args x = {0};
    int failed = ext_args_add(&x, p, "proposals", 0) || ext_args_add(&x, pc, "proposals", 0) ||
                 ext_args_add(&x, sizes, "image_sizes", 0) || ext_args_add(&x, b, "boxes", 1) ||
                 ext_args_add(&x, s, "scores", 1) || ext_args_add(&x, l, "labels", 1) ||
                 ext_args_add(&x, c, "counts", 1) || (m != Py_None && ext_args_add(&x, m, "masks", 1));
    char err[SRCNN_ERR_CAPACITY];
    int32_t status = SRCNN_OK;
    if (!failed) {
        srcnn_array *mask_probs = m != Py_None ? EXT_ARR(x, 7) : NULL;
        Py_BEGIN_ALLOW_THREADS
        status = srcnn_roi_heads_detect(w.names, w.arrays, w.count, num_classes, masks, f.arrays, f.count,
                                        EXT_ARR(x, 0), EXT_ARR(x, 1), EXT_ARR(x, 2), score_thresh, nms_thresh,
                                        per_image, EXT_ARR(x, 3), EXT_ARR(x, 4), EXT_ARR(x, 5), mask_probs,
                                        EXT_ARR(x, 6), err);
        Py_END_ALLOW_THREADS
    }
    ext_args_release(&x);
    features_release(&f);
    weights_release(&w);
    if (failed) return NULL;
    if (status != SRCNN_OK) return ext_raise(status, err);
    Py_RETURN_NONE;
}

PyMethodDef ext_stages_methods[] = {
    {"rpn_proposals", py_rpn_proposals, METH_VARARGS, NULL},
    {"roi_heads_detect", py_roi_heads_detect, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};
