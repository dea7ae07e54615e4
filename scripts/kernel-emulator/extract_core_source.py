# Extracts the core module source (common + core) from the Swift literals for the CPU emulator, with the
# inline-PTX spots removed (the core kernels use none of them).
# Usage: python3 extract_core_source.py <repo root> <output dir>
import re, sys
from kernel_literals import literal, without_ptx_spots
ROOT = sys.argv[1]; OUT = sys.argv[2]
K = ROOT + '/Sources/TensorCUDA/KernelSource.swift'
src = literal(K, 'common') + literal(K, 'core')
src = without_ptx_spots(src)
open(OUT + '/core.inc', 'w').write(src)
