# Extracts the k-means module source (common + kmeans) from the Swift literals for the CPU emulator,
# with the inline-PTX spots removed (the emulator defines mma_bf16_16816, ldsm_x4 and ldsm_x4_trans) and dynamic shared memory
# mapped to a static buffer. Usage: python3 extract_kmeans_source.py <repo root> <output dir>
import re, sys
ROOT = sys.argv[1]; OUT = sys.argv[2]
def literal(path, name):
    s = open(path).read()
    m = re.search(r'static let ' + name + r' = (?:common \+ )?#"""\n(.*?)\n(\s*)"""#', s, re.S)
    body, indent = m.group(1), m.group(2)
    return '\n'.join(l[len(indent):] if l.startswith(indent) else l.lstrip() for l in body.split('\n'))
common = literal(ROOT + '/Sources/TensorCUDA/KernelSource.swift', 'common')
km = literal(ROOT + '/Sources/TensorCUDA/KMeansKernelSource.swift', 'kmeans')
src = common + km
# the inline-PTX spot is swapped for the emulator's warp-level MMA
for name in ('mma_bf16_16816', 'ldsm_x4', 'ldsm_x4_trans'):
    src, n = re.subn(r'__device__ __forceinline__ void ' + name + r'\(.*?\n\}\n', '', src, flags=re.S)
    assert n == 1, name
src = src.replace('extern __shared__ __align__(16) unsigned short km_smem[];', 'unsigned short* km_smem = (unsigned short*)emu_dynamic_shared;')
open(OUT + '/kernels.inc', 'w').write(src)
