// Declarations of the CUDA driver, NVRTC and cuBLASLt entry points that TensorCUDA loads with dlopen
// at run time. Written by us: no CUDA header or library is needed to build.
#ifndef CCUDA_H
#define CCUDA_H
#include <stddef.h>
#include <stdint.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef unsigned long long CUdeviceptr;

#endif
