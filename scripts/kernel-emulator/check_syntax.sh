#!/usr/bin/env bash
# Type-checks every NVRTC kernel module (Sources/TensorCUDA/*KernelSource.swift) as CUDA device code with the
# clang of the Swift toolchain, no GPU or CUDA toolkit needed (clang's NVPTX front end, -fsyntax-only, a small
# prelude declaring the CUDA built-ins the kernels use): catches undeclared names, type errors and bad inline-asm
# operands before any device time. Each module in each configuration the backend compiles.
# Usage: bash scripts/kernel-emulator/check_syntax.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$ROOT" "$WORK" <<'PY'
import sys
root, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, root + '/scripts/kernel-emulator')
from kernel_literals import literal
K = root + '/Sources/TensorCUDA/KernelSource.swift'
common = literal(K, 'common')
for name, path, lit in [('core', K, 'core'), ('attention', K, 'attentionTensorCore'), ('attention-scalar', K, 'attentionScalar'),
                        ('kmeans', root + '/Sources/TensorCUDA/KMeansKernelSource.swift', 'kmeans'),
                        ('gemm', root + '/Sources/TensorCUDA/GemmKernelSource.swift', 'gemm')]:
    # The gemm module's source is gemm + gemmResident (GemmKernelSource.swift appends it).
    extra = literal(root + '/Sources/TensorCUDA/GemmResidentKernelSource.swift', 'gemmResident') if name == 'gemm' else ''
    open(f'{out}/{name}.cu', 'w').write(common + literal(path, lit) + extra)
# The sm_90a modules: common + the warpgroup-MMA spot + the module (checked with __CUDA_ARCH_FEAT_SM90_ALL defined, as
# NVRTC defines it for sm_90a, so that the spot's inline assembly is checked too).
wg = literal(root + '/Sources/TensorCUDA/WarpgroupMMAKernelSource.swift', 'warpgroupMMA')
for name, path, lit in [('gemm-wgmma', root + '/Sources/TensorCUDA/GemmWarpgroupKernelSource.swift', 'gemmWarpgroup'),
                        ('kmeans-wgmma', root + '/Sources/TensorCUDA/KMeansWarpgroupKernelSource.swift', 'kmeansWarpgroup')]:
    open(f'{out}/{name}.cu', 'w').write(common + wg + literal(path, lit))
PY
cat > "$WORK/prelude.h" <<'H'
#include <__clang_cuda_builtin_vars.h>
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define __align__(n) __attribute__((aligned(n)))
typedef unsigned long size_t;
struct __attribute__((aligned(16))) uint4 { unsigned x, y, z, w; };
struct __attribute__((aligned(16))) int4 { int x, y, z, w; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(8))) float2 { float x, y; };
__device__ float __uint_as_float(unsigned); __device__ unsigned __float_as_uint(float);
__device__ float __int_as_float(int); __device__ int __float_as_int(float);
__device__ float erff(float); __device__ float tanhf(float); __device__ float sqrtf(float); __device__ float exp2f(float);
__device__ float fmaxf(float, float); __device__ float fminf(float, float); __device__ float expf(float); __device__ float rsqrtf(float);
__device__ float fmaf(float, float, float); __device__ float fabsf(float);
__device__ float __fdividef(float, float); __device__ float __expf(float); __device__ float copysignf(float, float);
__device__ float __shfl_xor_sync(unsigned, float, int); __device__ int __shfl_xor_sync(unsigned, int, int);
__device__ float __shfl_sync(unsigned, float, int); __device__ int __shfl_sync(unsigned, int, int);
__device__ void __syncthreads(); __device__ void __syncwarp(); __device__ int __ffs(unsigned);
__device__ size_t __cvta_generic_to_shared(const void*);
__device__ int max(int, int); __device__ int min(int, int); __device__ int abs(int);
__device__ float atomicAdd(float*, float); __device__ int atomicAdd(int*, int);
__device__ unsigned long long atomicAdd(unsigned long long*, unsigned long long); __device__ long long llrintf(float);
H
status=0
check() {  # module, defines...
  local module=$1; shift
  if clang++ -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_90 -fsyntax-only -include "$WORK/prelude.h" "$@" "$WORK/$module.cu" > "$WORK/log" 2>&1; then
    echo "PASS $module $*"
  else
    echo "FAIL $module $*"; grep -E "error" "$WORK/log" | head -5; status=1
  fi
}
for bf in 0 1; do check core -DCG_BF16=$bf; done
for hd in 32 64; do for pipe in 0 1; do for mt in 1 2; do for bf in 0 1; do check attention -DCG_BF16=1 -DCG_HEAD_DIM=$hd -DCG_ATT_PIPE=$pipe -DCG_ATT_MT=$mt -DCG_ATT_BRANCHFREE=$bf -DCG_ATT_MINB=2; done; done; done; done
# Asynchronous key/value copies (cp.async; excludes the pipelined variant).
for hd in 32 64; do for mt in 1 2; do check attention -DCG_BF16=1 -DCG_HEAD_DIM=$hd -DCG_ATT_PIPE=0 -DCG_ATT_ASYNC=1 -DCG_ATT_MT=$mt -DCG_ATT_BRANCHFREE=0 -DCG_ATT_MINB=4; done; done
for bf in 0 1; do check attention-scalar -DCG_BF16=$bf -DCG_HEAD_DIM=64; done
for bf in 0 1; do check kmeans -DCG_BF16=$bf -DCG_KM_DP=48 -DCG_KM_WM=8 -DCG_KM_NB=2; done
# 128: the widest the tensor-core grouped search (km_c2f_top_mma, km_c2f_fine_mma) is built for; 144: past it.
for dp in 128 144; do check kmeans -DCG_BF16=1 -DCG_KM_DP=$dp -DCG_KM_WM=4 -DCG_KM_NB=1; done
for bn in 64 128; do check gemm -DCG_BF16=1 -DGM_BN=$bn; done
check gemm-wgmma -DCG_BF16=1 -D__CUDA_ARCH_FEAT_SM90_ALL=1
for dp in 48 128; do check kmeans-wgmma -DCG_BF16=1 -D__CUDA_ARCH_FEAT_SM90_ALL=1 -DCG_KW_DP=$dp -DCG_KW_WG=2 -DCG_KW_STAGES=4; done
exit $status
