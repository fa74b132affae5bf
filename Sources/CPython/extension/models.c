/* Bindings of the detection models: a model is a PyCapsule owning an srcnn_model, a call's result a PyCapsule
   owning an srcnn_arrays that swiftrcnn/models reads into NumPy arrays it allocates. Building and running release
   the GIL. */
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

/* model_create(kind, num_classes, min_size, max_size, image_mean (3 floats), image_std (3 floats),
   rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test, rpn_nms_thresh, rpn_score_thresh, box_score_thresh,
   box_nms_thresh, box_detections_per_img, names (sequence of str), arrays (sequence of float32 arrays))
   -> model capsule */
static PyObject *py_model_create(PyObject *self, PyObject *args) {
    (void)self;
    srcnn_model_config c;
    memset(&c, 0, sizeof(c));
    long long num_classes, pre, post, per_img;
    PyObject *names_obj, *arrays_obj;
    if (!PyArg_ParseTuple(args, "iLdd(ddd)(ddd)LLddddLOO", &c.kind, &num_classes, &c.min_size, &c.max_size,
                          &c.image_mean[0], &c.image_mean[1], &c.image_mean[2], &c.image_std[0], &c.image_std[1],
                          &c.image_std[2], &pre, &post, &c.rpn_nms_thresh, &c.rpn_score_thresh, &c.box_score_thresh,
                          &c.box_nms_thresh, &per_img, &names_obj, &arrays_obj))
        return NULL;
    c.num_classes = num_classes;
    c.rpn_pre_nms_top_n_test = pre;
    c.rpn_post_nms_top_n_test = post;
    c.box_detections_per_img = per_img;
    /* Tuples, so that the names and arrays stay alive and unchanged while the GIL is released. */
    PyObject *names = PySequence_Tuple(names_obj);
    if (!names) return NULL;
    PyObject *arrays = PySequence_Tuple(arrays_obj);
    if (!arrays) {
        Py_DECREF(names);
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    const char **cnames = NULL;
    ext_array_list list = {0};
    PyObject *result = NULL;
    if (PyTuple_GET_SIZE(arrays) != n) {
        PyErr_Format(PyExc_ValueError, "weights: %zd names but %zd arrays", n, PyTuple_GET_SIZE(arrays));
        goto done;
    }
    cnames = PyMem_Calloc(n ? (size_t)n : 1, sizeof(char *));
    if (!cnames) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "weights: keys must be str, got %.100s", Py_TYPE(name)->tp_name);
            goto done;
        }
        cnames[i] = PyUnicode_AsUTF8(name);
        if (!cnames[i]) goto done;
    }
    if (ext_array_list_get(arrays, "weights", &list) != 0) goto done;
    char err[SRCNN_ERR_CAPACITY];
    int32_t status;
    srcnn_model *model = NULL;
    Py_BEGIN_ALLOW_THREADS status = srcnn_model_create(&c, cnames, list.arrays, (int64_t)n, &model, err);
    Py_END_ALLOW_THREADS if (status != SRCNN_OK) {
        ext_raise(status, err);
        goto done;
    }
    result = PyCapsule_New(model, MODEL_CAPSULE, model_capsule_free);
    if (!result) srcnn_model_free(model);
done:
    ext_array_list_release(&list);
    PyMem_Free(cnames);
    Py_DECREF(names);
    Py_DECREF(arrays);
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

PyMethodDef ext_models_methods[] = {{"model_create", py_model_create, METH_VARARGS, NULL},
                                    {"model_transform", py_model_transform, METH_VARARGS, NULL},
                                    {"model_features", py_model_features, METH_VARARGS, NULL},
                                    {"model_detect", py_model_detect, METH_VARARGS, NULL},
                                    {"arrays_info", py_arrays_info, METH_VARARGS, NULL},
                                    {"arrays_read", py_arrays_read, METH_VARARGS, NULL},
                                    {NULL, NULL, 0, NULL}};
