/* The one way from Python arguments to a call of swiftrcnn.h: each bound function is described by an ext_op (its
   parameters' kinds in the header's order, generated into bindings.gen.c by scripts/gen_bindings.py), and
   ext_invoke converts a Python argument tuple by that description, calls the function with the GIL released and
   turns its status into an exception. */
#ifndef SWIFTRCNN_MARSHAL_H
#define SWIFTRCNN_MARSHAL_H

#include "ext.h"

/* Parameter kinds (see scripts/gen_bindings.py for the C types they come from). */
enum {
    EXT_ARRAY_IN = 1, /* const srcnn_array *: a buffer                          */
    EXT_ARRAY_OUT,    /* srcnn_array *: a writable buffer                        */
    EXT_ARRAY_LIST,   /* SRCNN_LIST(n) const srcnn_array *: a sequence of buffers */
    EXT_STRING_LIST,  /* SRCNN_LIST(n) const char *const *: a sequence of str     */
    EXT_INT32,
    EXT_INT64,
    EXT_UINT64,
    EXT_DOUBLE,
    EXT_STRING, /* const char *: a str                                     */
    EXT_COUNT,  /* int64_t *: written by the function, returned            */
    EXT_LENGTH, /* the length of a list parameter: not passed from Python  */
    EXT_KIND_MASK = 0xff,
    EXT_OPTIONAL = 0x100 /* a pointer parameter that may be NULL: Python None       */
};

typedef struct {
    const char *name;
    int kind;   /* EXT_* kind, | EXT_OPTIONAL */
    int length; /* for lists: the index of their EXT_LENGTH parameter, else -1 */
} ext_param;

/* One argument as the C function receives it. */
typedef union {
    srcnn_array *array;
    const srcnn_array *arrays;
    const char *const *strings;
    const char *str;
    int32_t i32;
    int64_t i64;
    uint64_t u64;
    double f64;
    int64_t *count;
} ext_value;

/* Most parameters of one function. */
#define EXT_MAX_PARAMS 32

typedef struct {
    const char *name;        /* Python name: the C name without "srcnn_"                           */
    const ext_param *params; /* in the header's order, without `err`                               */
    int count;
    int32_t (*call)(ext_value *values, char *err);
    const char *doc;
} ext_op;

typedef struct {
    const char *name; /* without "SRCNN_" */
    long long value;
    const char *string; /* for string constants, else NULL */
} ext_constant;

/* Generated tables (bindings.gen.c), each ending with a NULL name. */
extern const ext_op ext_ops[];
extern const ext_constant ext_constants[];

/* Calls `op` with the Python arguments `args` (a tuple). Returns None, the count the function wrote, or a tuple of
   counts; NULL with an exception set on failure. */
PyObject *ext_invoke(const ext_op *op, PyObject *args);

/* Adds every ext_ops entry as a function and every ext_constants entry as a constant of `module`. */
int ext_add_generated(PyObject *module);

#endif
