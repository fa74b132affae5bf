/* Bindings of the roi ops (filled in as they land). */
#include "ext.h"

PyMethodDef ext_roi_methods[] = {{NULL, NULL, 0, NULL}};
