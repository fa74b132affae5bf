/* Bindings of the roi_pool ops. */
#include "ext.h"

PyMethodDef ext_roi_pool_methods[] = {{NULL, NULL, 0, NULL}};
