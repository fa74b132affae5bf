/* Shared helpers of the swiftrcnn._C extension: NumPy (or any buffer-protocol) arrays in, srcnn_array views out,
   srcnn_status codes turned into Python exceptions. The extension holds no logic of its own: every rule about
   shapes and values is checked by the library behind swiftrcnn.h. */
#ifndef SWIFTRCNN_EXT_H
#define SWIFTRCNN_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "swiftrcnn.h"

/* One array argument: the Python buffer it came from and the srcnn_array that describes it. */
typedef struct {
    Py_buffer view;
    int held;
    srcnn_array array;
} ext_array;

/* Fills `a` from `obj`, which must expose a C-contiguous buffer of float32, float64, int64 or uint8/bool in native
   byte order (the Python layer converts with numpy.ascontiguousarray first). `name` is used in the TypeError.
   Returns 0 on success, -1 with an exception set. */
int ext_array_get(PyObject *obj, const char *name, int writable, ext_array *a);
void ext_array_release(ext_array *a);

/* The array arguments of one call, released together. */
#define EXT_MAX_ARRAYS 12
typedef struct {
    ext_array a[EXT_MAX_ARRAYS];
    int n;
} ext_args;

/* Appends one array argument (see ext_array_get); returns 0, or -1 with an exception set. */
int ext_args_add(ext_args *args, PyObject *obj, const char *name, int writable);
/* The srcnn_array of the i-th added argument. */
#define EXT_ARR(args, i) (&(args).a[(i)].array)
void ext_args_release(ext_args *args);

/* Raises the Python exception for a non-OK status with the library's message; returns NULL. */
PyObject *ext_raise(int32_t status, const char *message);

/* Runs `expr` (a call into swiftrcnn.h) with the GIL released, then releases the arrays; on failure returns NULL
   from the calling function with the exception set. Expects `ext_args x`, `char err[SRCNN_ERR_CAPACITY]` and
   `int32_t status` in scope. */
#define EXT_CALL(expr)                                                                                                 \
    Py_BEGIN_ALLOW_THREADS status = (expr);                                                                            \
    Py_END_ALLOW_THREADS ext_args_release(&x);                                                                         \
    if (status != SRCNN_OK) return ext_raise(status, err)

/* The capsule name of an srcnn_arrays result (read by arrays_info / arrays_read, models.c). */
#define EXT_ARRAYS_CAPSULE "swiftrcnn.arrays"

/* The functions bound by hand, each table ending with a {NULL} sentinel: the model handles (models.c) and the
   parameter initialisation (init.c). */
extern PyMethodDef ext_models_methods[];
/* Readies the types of models.c (the taken arrays); 0, or -1 with an exception set. */
int ext_models_ready(void);
extern PyMethodDef ext_init_methods[];

#endif
