// OpenBLAS's CBLAS interface (Debian: libopenblas-dev). Accelerate provides the same names on macOS.
#if __has_include(<cblas-openblas.h>)
#include <cblas-openblas.h>
#else
#include <cblas.h>
#endif
