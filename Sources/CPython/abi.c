/* The CSwiftRCNN target exists to publish include/swiftrcnn.h to Swift (Core implements it, the tests call it).
   SwiftPM needs one source file per C target; this is it. It defines nothing. */
#include "swiftrcnn.h"
