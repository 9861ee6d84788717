#!/usr/bin/env python3
"""Shard a fixture's pytorch_model.bin the way save_pretrained(safe_serialization=False) shards, for the
converter's tests of pytorch_model-0000N-of-0000M.bin + pytorch_model.bin.index.json (the layout of older
Hugging Face uploads such as google/flan-t5-xl).

  python3 tools/make_sharded_bin.py fixtures/blip2-tiny-t5

writes fixtures/<model>/sharded-bin/: two shards split in state_dict order at half the total size, the
index, and config.json. Tied tensors that land in the same shard keep sharing their storage, as torch.save
keeps them. Needs python3-torch (Debian).
"""
import json
import os
import shutil
import sys
from collections import OrderedDict

import torch


def main():
    folder = sys.argv[1]
    state = torch.load(os.path.join(folder, "pytorch_model.bin"), map_location="cpu")
    out = os.path.join(folder, "sharded-bin")
    os.makedirs(out, exist_ok=True)
    total = sum(t.numel() * t.element_size() for t in state.values())
    shards, size = [OrderedDict()], 0
    for name, tensor in state.items():
        if shards[-1] and size > total / 2:
            shards.append(OrderedDict())
            size = 0
        shards[-1][name] = tensor
        size += tensor.numel() * tensor.element_size()
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        file = "pytorch_model-%05d-of-%05d.bin" % (i, len(shards))
        torch.save(shard, os.path.join(out, file))
        weight_map.update({name: file for name in shard})
    with open(os.path.join(out, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    shutil.copy(os.path.join(folder, "config.json"), out)
    print("wrote", out, [len(s) for s in shards])


if __name__ == "__main__":
    main()
