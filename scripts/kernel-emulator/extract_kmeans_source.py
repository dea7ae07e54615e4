# Extracts the k-means module source (common + kmeans) from the Swift literals for the CPU emulator,
# with the inline-PTX spots removed (the emulator defines mma_bf16_16816, ldsm_x4 and ldsm_x4_trans) and dynamic shared memory
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
