/* Bindings of the roi_align ops. */
#include "ext.h"

PyMethodDef ext_roi_align_methods[] = {{NULL, NULL, 0, NULL}};
