# Shared by the extract_*_source.py scripts: read a kernel module's CUDA C out of its Swift string literal, and
# drop the inline-PTX spots the CPU emulator defines itself (warp_emulation.h).
import re

def literal(path, name):
    """The body of `static let <name> = [common +] #\"\"\" … \"\"\"#` in `path`, its indentation removed."""
    s = open(path).read()
    m = re.search(r'static let ' + name + r' = (?:\w+ \+ )*#"""\n(.*?)\n(\s*)"""#', s, re.S)
    body, indent = m.group(1), m.group(2)
    return '\n'.join(l[len(indent):] if l.startswith(indent) else l.lstrip() for l in body.split('\n'))

def without_ptx_spots(src):
    """`src` without the tensor-core PTX spots (mma_bf16_16816, ldsm_x4, ldsm_x4_trans), each present once."""
    for name in ('mma_bf16_16816', 'ldsm_x4', 'ldsm_x4_trans'):
        src, n = re.subn(r'__device__ __forceinline__ void ' + name + r'\(.*?\n\}\n', '', src, flags=re.S)
        assert n == 1, name
    return src

def strip_async_copies(src):
    """`src` without cp.async's definitions (the PTX spot and its synchronous fallback, each once): the emulators
    define them in async_copy_emulation.h, landing each group's copies only when waited for."""
    src, n = re.subn(r'__device__ __forceinline__ void cp_async16\(.*?\n\}\n', '', src, flags=re.S)
    assert n == 2, 'cp_async16'
    src, n = re.subn(r'__device__ __forceinline__ void cp_async_(commit|wait_one|wait_all)\(\).*\n', '', src)
    assert n == 6, 'cp_async_commit / cp_async_wait_one / cp_async_wait_all'
    return src
