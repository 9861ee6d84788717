"""Memory read bandwidth as decoding sees it: the rate at which THREADS threads sum an array far larger than the
caches (torch's vectorized, OpenMP-parallel reduction, so arithmetic is not the bound), median of ROUNDS passes after
one untimed pass that faults the pages in. A decoding step reads every weight of the language model once, so
(the language model's bytes) / (this rate) is the floor of its time per token.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/stream_bandwidth.py [--gib 2] [--threads 2]
      [--rounds 7]

A float32 sum, because torch's integer sums are not vectorized (measured 0.08 GB/s against 2.2 for float32 on the
same loaded VM) and a mapped file's arbitrary bytes read as float32 would hit denormals. Our mapped weights are
page-cache pages of the same memory, so once resident they stream at this rate too."""
import argparse
import json
import statistics
import time

import torch


def rate(array, rounds):
    array.sum()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        array.sum()
        times.append(time.perf_counter() - t0)
    return array.numel() * array.element_size() / statistics.median(times) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    array = torch.ones(int(args.gib * 2 ** 30) // 4, dtype=torch.float32)
    print(json.dumps({"name": "stream_read", "gb_per_s": round(rate(array, args.rounds), 2),
                      "bytes": array.numel() * 4, "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
