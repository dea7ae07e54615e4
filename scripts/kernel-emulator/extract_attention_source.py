# Extracts the attention module source (common + attention) from the Swift literals for the CPU emulator,
# with the inline-PTX spots (mma_bf16_16816, ldsm_x4, ldsm_x4_trans, the cp.async ones) removed: the emulator defines them.
# Usage: python3 extract_attention_source.py <repo root> <output dir>
import re, sys
from kernel_literals import literal, without_ptx_spots
ROOT = sys.argv[1]; OUT = sys.argv[2]
K = ROOT + '/Sources/TensorCUDA/KernelSource.swift'
src = literal(K, 'common') + literal(K, 'attentionTensorCore')
src = without_ptx_spots(src)
# cp.async (CG_ATT_ASYNC): both the PTX spot and its synchronous fallback go; the emulator defines them,
# landing each group's copies only when waited for (or at issue with -DEMU_ASYNC_EARLY), so a missing wait or
# barrier shows as wrong values.
src, n = re.subn(r'__device__ __forceinline__ void cp_async16\(.*?\n\}\n', '', src, flags=re.S)
assert n == 2, 'cp_async16'
src, n = re.subn(r'__device__ __forceinline__ void cp_async_(commit|wait_one)\(\).*\n', '', src)
assert n == 4, 'cp_async_commit / cp_async_wait_one'
open(OUT + '/kernels.inc', 'w').write(src)
