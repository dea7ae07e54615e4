# Extracts the attention module source (common + attention) from the Swift literals for the CPU emulator,
# with the inline-PTX spots (mma_bf16_16816, ldsm_x4, ldsm_x4_trans, the cp.async ones) removed: the emulator defines them.
# Usage: python3 extract_attention_source.py <repo root> <output dir>
import re, sys
from kernel_literals import literal, without_ptx_spots, strip_async_copies
ROOT = sys.argv[1]; OUT = sys.argv[2]
K = ROOT + '/Sources/TensorCUDA/KernelSource.swift'
src = literal(K, 'common') + literal(K, 'attentionTensorCore')
src = without_ptx_spots(src)
# cp.async (CG_ATT_ASYNC): the emulator defines it (async_copy_emulation.h), landing each group's copies only when
# waited for (or at issue with -DEMU_ASYNC_EARLY), so a missing wait or barrier shows as wrong values.
src = strip_async_copies(src)
open(OUT + '/kernels.inc', 'w').write(src)
