// Declarations of the CUDA driver, NVRTC and cuBLASLt entry points that TensorCUDA loads with dlopen
// at run time. Written by us from the public API documentation: no CUDA header or library is needed
// to build, and a machine without CUDA simply reports the GPU as unavailable.
#ifndef CCUDA_H
#define CCUDA_H
#include <stddef.h>
#include <stdint.h>

// MARK: driver API types
typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef unsigned long long CUdeviceptr;

enum {
    CCUDA_SUCCESS = 0,
    CCUDA_ERROR_OUT_OF_MEMORY = 2,
    CCUDA_ERROR_NOT_INITIALIZED = 3,
    CCUDA_ERROR_INSUFFICIENT_DRIVER = 35,
    CCUDA_ERROR_NO_DEVICE = 100,
    CCUDA_ERROR_INVALID_DEVICE = 101,
    CCUDA_ERROR_INVALID_IMAGE = 200,
    CCUDA_ERROR_NO_BINARY_FOR_GPU = 209,
    CCUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
};

enum {
    CCUDA_ATTR_MULTIPROCESSOR_COUNT = 16,
    CCUDA_ATTR_COMPUTE_CAPABILITY_MAJOR = 75,
    CCUDA_ATTR_COMPUTE_CAPABILITY_MINOR = 76,
    CCUDA_ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CCUDA_FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    CCUDA_STREAM_NON_BLOCKING = 1,
    CCUDA_EVENT_DEFAULT = 0,
    CCUDA_EVENT_DISABLE_TIMING = 2,
    CCUDA_CTX_SCHED_AUTO = 0,
    CCUDA_CTX_SCHED_SPIN = 1,
    CCUDA_CTX_SCHED_YIELD = 2,
    CCUDA_CTX_SCHED_BLOCKING_SYNC = 4,
};

/// The driver entry points we use (the `_v2` symbols where the driver exports versioned names).
typedef struct CCUDADriverAPI {
    CUresult (*cuInit)(unsigned int flags);
    CUresult (*cuDriverGetVersion)(int *version);
    CUresult (*cuGetErrorString)(CUresult error, const char **text);
    CUresult (*cuDeviceGetCount)(int *count);
    CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
    CUresult (*cuDeviceGetName)(char *name, int length, CUdevice device);
    CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
    CUresult (*cuDeviceTotalMem)(size_t *bytes, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device);
    CUresult (*cuDevicePrimaryCtxSetFlags)(CUdevice device, unsigned int flags);
    CUresult (*cuCtxSetCurrent)(CUcontext context);
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuMemGetInfo)(size_t *free, size_t *total);
    CUresult (*cuMemAlloc)(CUdeviceptr *pointer, size_t bytes);
    CUresult (*cuMemFree)(CUdeviceptr pointer);
    CUresult (*cuMemHostAlloc)(void **pointer, size_t bytes, unsigned int flags);
    CUresult (*cuMemFreeHost)(void *pointer);
    CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr destination, const void *source, size_t bytes, CUstream stream);
    CUresult (*cuMemcpyDtoHAsync)(void *destination, CUdeviceptr source, size_t bytes, CUstream stream);
    CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr destination, CUdeviceptr source, size_t bytes, CUstream stream);
    CUresult (*cuMemsetD8Async)(CUdeviceptr destination, unsigned char value, size_t count, CUstream stream);
    CUresult (*cuStreamCreate)(CUstream *stream, unsigned int flags);
    CUresult (*cuStreamDestroy)(CUstream stream);
    CUresult (*cuStreamSynchronize)(CUstream stream);
    CUresult (*cuStreamWaitEvent)(CUstream stream, CUevent event, unsigned int flags);
    CUresult (*cuEventCreate)(CUevent *event, unsigned int flags);
    CUresult (*cuEventDestroy)(CUevent event);
    CUresult (*cuEventRecord)(CUevent event, CUstream stream);
    CUresult (*cuEventSynchronize)(CUevent event);
    CUresult (*cuEventElapsedTime)(float *milliseconds, CUevent start, CUevent end);
    CUresult (*cuModuleLoadData)(CUmodule *module, const void *image);
    CUresult (*cuModuleUnload)(CUmodule module);
    CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module, const char *name);
    CUresult (*cuFuncSetAttribute)(CUfunction function, int attribute, int value);
    CUresult (*cuLaunchKernel)(CUfunction function, unsigned int gridX, unsigned int gridY, unsigned int gridZ,
                               unsigned int blockX, unsigned int blockY, unsigned int blockZ,
                               unsigned int sharedBytes, CUstream stream, void **parameters, void **extra);
} CCUDADriverAPI;

// MARK: NVRTC
typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

typedef struct CCUDANVRTCAPI {
    const char *(*nvrtcGetErrorString)(nvrtcResult result);
    nvrtcResult (*nvrtcVersion)(int *major, int *minor);
    nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram *program, const char *source, const char *name,
                                      int headerCount, const char *const *headers, const char *const *includeNames);
    nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram *program);
    nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram program, int optionCount, const char *const *options);
    nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram program, size_t *size);
    nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram program, char *log);
    nvrtcResult (*nvrtcGetCUBINSize)(nvrtcProgram program, size_t *size);
    nvrtcResult (*nvrtcGetCUBIN)(nvrtcProgram program, char *cubin);
} CCUDANVRTCAPI;

// MARK: cuBLASLt
typedef int cublasStatus_t;
typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
typedef void *cublasLtMatmulDesc_t;
typedef void *cublasLtMatrixLayout_t;
typedef void *cublasLtMatmulPreference_t;

/// One answer of cublasLtMatmulAlgoGetHeuristic (layout as documented for cuBLAS 11–13).
typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;

enum {
    CCUDA_R_32F = 0,
    CCUDA_R_16BF = 14,
    CCUBLAS_COMPUTE_32F = 68,
    CCUBLAS_COMPUTE_32F_FAST_TF32 = 77,
    CCUBLAS_OP_N = 0,
    CCUBLAS_OP_T = 1,
    CCUBLASLT_MATMUL_DESC_TRANSA = 3,
    CCUBLASLT_MATMUL_DESC_TRANSB = 4,
    CCUBLASLT_MATMUL_DESC_EPILOGUE = 7,
    CCUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
    CCUBLASLT_EPILOGUE_DEFAULT = 1,
    CCUBLASLT_EPILOGUE_BIAS = 4,
    CCUBLASLT_EPILOGUE_GELU = 32,
    CCUBLASLT_EPILOGUE_GELU_BIAS = 36,
    CCUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
};

typedef struct CCUDABLASLtAPI {
    size_t (*cublasLtGetVersion)(void);
    cublasStatus_t (*cublasLtCreate)(cublasLtHandle_t *handle);
    cublasStatus_t (*cublasLtDestroy)(cublasLtHandle_t handle);
    cublasStatus_t (*cublasLtMatmulDescCreate)(cublasLtMatmulDesc_t *desc, int computeType, int scaleType);
    cublasStatus_t (*cublasLtMatmulDescDestroy)(cublasLtMatmulDesc_t desc);
    cublasStatus_t (*cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc_t desc, int attribute, const void *value, size_t size);
    cublasStatus_t (*cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout_t *layout, int type, uint64_t rows, uint64_t cols, int64_t ld);
    cublasStatus_t (*cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout_t layout);
    cublasStatus_t (*cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference_t *preference);
    cublasStatus_t (*cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference_t preference);
    cublasStatus_t (*cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t preference, int attribute, const void *value, size_t size);
    cublasStatus_t (*cublasLtMatmulAlgoGetHeuristic)(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                                     cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                     cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                                     cublasLtMatmulPreference_t preference, int requested,
                                                     cublasLtMatmulHeuristicResult_t *results, int *returned);
    /// Whether `algo` (e.g. read back from the kernel cache) can run this matmul; fills `result` (workspace, state).
    cublasStatus_t (*cublasLtMatmulAlgoCheck)(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              const cublasLtMatmulAlgo_t *algo, cublasLtMatmulHeuristicResult_t *result);
    cublasStatus_t (*cublasLtMatmul)(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha,
                                     const void *a, cublasLtMatrixLayout_t aLayout,
                                     const void *b, cublasLtMatrixLayout_t bLayout, const void *beta,
                                     const void *c, cublasLtMatrixLayout_t cLayout,
                                     void *d, cublasLtMatrixLayout_t dLayout,
                                     const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspaceSize,
                                     CUstream stream);
} CCUDABLASLtAPI;

// MARK: loading

/// Loads one shared library: tries `names` (NULL-terminated) first as given (the dynamic linker's search
/// path), then inside each directory of the colon-separated `directories`. Returns the handle or NULL,
/// with the last dlerror text in `error`.
void *ccuda_open_library(const char *const *names, const char *directories, char *error, size_t errorLength);

/// Resolves every entry point of the driver API from `library`. Returns 0, or -1 with the missing symbol
/// named in `error`.
int ccuda_resolve_driver(void *library, CCUDADriverAPI *api, char *error, size_t errorLength);
int ccuda_resolve_nvrtc(void *library, CCUDANVRTCAPI *api, char *error, size_t errorLength);
int ccuda_resolve_blaslt(void *library, CCUDABLASLtAPI *api, char *error, size_t errorLength);

/// The directory holding a loaded library (for loading its companions from the same place), or "" .
void ccuda_library_directory(void *symbol, char *directory, size_t length);

#endif
