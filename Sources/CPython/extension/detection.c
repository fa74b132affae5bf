/* Bindings of the detection ops (filled in as they land). */
#include "ext.h"

PyMethodDef ext_detection_methods[] = {{NULL, NULL, 0, NULL}};
