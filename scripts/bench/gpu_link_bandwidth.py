# Host<->device link bandwidth on a GPU machine (pinned and pageable copies, several sizes, through torch), beside
# which `colgrep bench gpu-kmeans` row_feed_gbps is read. Run on the device: python3 gpu_link_bandwidth.py (JSON on stdout).
import time, json, torch, numpy as np, os, sys
dev = torch.device("cuda")
out = {}
def bw(src, dst_dev, reps=5):
    torch.cuda.synchronize()
    best = 1e9
    for _ in range(reps):
        t = time.perf_counter()
        y = src.to(dst_dev, non_blocking=True)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return src.numel() * src.element_size() / best / 1e9
for mb in (8, 64, 512, 2048):
    n = mb * (1 << 20) // 4
    pin = torch.empty(n, dtype=torch.float32).pin_memory(); pin.fill_(1.0)
    page = torch.ones(n, dtype=torch.float32)
    d = torch.ones(n, dtype=torch.float32, device=dev)
    out[f"h2d_pinned_{mb}MiB_GBps"] = round(bw(pin, dev), 2)
    out[f"h2d_pageable_{mb}MiB_GBps"] = round(bw(page, dev), 2)
    # D2H into pinned
    torch.cuda.synchronize(); best = 1e9
    for _ in range(5):
        t = time.perf_counter(); pin.copy_(d, non_blocking=True); torch.cuda.synchronize(); best = min(best, time.perf_counter() - t)
    out[f"d2h_pinned_{mb}MiB_GBps"] = round(n * 4 / best / 1e9, 2)
# host memcpy bandwidth (numpy, one thread) 1 GiB
a = np.ones(1 << 28, dtype=np.float32); b = np.empty_like(a)
t = time.perf_counter(); np.copyto(b, a); out["host_memcpy_1thread_GBps"] = round(a.nbytes / (time.perf_counter() - t) / 1e9, 2)
t = time.perf_counter(); np.copyto(b, a); out["host_memcpy_1thread_warm_GBps"] = round(a.nbytes / (time.perf_counter() - t) / 1e9, 2)
print(json.dumps(out, indent=1))
