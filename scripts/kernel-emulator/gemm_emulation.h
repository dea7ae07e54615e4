// Shared by the GEMM emulators (gemm_emulator.cpp, resident_gemm_emulator.cpp, warpgroup_gemm_emulator.cpp): the gemm module holds both kernels,
// and gemm_resident's dynamic shared memory (extern __shared__ on a GPU) is this static array here, one block
// running at a time.
#pragma once
#include "async_copy_emulation.h"
#define GR_SHARED_ARRAY 1
alignas(16) static unsigned short gr_smem[3 * 64 * (256 + 8)];
