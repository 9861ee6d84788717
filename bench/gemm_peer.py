"""The PyTorch peer's float32 GEMMs on the shapes of compute's ProductsBench gemm (full-size blip2-opt-2.7b's
stages), 2 threads, medians of ROUNDS samples of about 10 ms, in GFLOP/s. Run it with the peer's environment:
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/gemm_peer.py [rounds [cpu]]
With cpu: one thread, and the rate over that thread's CPU time (as ProductsBench gemm ROUNDS cpu)."""
import statistics
import sys
import time

import torch

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
CPU = len(sys.argv) > 2 and sys.argv[2] == "cpu"
torch.set_num_threads(1 if CPU else 2)
clock = time.thread_time if CPU else time.perf_counter
# m, n, k, transA, transB: as ProductsBench's GEMMS
GEMMS = [
    (257, 4224, 1408, 0, 1), (257, 1408, 1408, 0, 1), (257, 6144, 1408, 0, 1), (257, 1408, 6144, 0, 1),
    (32, 768, 768, 0, 1), (257, 768, 1408, 0, 1), (32, 3072, 768, 0, 1), (32, 768, 3072, 0, 1),
    (40, 2560, 2560, 0, 1), (40, 10240, 2560, 0, 1), (40, 2560, 10240, 0, 1), (40, 50272, 2560, 0, 1),
    (257, 257, 88, 0, 1), (257, 88, 257, 0, 0), (32, 257, 64, 0, 1), (32, 64, 257, 0, 0),
]
for m, n, k, _, trans_b in GEMMS:
    a = torch.rand(m, k) - 0.5
    b = torch.rand(n, k) - 0.5 if trans_b else torch.rand(k, n) - 0.5
    rhs = b.t() if trans_b else b
    out = torch.empty(m, n)
    flops = 2.0 * m * n * k
    calls = max(1, int(2e9 / 100 / flops))
    torch.mm(a, rhs, out=out)
    rates = []
    for _ in range(ROUNDS):
        start = clock()
        for _ in range(calls):
            torch.mm(a, rhs, out=out)
        rates.append(flops * calls / (clock() - start) / 1e9)
    print(f"{m} x {n} x {k}{'' if trans_b else ' (a b)'}: peer {statistics.median(rates):.1f} GFLOP/s", flush=True)
