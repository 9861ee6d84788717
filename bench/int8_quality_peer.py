"""The PyTorch peer's int8 (its --lm-int8: torch's dynamic int8, per-output-channel weights) measured as our
lm_logits_error stage measures ours, on the very inputs that stage fed: the projected queries and the 32 token ids it
dumped with `blip2 bench INT8.b2z --stages lm_logits_error --reference FP32.b2z --dump-logits DUMP`. The peer's
language model runs teacher-forced as ours does (queries + the first token as the prompt, then one cached step per
token, the last position's logits each), first in float32, then after the peer's own quantize_language_model.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/int8_quality_peer.py \\
      --peer TORCH_PEER_PY --weights HF_CHECKPOINT_DIR --dump DUMP [--threads 2]

Prints one JSON line per comparison, each with relative_rms (||a - b|| / ||b|| over all positions' logits, in float64),
top1_agreement (positions whose argmax is the reference's) and max_abs_diff, the definitions of LogitsError.java:
peer_int8 against our float32, ours (our int8 against our float32, from the dump), and with --fp32 the peer's
float32 against ours (the two implementations on the same weights and inputs: 2e-7 on the tiny OPT fixture) and
the peer's int8 against its own float32.

Only the language model's tensors are read. By default each weight is quantized as it is read (the peer's own
quantize_language_model, called on one weight and the biases at a time), so the process holds the int8 model
(3.3 GB for blip2-opt-2.7b); --fp32 holds the float32 language model first (10.6 GB)."""
import argparse
import importlib.util
import json
import os
import struct

import numpy as np
import torch


def load_peer(path):
    spec = importlib.util.spec_from_file_location("torch_peer", path)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    return peer


def language_model_weights(peer, checkpoint, quantize):
    """The checkpoint's language_model.* tensors, read as the peer reads safetensors (one copy into each tensor);
    with quantize, each weight goes through the peer's quantize_language_model as soon as it is read."""
    index = os.path.join(checkpoint, "model.safetensors.index.json")
    shards = (sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index)
              else ["model.safetensors"])
    W, headers = {}, []
    for shard in shards:
        with open(os.path.join(checkpoint, shard), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
            header.pop("__metadata__", None)
            headers.append((shard, n, header))
    # biases first: quantize_language_model packs each weight with its bias, looked up in the same dict
    for pass_biases in (True, False):
        for shard, n, header in headers:
            read_tensors(peer, os.path.join(checkpoint, shard), n, header, W, quantize,
                         lambda t: (len(t["shape"]) == 1) == pass_biases)
    return W


def read_tensors(peer, path, n, header, W, quantize, wanted):
    biases = {k: v for k, v in W.items() if v.dim() == 1}
    with open(path, "rb") as f:
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            if not name.startswith("language_model.") or not wanted(info):
                continue
            begin, end = info["data_offsets"]
            t = torch.empty(info["shape"], dtype=peer._DTYPES[info["dtype"]])
            raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).reshape(-1).numpy().view(np.uint8)
            f.seek(8 + n + begin)
            if f.readinto(raw) != end - begin:
                raise ValueError(f"{path}: tensor {name} is truncated")
            if quantize and t.dim() == 2:
                one = dict(biases, **{name: t.float()})
                peer.quantize_language_model(one)
                if name in one:  # kept by the peer (the embedding table, the position table)
                    W[name] = one[name]
            else:
                W[name] = t.float()


def teacher_forced(peer, cfg, W, projected, ids):
    """OPT's logits after each of ids, the first given as the prompt after the projected queries (the peer's
    LanguageModel.prefill and step, minus the projection that the dumped queries have been through)."""
    embed_name = "language_model.model.decoder.embed_tokens.weight"  # also OPT's tied head
    embed = W[embed_name]
    cache = [None] * cfg.layers
    h = peer.opt_decoder(cfg, W, torch.cat([projected, embed[ids[:1]].unsqueeze(0)], 1), cache)
    rows = [peer.head(h[:, -1:], W, embed_name)]
    for token in ids[1:]:
        h = peer.opt_decoder(cfg, W, embed[token.view(1, 1)], cache)
        rows.append(peer.head(h[:, -1:], W, embed_name))
    return torch.cat(rows, 1).reshape(len(ids), -1).numpy()


def compare(name, actual, expected):
    a, b = actual.astype(np.float64), expected.astype(np.float64)
    print(json.dumps({"name": name, "tokens": len(b),
                      "relative_rms": float(np.sqrt(((a - b) ** 2).sum() / (b ** 2).sum())),
                      "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
                      "max_abs_diff": float(np.abs(a - b).max())}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", required=True, help="the PyTorch peer's torch_peer.py")
    ap.add_argument("--weights", required=True, help="the HF checkpoint our float32 artifact was converted from")
    ap.add_argument("--dump", required=True, help="the folder of our bench's --dump-logits")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fp32", action="store_true", help="also the peer's float32 (holds the float32 language model)")
    args = ap.parse_args()
    peer = load_peer(args.peer)
    torch.set_num_threads(args.threads)
    cfg = peer.config_from_hf(json.load(open(os.path.join(args.weights, "config.json"))))
    if cfg.lm != "opt":
        raise SystemExit("only OPT language models: the teacher-forced Flan-T5 path is not written here")
    projected = torch.from_numpy(np.load(os.path.join(args.dump, "projected_queries.npy")).astype(np.float32))
    ids = torch.from_numpy(np.load(os.path.join(args.dump, "token_ids.npy")).astype(np.int64))
    ours_fp32 = np.load(os.path.join(args.dump, "reference_logits.npy"))
    ours_int8 = np.load(os.path.join(args.dump, "logits.npy"))

    W = language_model_weights(peer, args.weights, quantize=not args.fp32)
    with torch.inference_mode():
        if args.fp32:
            peer_fp32 = teacher_forced(peer, cfg, W, projected, ids)
            compare("peer_fp32_vs_our_fp32", peer_fp32, ours_fp32)
            peer.quantize_language_model(W)
        peer_int8 = teacher_forced(peer, cfg, W, projected, ids)
    if args.fp32:
        compare("peer_int8_vs_peer_fp32", peer_int8, peer_fp32)
    compare("peer_int8_vs_our_fp32", peer_int8, ours_fp32)
    compare("ours_int8_vs_our_fp32", ours_int8, ours_fp32)


if __name__ == "__main__":
    main()
