// Run-time loading of the CUDA driver, NVRTC and cuBLASLt with dlopen: the binary builds and runs on
// machines without CUDA, where TensorCUDA reports the GPU as unavailable with the loader's reason.
#define _GNU_SOURCE
#include "CCUDA.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static void copy_error(char *error, size_t length, const char *text) {
    if (error == NULL || length == 0) return;
    snprintf(error, length, "%s", text ? text : "unknown error");
}

void *ccuda_open_library(const char *const *names, const char *directories, char *error, size_t errorLength) {
    char last[512] = "no library name given";
    // Directories named by the caller come first so that an explicit choice wins over the system path.
    if (directories != NULL && directories[0] != '\0') {
        const char *start = directories;
        while (*start != '\0') {
            const char *end = strchr(start, ':');
            size_t length = end ? (size_t)(end - start) : strlen(start);
            if (length > 0 && length < 3000) {
                for (const char *const *name = names; *name != NULL; name++) {
                    char path[4096];
                    snprintf(path, sizeof path, "%.*s/%s", (int)length, start, *name);
                    void *handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
                    if (handle != NULL) return handle;
                    const char *text = dlerror();
                    if (text) snprintf(last, sizeof last, "%s", text);
                }
            }
            if (end == NULL) break;
            start = end + 1;
        }
    }
    for (const char *const *name = names; *name != NULL; name++) {
        void *handle = dlopen(*name, RTLD_NOW | RTLD_GLOBAL);
        if (handle != NULL) return handle;
        const char *text = dlerror();
        if (text) snprintf(last, sizeof last, "%s", text);
    }
    copy_error(error, errorLength, last);
    return NULL;
}

/// Looks up `name`, then each fallback name in turn (versioned symbols first).
static void *lookup(void *library, const char *name, const char *fallback) {
    void *symbol = dlsym(library, name);
    if (symbol == NULL && fallback != NULL) symbol = dlsym(library, fallback);
    return symbol;
}

#define RESOLVE(field, name, fallback)                                              \
    do {                                                                            \
        *(void **)(&api->field) = lookup(library, name, fallback);                  \
        if (api->field == NULL) {                                                   \
            char text[256];                                                         \
            snprintf(text, sizeof text, "missing symbol %s", name);                 \
            copy_error(error, errorLength, text);                                   \
            return -1;                                                              \
        }                                                                           \
    } while (0)

int ccuda_resolve_driver(void *library, CCUDADriverAPI *api, char *error, size_t errorLength) {
    RESOLVE(cuInit, "cuInit", NULL);
    RESOLVE(cuDriverGetVersion, "cuDriverGetVersion", NULL);
    RESOLVE(cuGetErrorString, "cuGetErrorString", NULL);
    RESOLVE(cuDeviceGetCount, "cuDeviceGetCount", NULL);
    RESOLVE(cuDeviceGet, "cuDeviceGet", NULL);
    RESOLVE(cuDeviceGetName, "cuDeviceGetName", NULL);
    RESOLVE(cuDeviceGetAttribute, "cuDeviceGetAttribute", NULL);
    RESOLVE(cuDeviceTotalMem, "cuDeviceTotalMem_v2", "cuDeviceTotalMem");
    RESOLVE(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", NULL);
    RESOLVE(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease");
    RESOLVE(cuDevicePrimaryCtxSetFlags, "cuDevicePrimaryCtxSetFlags_v2", "cuDevicePrimaryCtxSetFlags");
    RESOLVE(cuCtxSetCurrent, "cuCtxSetCurrent", NULL);
    RESOLVE(cuCtxSynchronize, "cuCtxSynchronize", NULL);
    RESOLVE(cuMemGetInfo, "cuMemGetInfo_v2", "cuMemGetInfo");
    RESOLVE(cuMemAlloc, "cuMemAlloc_v2", "cuMemAlloc");
    RESOLVE(cuMemFree, "cuMemFree_v2", "cuMemFree");
    RESOLVE(cuMemHostAlloc, "cuMemHostAlloc", NULL);
    RESOLVE(cuMemFreeHost, "cuMemFreeHost", NULL);
    RESOLVE(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", "cuMemcpyHtoDAsync");
    RESOLVE(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", "cuMemcpyDtoHAsync");
    RESOLVE(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", "cuMemcpyDtoDAsync");
    RESOLVE(cuMemsetD8Async, "cuMemsetD8Async", NULL);
    RESOLVE(cuStreamCreate, "cuStreamCreate", NULL);
    RESOLVE(cuStreamDestroy, "cuStreamDestroy_v2", "cuStreamDestroy");
    RESOLVE(cuStreamSynchronize, "cuStreamSynchronize", NULL);
    RESOLVE(cuStreamWaitEvent, "cuStreamWaitEvent", NULL);
    RESOLVE(cuEventCreate, "cuEventCreate", NULL);
    RESOLVE(cuEventDestroy, "cuEventDestroy_v2", "cuEventDestroy");
    RESOLVE(cuEventRecord, "cuEventRecord", NULL);
    RESOLVE(cuEventSynchronize, "cuEventSynchronize", NULL);
    RESOLVE(cuEventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime");
    RESOLVE(cuModuleLoadData, "cuModuleLoadData", NULL);
    RESOLVE(cuModuleUnload, "cuModuleUnload", NULL);
    RESOLVE(cuModuleGetFunction, "cuModuleGetFunction", NULL);
    RESOLVE(cuFuncSetAttribute, "cuFuncSetAttribute", NULL);
    RESOLVE(cuLaunchKernel, "cuLaunchKernel", NULL);
    return 0;
}

int ccuda_resolve_nvrtc(void *library, CCUDANVRTCAPI *api, char *error, size_t errorLength) {
    RESOLVE(nvrtcGetErrorString, "nvrtcGetErrorString", NULL);
    RESOLVE(nvrtcVersion, "nvrtcVersion", NULL);
    RESOLVE(nvrtcCreateProgram, "nvrtcCreateProgram", NULL);
    RESOLVE(nvrtcDestroyProgram, "nvrtcDestroyProgram", NULL);
    RESOLVE(nvrtcCompileProgram, "nvrtcCompileProgram", NULL);
    RESOLVE(nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize", NULL);
    RESOLVE(nvrtcGetProgramLog, "nvrtcGetProgramLog", NULL);
    RESOLVE(nvrtcGetCUBINSize, "nvrtcGetCUBINSize", NULL);
    RESOLVE(nvrtcGetCUBIN, "nvrtcGetCUBIN", NULL);
    return 0;
}

int ccuda_resolve_blaslt(void *library, CCUDABLASLtAPI *api, char *error, size_t errorLength) {
    RESOLVE(cublasLtGetVersion, "cublasLtGetVersion", NULL);
    RESOLVE(cublasLtCreate, "cublasLtCreate", NULL);
    RESOLVE(cublasLtDestroy, "cublasLtDestroy", NULL);
    RESOLVE(cublasLtMatmulDescCreate, "cublasLtMatmulDescCreate", NULL);
    RESOLVE(cublasLtMatmulDescDestroy, "cublasLtMatmulDescDestroy", NULL);
    RESOLVE(cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute", NULL);
    RESOLVE(cublasLtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate", NULL);
    RESOLVE(cublasLtMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy", NULL);
    RESOLVE(cublasLtMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate", NULL);
    RESOLVE(cublasLtMatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy", NULL);
    RESOLVE(cublasLtMatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute", NULL);
    RESOLVE(cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic", NULL);
    RESOLVE(cublasLtMatmulAlgoCheck, "cublasLtMatmulAlgoCheck", NULL);
    RESOLVE(cublasLtMatmul, "cublasLtMatmul", NULL);
    return 0;
}

void ccuda_library_directory(void *symbol, char *directory, size_t length) {
    if (directory == NULL || length == 0) return;
    directory[0] = '\0';
    Dl_info info;
    if (symbol == NULL || dladdr(symbol, &info) == 0 || info.dli_fname == NULL) return;
    const char *slash = strrchr(info.dli_fname, '/');
    if (slash == NULL) return;
    size_t n = (size_t)(slash - info.dli_fname);
    if (n >= length) return;
    memcpy(directory, info.dli_fname, n);
    directory[n] = '\0';
}

