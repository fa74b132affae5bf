/* Bindings of the detection models: a model is a PyCapsule owning an srcnn_model, a call's result a PyCapsule
   owning an srcnn_arrays whose arrays swiftrcnn/models takes out without copying (a TakenArray each, exporting the
   buffer NumPy wraps) or reads into NumPy arrays it allocates. Building and running release the GIL. */
#include "ext.h"
#include <string.h>

#define MODEL_CAPSULE "swiftrcnn.model"
#define ARRAYS_CAPSULE "swiftrcnn.arrays"

static void model_capsule_free(PyObject *capsule) {
    srcnn_model_free((srcnn_model *)PyCapsule_GetPointer(capsule, MODEL_CAPSULE));
}

static void arrays_capsule_free(PyObject *capsule) {
    srcnn_arrays_free((srcnn_arrays *)PyCapsule_GetPointer(capsule, ARRAYS_CAPSULE));
}

/* A sequence of buffer-protocol arrays as ext_arrays, all held until ext_array_list_release. */
typedef struct {
    ext_array *items;
    srcnn_array *arrays;
    Py_ssize_t n;
} ext_array_list;

static void ext_array_list_release(ext_array_list *l) {
    for (Py_ssize_t i = 0; i < l->n; i++)
        ext_array_release(&l->items[i]);
    PyMem_Free(l->items);
    PyMem_Free(l->arrays);
    memset(l, 0, sizeof(*l));
}

/* Fills `l` from the items of `seq` (a tuple or list from PySequence_Fast); returns 0, or -1 with an exception. */
static int ext_array_list_get(PyObject *seq, const char *name, ext_array_list *l) {
    memset(l, 0, sizeof(*l));
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    l->items = PyMem_Calloc(n ? (size_t)n : 1, sizeof(ext_array));
    l->arrays = PyMem_Calloc(n ? (size_t)n : 1, sizeof(srcnn_array));
    if (!l->items || !l->arrays) {
        ext_array_list_release(l);
        PyErr_NoMemory();
        return -1;
    }
    for (; l->n < n; l->n++) {
        if (ext_array_get(PySequence_Fast_GET_ITEM(seq, l->n), name, 0, &l->items[l->n]) != 0) {
            ext_array_list_release(l);
            return -1;
        }
        l->arrays[l->n] = l->items[l->n].array;
    }
    return 0;
}

/* The eval-mode config from the model_create argument tuple (kind, num_classes, min_size, max_size, image_mean (3
   floats), image_std (3 floats), rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test, rpn_nms_thresh, rpn_score_thresh,
   box_score_thresh, box_nms_thresh, box_detections_per_img, architecture (JSON str or None)). The architecture
   string belongs to the tuple, which outlives the call. Returns 0, or -1 with an exception. */
static int parse_model_config(PyObject *args, srcnn_model_config *c) {
    memset(c, 0, sizeof(*c));
    long long num_classes, pre, post, per_img;
    if (!PyArg_ParseTuple(args, "iLdd(ddd)(ddd)LLddddLz", &c->kind, &num_classes, &c->min_size, &c->max_size,
                          &c->image_mean[0], &c->image_mean[1], &c->image_mean[2], &c->image_std[0], &c->image_std[1],
                          &c->image_std[2], &pre, &post, &c->rpn_nms_thresh, &c->rpn_score_thresh, &c->box_score_thresh,
                          &c->box_nms_thresh, &per_img, &c->architecture))
        return -1;
    c->num_classes = num_classes;
    c->rpn_pre_nms_top_n_test = pre;
    c->rpn_post_nms_top_n_test = post;
    c->box_detections_per_img = per_img;
    return 0;
}

/* A state dict passed as names and arrays, held (as tuples, so they stay alive and unchanged while the GIL is
   released) until state_release. */
typedef struct {
    PyObject *names, *arrays;
    const char **cnames;
    ext_array_list list;
    Py_ssize_t n;
} state_dict;

static void state_release(state_dict *d) {
    ext_array_list_release(&d->list);
    PyMem_Free(d->cnames);
    Py_XDECREF(d->names);
    Py_XDECREF(d->arrays);
    memset(d, 0, sizeof(*d));
}

/* Returns 0, or -1 with an exception (and `d` released). */
static int state_get(PyObject *names_obj, PyObject *arrays_obj, state_dict *d) {
    memset(d, 0, sizeof(*d));
    d->names = PySequence_Tuple(names_obj);
    if (!d->names) goto fail;
    d->arrays = PySequence_Tuple(arrays_obj);
    if (!d->arrays) goto fail;
    d->n = PyTuple_GET_SIZE(d->names);
    if (PyTuple_GET_SIZE(d->arrays) != d->n) {
        PyErr_Format(PyExc_ValueError, "weights: %zd names but %zd arrays", d->n, PyTuple_GET_SIZE(d->arrays));
        goto fail;
    }
    d->cnames = PyMem_Calloc(d->n ? (size_t)d->n : 1, sizeof(char *));
    if (!d->cnames) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < d->n; i++) {
        PyObject *name = PyTuple_GET_ITEM(d->names, i);
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "weights: keys must be str, got %.100s", Py_TYPE(name)->tp_name);
            goto fail;
        }
        d->cnames[i] = PyUnicode_AsUTF8(name);
        if (!d->cnames[i]) goto fail;
    }
    if (ext_array_list_get(d->arrays, "weights", &d->list) != 0) goto fail;
    return 0;
fail:
    state_release(d);
    return -1;
}

/* model_create(config (see parse_model_config), names (sequence of str), arrays (sequence of float32 arrays))
   -> model capsule */
static PyObject *py_model_create(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *config_obj, *names_obj, *arrays_obj;
    if (!PyArg_ParseTuple(args, "O!OO", &PyTuple_Type, &config_obj, &names_obj, &arrays_obj)) return NULL;
    srcnn_model_config c;
    if (parse_model_config(config_obj, &c) != 0) return NULL;
    state_dict d;
    if (state_get(names_obj, arrays_obj, &d) != 0) return NULL;
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    srcnn_model *model = NULL;
    Py_BEGIN_ALLOW_THREADS status = srcnn_model_create(&c, d.cnames, d.list.arrays, (int64_t)d.n, &model, err);
    Py_END_ALLOW_THREADS state_release(&d);
    if (status != SRCNN_OK) return ext_raise(status, err);
    PyObject *result = PyCapsule_New(model, MODEL_CAPSULE, model_capsule_free);
    if (!result) srcnn_model_free(model);
    return result;
}

typedef int32_t (*model_call)(const srcnn_model *, const srcnn_array *, int64_t, srcnn_arrays **, char *);

/* Runs `call` on (model capsule, sequence of (3, H, W) float32 arrays) -> arrays capsule. */
static PyObject *run_model(PyObject *args, model_call call) {
    PyObject *capsule, *images_obj;
    if (!PyArg_ParseTuple(args, "OO", &capsule, &images_obj)) return NULL;
    srcnn_model *model = PyCapsule_GetPointer(capsule, MODEL_CAPSULE);
    if (!model) return NULL;
    PyObject *images = PySequence_Tuple(images_obj);
    if (!images) return NULL;
    ext_array_list list;
    if (ext_array_list_get(images, "images", &list) != 0) {
        Py_DECREF(images);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    srcnn_arrays *out = NULL;
    Py_BEGIN_ALLOW_THREADS status = call(model, list.arrays, (int64_t)list.n, &out, err);
    Py_END_ALLOW_THREADS ext_array_list_release(&list);
    Py_DECREF(images);
    if (status != SRCNN_OK) return ext_raise(status, err);
    PyObject *result = PyCapsule_New(out, ARRAYS_CAPSULE, arrays_capsule_free);
    if (!result) srcnn_arrays_free(out);
    return result;
}

/* model_transform(model, images) -> arrays capsule ("images", "image_sizes") */
static PyObject *py_model_transform(PyObject *self, PyObject *args) {
    (void)self;
    return run_model(args, srcnn_model_transform);
}

/* model_features(model, images) -> arrays capsule ("0", "1", "2", "3", "pool", "image_sizes") */
static PyObject *py_model_features(PyObject *self, PyObject *args) {
    (void)self;
    return run_model(args, srcnn_model_features);
}

static PyObject *py_model_detect(PyObject *self, PyObject *args) {
    (void)self;
    return run_model(args, srcnn_model_detect);
}

/* arrays_info(result) -> [(name, dtype code, shape tuple), ...] */
static PyObject *py_arrays_info(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    if (!PyArg_ParseTuple(args, "O", &capsule)) return NULL;
    srcnn_arrays *arrays = PyCapsule_GetPointer(capsule, ARRAYS_CAPSULE);
    if (!arrays) return NULL;
    int64_t n = srcnn_arrays_count(arrays);
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (!list) return NULL;
    char err[SRCNN_ERR_CAPACITY];
    for (int64_t i = 0; i < n; i++) {
        const char *name = NULL;
        srcnn_array info;
        int32_t status = srcnn_arrays_info(arrays, i, &name, &info, err);
        if (status != SRCNN_OK) {
            Py_DECREF(list);
            return ext_raise(status, err);
        }
        PyObject *shape = PyTuple_New(info.ndim);
        if (!shape) {
            Py_DECREF(list);
            return NULL;
        }
        for (int32_t d = 0; d < info.ndim; d++)
            PyTuple_SET_ITEM(shape, d, PyLong_FromLongLong(info.shape[d]));
        PyObject *item = Py_BuildValue("(siN)", name, (int)info.dtype, shape);
        if (!item) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

/* One array taken out of a result (srcnn_arrays_take): owns the srcnn_buffer and exports it, writable and
   C-contiguous, through the buffer protocol, so numpy.asarray wraps it without a copy and keeps it alive. */
typedef struct {
    PyObject_HEAD srcnn_buffer *owner;
    void *data;
    Py_ssize_t shape[SRCNN_MAX_DIMS];
    Py_ssize_t strides[SRCNN_MAX_DIMS]; /* bytes, C order */
    Py_ssize_t length;                  /* bytes */
    int ndim;
    Py_ssize_t itemsize;
    const char *format;
} taken_array;

static void taken_array_dealloc(PyObject *self) {
    srcnn_buffer_free(((taken_array *)self)->owner);
    Py_TYPE(self)->tp_free(self);
}

static int taken_array_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    taken_array *t = (taken_array *)self;
    if ((flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS && t->ndim > 1) {
        PyErr_SetString(PyExc_BufferError, "a taken array is C-contiguous, not Fortran-contiguous");
        view->obj = NULL;
        return -1;
    }
    /* An empty array has no storage: any valid address serves, nothing is read. */
    view->buf = t->data ? t->data : (void *)t;
    Py_INCREF(self);
    view->obj = self;
    view->len = t->length;
    view->readonly = 0;
    view->itemsize = t->itemsize;
    view->format = (flags & PyBUF_FORMAT) ? (char *)t->format : NULL;
    int nd = (flags & PyBUF_ND) == PyBUF_ND;
    view->ndim = nd ? t->ndim : 1;
    view->shape = nd ? t->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? t->strides : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static PyBufferProcs taken_array_buffer = {taken_array_getbuffer, NULL};

static PyTypeObject taken_array_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "swiftrcnn._C.TakenArray",
    .tp_basicsize = sizeof(taken_array),
    .tp_dealloc = taken_array_dealloc,
    .tp_as_buffer = &taken_array_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An array moved out of a model result; wrap it with numpy.asarray.",
};

int ext_models_ready(void) { return PyType_Ready(&taken_array_type); }

/* arrays_take(result, index) -> TakenArray */
static PyObject *py_arrays_take(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    long long index;
    if (!PyArg_ParseTuple(args, "OL", &capsule, &index)) return NULL;
    srcnn_arrays *arrays = PyCapsule_GetPointer(capsule, ARRAYS_CAPSULE);
    if (!arrays) return NULL;
    taken_array *t = PyObject_New(taken_array, &taken_array_type);
    if (!t) return NULL;
    t->owner = NULL;
    char err[SRCNN_ERR_CAPACITY];
    srcnn_array info;
    int32_t status = srcnn_arrays_take(arrays, index, &info, &t->owner, err);
    if (status != SRCNN_OK) {
        Py_DECREF(t);
        return ext_raise(status, err);
    }
    switch (info.dtype) {
    case SRCNN_FLOAT32: t->itemsize = 4, t->format = "f"; break;
    case SRCNN_FLOAT64: t->itemsize = 8, t->format = "d"; break;
    case SRCNN_INT64: t->itemsize = 8, t->format = "q"; break;
    default: t->itemsize = 1, t->format = "B"; break;
    }
    t->data = info.data;
    t->ndim = info.ndim;
    t->length = t->itemsize;
    for (int d = 0; d < info.ndim; d++) {
        t->shape[d] = (Py_ssize_t)info.shape[d];
        t->length *= t->shape[d];
    }
    for (int d = info.ndim - 1; d >= 0; d--)
        t->strides[d] = d == info.ndim - 1 ? t->itemsize : t->strides[d + 1] * t->shape[d + 1];
    return (PyObject *)t;
}

/* arrays_read(result, index, out) */
static PyObject *py_arrays_read(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *o;
    long long index;
    if (!PyArg_ParseTuple(args, "OLO", &capsule, &index, &o)) return NULL;
    srcnn_arrays *arrays = PyCapsule_GetPointer(capsule, ARRAYS_CAPSULE);
    if (!arrays) return NULL;
    ext_args x = {0};
    if (ext_args_add(&x, o, "out", 1)) {
        ext_args_release(&x);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    EXT_CALL(srcnn_arrays_read(arrays, index, EXT_ARR(x, 0), err));
    Py_RETURN_NONE;
}

#define TRAINER_CAPSULE "swiftrcnn.trainer"

static void trainer_capsule_free(PyObject *capsule) {
    srcnn_trainer_free((srcnn_trainer *)PyCapsule_GetPointer(capsule, TRAINER_CAPSULE));
}

static srcnn_trainer *trainer_get(PyObject *capsule) {
    return (srcnn_trainer *)PyCapsule_GetPointer(capsule, TRAINER_CAPSULE);
}

/* The training config from (rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train, rpn_fg_iou_thresh, rpn_bg_iou_thresh,
   rpn_batch_size_per_image, rpn_positive_fraction, box_fg_iou_thresh, box_bg_iou_thresh, box_batch_size_per_image,
   box_positive_fraction, bbox_reg_weights (4 floats), trainable_backbone_layers, min_sizes (sequence of floats),
   seed). Returns 0, or -1 with an exception. */
static int parse_training_config(PyObject *args, srcnn_training_config *t) {
    memset(t, 0, sizeof(*t));
    long long pre, post, rpn_batch, box_batch;
    unsigned long long seed;
    PyObject *sizes_obj;
    if (!PyArg_ParseTuple(args, "LLddLdddLd(dddd)iOK", &pre, &post, &t->rpn_fg_iou_thresh, &t->rpn_bg_iou_thresh,
                          &rpn_batch, &t->rpn_positive_fraction, &t->box_fg_iou_thresh, &t->box_bg_iou_thresh,
                          &box_batch, &t->box_positive_fraction, &t->bbox_reg_weights[0], &t->bbox_reg_weights[1],
                          &t->bbox_reg_weights[2], &t->bbox_reg_weights[3], &t->trainable_backbone_layers, &sizes_obj,
                          &seed))
        return -1;
    t->rpn_pre_nms_top_n_train = pre;
    t->rpn_post_nms_top_n_train = post;
    t->rpn_batch_size_per_image = rpn_batch;
    t->box_batch_size_per_image = box_batch;
    t->seed = seed;
    PyObject *sizes = PySequence_Tuple(sizes_obj);
    if (!sizes) return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(sizes);
    if (n > SRCNN_MAX_MIN_SIZES) {
        Py_DECREF(sizes);
        PyErr_Format(PyExc_ValueError, "min_size: expected at most %d sizes, got %zd", SRCNN_MAX_MIN_SIZES, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        t->min_sizes[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(sizes, i));
        if (t->min_sizes[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(sizes);
            return -1;
        }
    }
    t->num_min_sizes = n;
    Py_DECREF(sizes);
    return 0;
}

/* trainer_create(model config tuple, training config tuple, names, arrays) -> trainer capsule */
static PyObject *py_trainer_create(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *config_obj, *training_obj, *names_obj, *arrays_obj;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyTuple_Type, &config_obj, &PyTuple_Type, &training_obj, &names_obj,
                          &arrays_obj))
        return NULL;
    srcnn_model_config c;
    srcnn_training_config t;
    if (parse_model_config(config_obj, &c) != 0 || parse_training_config(training_obj, &t) != 0) return NULL;
    state_dict d;
    if (state_get(names_obj, arrays_obj, &d) != 0) return NULL;
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    srcnn_trainer *trainer = NULL;
    Py_BEGIN_ALLOW_THREADS status = srcnn_trainer_create(&c, &t, d.cnames, d.list.arrays, (int64_t)d.n, &trainer, err);
    Py_END_ALLOW_THREADS state_release(&d);
    if (status != SRCNN_OK) return ext_raise(status, err);
    PyObject *result = PyCapsule_New(trainer, TRAINER_CAPSULE, trainer_capsule_free);
    if (!result) srcnn_trainer_free(trainer);
    return result;
}

static PyObject *arrays_capsule(srcnn_arrays *out) {
    PyObject *result = PyCapsule_New(out, ARRAYS_CAPSULE, arrays_capsule_free);
    if (!result) srcnn_arrays_free(out);
    return result;
}

/* trainer_forward(trainer, images, boxes, labels, masks or None, backward) -> arrays capsule */
static PyObject *py_trainer_forward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *lists[4];
    int backward;
    if (!PyArg_ParseTuple(args, "OOOOOp", &capsule, &lists[0], &lists[1], &lists[2], &lists[3], &backward)) return NULL;
    srcnn_trainer *trainer = trainer_get(capsule);
    if (!trainer) return NULL;
    static const char *names[4] = {"images", "boxes", "labels", "masks"};
    PyObject *tuples[4] = {NULL, NULL, NULL, NULL};
    ext_array_list parsed[4];
    memset(parsed, 0, sizeof(parsed));
    PyObject *result = NULL;
    for (int k = 0; k < 4; k++) {
        if (k == 3 && lists[k] == Py_None) break;
        tuples[k] = PySequence_Tuple(lists[k]);
        if (!tuples[k] || ext_array_list_get(tuples[k], names[k], &parsed[k]) != 0) goto done;
        if (parsed[k].n != parsed[0].n) {
            PyErr_Format(PyExc_ValueError, "%s: expected one per image (%zd), got %zd", names[k], parsed[0].n,
                         parsed[k].n);
            goto done;
        }
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    srcnn_arrays *out = NULL;
    const srcnn_array *masks = tuples[3] ? parsed[3].arrays : NULL;
    Py_BEGIN_ALLOW_THREADS status =
        srcnn_trainer_forward(trainer, parsed[0].arrays, (int64_t)parsed[0].n, parsed[1].arrays, parsed[2].arrays,
                              masks, backward, &out, err);
    Py_END_ALLOW_THREADS if (status != SRCNN_OK) ext_raise(status, err);
    else result = arrays_capsule(out);
done:
    for (int k = 0; k < 4; k++) {
        ext_array_list_release(&parsed[k]);
        Py_XDECREF(tuples[k]);
    }
    return result;
}

typedef int32_t (*trainer_call)(srcnn_trainer *, char *);

/* Runs `call` on (trainer capsule) -> None. */
static PyObject *run_trainer(PyObject *args, trainer_call call) {
    PyObject *capsule;
    if (!PyArg_ParseTuple(args, "O", &capsule)) return NULL;
    srcnn_trainer *trainer = trainer_get(capsule);
    if (!trainer) return NULL;
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    Py_BEGIN_ALLOW_THREADS status = call(trainer, err);
    Py_END_ALLOW_THREADS if (status != SRCNN_OK) return ext_raise(status, err);
    Py_RETURN_NONE;
}

/* trainer_backward(trainer) */
static PyObject *py_trainer_backward(PyObject *self, PyObject *args) {
    (void)self;
    return run_trainer(args, srcnn_trainer_backward);
}

/* trainer_zero_grad(trainer) */
static PyObject *py_trainer_zero_grad(PyObject *self, PyObject *args) {
    (void)self;
    return run_trainer(args, srcnn_trainer_zero_grad);
}

/* trainer_sgd_step(trainer, lr, momentum, weight_decay) */
static PyObject *py_trainer_sgd_step(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    double lr, momentum, weight_decay;
    if (!PyArg_ParseTuple(args, "Oddd", &capsule, &lr, &momentum, &weight_decay)) return NULL;
    srcnn_trainer *trainer = trainer_get(capsule);
    if (!trainer) return NULL;
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    Py_BEGIN_ALLOW_THREADS status = srcnn_trainer_sgd_step(trainer, lr, momentum, weight_decay, err);
    Py_END_ALLOW_THREADS if (status != SRCNN_OK) return ext_raise(status, err);
    Py_RETURN_NONE;
}

/* trainer_state(trainer, which) -> arrays capsule */
static PyObject *py_trainer_state(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    int which;
    if (!PyArg_ParseTuple(args, "Oi", &capsule, &which)) return NULL;
    srcnn_trainer *trainer = trainer_get(capsule);
    if (!trainer) return NULL;
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    srcnn_arrays *out = NULL;
    Py_BEGIN_ALLOW_THREADS status = srcnn_trainer_state(trainer, which, &out, err);
    Py_END_ALLOW_THREADS if (status != SRCNN_OK) return ext_raise(status, err);
    return arrays_capsule(out);
}

/* trainer_restore(trainer, names, momentum arrays, steps) */
static PyObject *py_trainer_restore(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *names_obj, *arrays_obj;
    long long steps;
    if (!PyArg_ParseTuple(args, "OOOL", &capsule, &names_obj, &arrays_obj, &steps)) return NULL;
    srcnn_trainer *trainer = trainer_get(capsule);
    if (!trainer) return NULL;
    state_dict d;
    if (state_get(names_obj, arrays_obj, &d) != 0) return NULL;
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    Py_BEGIN_ALLOW_THREADS status =
        srcnn_trainer_restore(trainer, d.cnames, d.list.arrays, (int64_t)d.n, (int64_t)steps, err);
    Py_END_ALLOW_THREADS state_release(&d);
    if (status != SRCNN_OK) return ext_raise(status, err);
    Py_RETURN_NONE;
}

/* trainer_detect(trainer, images) -> arrays capsule */
static PyObject *py_trainer_detect(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *images_obj;
    if (!PyArg_ParseTuple(args, "OO", &capsule, &images_obj)) return NULL;
    srcnn_trainer *trainer = trainer_get(capsule);
    if (!trainer) return NULL;
    PyObject *images = PySequence_Tuple(images_obj);
    if (!images) return NULL;
    ext_array_list list;
    if (ext_array_list_get(images, "images", &list) != 0) {
        Py_DECREF(images);
        return NULL;
    }
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    srcnn_arrays *out = NULL;
    Py_BEGIN_ALLOW_THREADS status = srcnn_trainer_detect(trainer, list.arrays, (int64_t)list.n, &out, err);
    Py_END_ALLOW_THREADS ext_array_list_release(&list);
    Py_DECREF(images);
    if (status != SRCNN_OK) return ext_raise(status, err);
    return arrays_capsule(out);
}

PyMethodDef ext_models_methods[] = {{"model_create", py_model_create, METH_VARARGS, NULL},
                                    {"model_transform", py_model_transform, METH_VARARGS, NULL},
                                    {"model_features", py_model_features, METH_VARARGS, NULL},
                                    {"model_detect", py_model_detect, METH_VARARGS, NULL},
                                    {"arrays_info", py_arrays_info, METH_VARARGS, NULL},
                                    {"arrays_read", py_arrays_read, METH_VARARGS, NULL},
                                    {"arrays_take", py_arrays_take, METH_VARARGS, NULL},
                                    {"trainer_create", py_trainer_create, METH_VARARGS, NULL},
                                    {"trainer_forward", py_trainer_forward, METH_VARARGS, NULL},
                                    {"trainer_backward", py_trainer_backward, METH_VARARGS, NULL},
                                    {"trainer_zero_grad", py_trainer_zero_grad, METH_VARARGS, NULL},
                                    {"trainer_sgd_step", py_trainer_sgd_step, METH_VARARGS, NULL},
                                    {"trainer_state", py_trainer_state, METH_VARARGS, NULL},
                                    {"trainer_restore", py_trainer_restore, METH_VARARGS, NULL},
                                    {"trainer_detect", py_trainer_detect, METH_VARARGS, NULL},
                                    {NULL, NULL, 0, NULL}};
