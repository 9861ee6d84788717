#!/usr/bin/env python3
"""Split a tiny LAVIS fixture the way the real LAVIS BLIP-2 release is split, for the converter's tests.

The real release has three parts: the stage-two checkpoint (blip2_pretrained_opt2.7b.pth) holding only
what training changed (query_tokens, Qformer, ln_vision, opt_proj), LAVIS's eva_vit_g.pth (the EVA-CLIP
ViT-g state dict without prefix, 40 blocks of which BLIP-2 uses 39, plus parts the BLIP-2 ViT lacks), and
the language model's own Hugging Face folder. This writes the first two from fixtures/<model>/lavis/*.pth:

  python3 tools/make_lavis_split.py fixtures/blip2-tiny-opt

into fixtures/<model>/lavis-split/: stage2.pth and eva_vit_g.pth. The ViT gets one extra random block
(index = depth, which the converter must drop) and a random final `norm` (which LAVIS ignores). Values
of the shared tensors are bit-identical to the fixture. Needs python3-torch (Debian).
"""
import os
import sys
from collections import OrderedDict

import torch


def main():
    folder = sys.argv[1]
    lavis = os.path.join(folder, "lavis")
    pth = [f for f in os.listdir(lavis) if f.endswith(".pth")][0]
    state = torch.load(os.path.join(lavis, pth), map_location="cpu")["model"]
    out = os.path.join(folder, "lavis-split")
    os.makedirs(out, exist_ok=True)

    trained = OrderedDict((k, v) for k, v in state.items()
                          if k == "query_tokens" or k.startswith(("Qformer.", "ln_vision.", "opt_proj.", "t5_proj.")))
    torch.save({"model": trained}, os.path.join(out, "stage2.pth"))

    vit = OrderedDict((k[len("visual_encoder."):], v) for k, v in state.items() if k.startswith("visual_encoder."))
    depth = 1 + max(int(k.split(".")[1]) for k in vit if k.startswith("blocks."))
    g = torch.Generator().manual_seed(1234)
    for k in [k for k in vit if k.startswith("blocks.0.")]:
        extra = "blocks.%d.%s" % (depth, k[len("blocks.0."):])
        vit[extra] = torch.randn(vit[k].shape, generator=g)
    width = vit["cls_token"].shape[-1]
    vit["norm.weight"] = torch.randn(width, generator=g)
    vit["norm.bias"] = torch.randn(width, generator=g)
    torch.save(vit, os.path.join(out, "eva_vit_g.pth"))
    print("wrote", out, len(trained), "trained tensors,", len(vit), "ViT tensors")


if __name__ == "__main__":
    main()
