// Intentionally empty translation unit: SwiftPM needs one source file per C target.
#include "CCUDA.h"
