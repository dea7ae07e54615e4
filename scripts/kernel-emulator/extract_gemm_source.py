# Extracts the gemm modules' source (common + gemm + gemmResident, and gemmWarpgroup: its own module on a GPU) from the Swift literals for the CPU emulator, with the
# inline-PTX spots removed and cp.async's definitions removed
# (the emulator defines mma_bf16_16816, ldsm_x4, ldsm_x4_trans and cp.async).
# Usage: python3 extract_gemm_source.py <repo root> <output dir>
import re, sys
from kernel_literals import literal, without_ptx_spots, strip_async_copies
ROOT = sys.argv[1]; OUT = sys.argv[2]
src = (literal(ROOT + '/Sources/TensorCUDA/KernelSource.swift', 'common') + literal(ROOT + '/Sources/TensorCUDA/GemmKernelSource.swift', 'gemm')
       + literal(ROOT + '/Sources/TensorCUDA/GemmResidentKernelSource.swift', 'gemmResident')
       + literal(ROOT + '/Sources/TensorCUDA/WarpgroupMMAKernelSource.swift', 'warpgroupMMA')
       + literal(ROOT + '/Sources/TensorCUDA/GemmWarpgroupKernelSource.swift', 'gemmWarpgroup'))
src = strip_async_copies(without_ptx_spots(src))
open(OUT + '/kernels.inc', 'w').write(src)
