# Extracts the core module source (common + core) from the Swift literals for the CPU emulator, with the
# inline-PTX spots removed (the core kernels use none of them).
# Usage: python3 extract_core_source.py <repo root> <output dir>
import re, sys
ROOT = sys.argv[1]; OUT = sys.argv[2]
def literal(path, name):
    s = open(path).read()
    m = re.search(r'static let ' + name + r' = (?:common \+ )?#"""\n(.*?)\n(\s*)"""#', s, re.S)
    body, indent = m.group(1), m.group(2)
    return '\n'.join(l[len(indent):] if l.startswith(indent) else l.lstrip() for l in body.split('\n'))
K = ROOT + '/Sources/TensorCUDA/KernelSource.swift'
src = literal(K, 'common') + literal(K, 'core')
for name in ('mma_bf16_16816', 'ldsm_x4', 'ldsm_x4_trans'):
    src, n = re.subn(r'__device__ __forceinline__ void ' + name + r'\(.*?\n\}\n', '', src, flags=re.S)
    assert n == 1, name
open(OUT + '/core.inc', 'w').write(src)
