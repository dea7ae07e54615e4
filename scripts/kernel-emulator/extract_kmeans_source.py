# Extracts the k-means module source (common + kmeans) from the Swift literals for the CPU emulator,
# (and kernels_wgmma.inc: the warpgroup-MMA assignment module), with the inline-PTX spots removed (the emulator defines mma_bf16_16816, ldsm_x4 and ldsm_x4_trans) and dynamic shared memory
# mapped to a static buffer. Usage: python3 extract_kmeans_source.py <repo root> <output dir>
import re, sys
from kernel_literals import literal, without_ptx_spots
ROOT = sys.argv[1]; OUT = sys.argv[2]
common = literal(ROOT + '/Sources/TensorCUDA/KernelSource.swift', 'common')
km = literal(ROOT + '/Sources/TensorCUDA/KMeansKernelSource.swift', 'kmeans')
src = common + km
# the inline-PTX spot is swapped for the emulator's warp-level MMA
src = without_ptx_spots(src)
src = src.replace('extern __shared__ __align__(16) unsigned short km_smem[];', 'unsigned short* km_smem = (unsigned short*)emu_dynamic_shared;')
open(OUT + '/kernels.inc', 'w').write(src)
# The warpgroup-MMA assignment module (common + warpgroupMMA + kmeansWarpgroup), with cp.async's definitions removed too
# (the emulator's land copies only when waited for).
from kernel_literals import strip_async_copies
wg = without_ptx_spots(common + literal(ROOT + '/Sources/TensorCUDA/WarpgroupMMAKernelSource.swift', 'warpgroupMMA')
                       + literal(ROOT + '/Sources/TensorCUDA/KMeansWarpgroupKernelSource.swift', 'kmeansWarpgroup'))
open(OUT + '/kernels_wgmma.inc', 'w').write(strip_async_copies(wg))
