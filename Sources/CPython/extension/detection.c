/* Bindings of the detection ops. */
#include "ext.h"

PyMethodDef ext_detection_methods[] = {{NULL, NULL, 0, NULL}};
