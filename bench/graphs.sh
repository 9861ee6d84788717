#!/usr/bin/env bash
# Stage benchmark (not a test): ours against the PyTorch peer (docs/DESIGN.md "Benchmarks"), both on the
# same full-size random checkpoint, in the same run, fp32, 2 threads. Prints both JSON streams and the ratio
# ours / peer per stage (vision, qformer, lm_prefill, lm_decode_per_token, caption_end_to_end). Ours run
# eagerly, as inference does; pass --graph after REPEATS to time the SameDiff graphs instead (decoding and
# captioning are eager only).
#
#   bench/graphs.sh --peer TORCH_PEER_PY CHECKPOINT_DIR ARTIFACT [REPEATS [blip2 bench options...]]
#
# TORCH_PEER_PY: the peer's script, kept outside this repository. CHECKPOINT_DIR: Hugging Face safetensors
# (e.g. from the peer's make_big_checkpoint.py); ARTIFACT: the same converted with `blip2 convert`. The peer
# needs Debian's python3-torch with OpenBLAS-OpenMP selected (docs/DESIGN.md "Benchmarks"), or its BLAS is
# far slower and the ratios mean nothing. PYTHON names the interpreter that has torch (default
# /usr/bin/python3, Debian's).
set -euo pipefail
usage="usage: bench/graphs.sh --peer TORCH_PEER_PY CHECKPOINT_DIR ARTIFACT [REPEATS [blip2 bench options...]]"
if [ "${1:-}" != --peer ] || [ $# -lt 4 ]; then
  echo "$usage" >&2
  exit 2
fi
peer="$2"
shift 2
root="$(cd "$(dirname "$0")/.." && pwd)"
checkpoint="$1" artifact="$2" repeats="${3:-3}"
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4

"$root/blip2" --version >/dev/null   # build before timing, and never during it
export BLIP2_SKIP_BUILD=1
ours="$(mktemp)" theirs="$(mktemp)"
"$root/blip2" bench "$artifact" --repeats "$repeats" --stages vision,qformer,lm_prefill,lm_decode_per_token,caption_end_to_end "${@:4}" | tee "$ours"
# the peer at its best: these machines hold OpenBLAS to AVX2 kernels through OPENBLAS_CORETYPE (docs/DESIGN.md "Benchmarks")
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${PYTHON:-/usr/bin/python3}" "$peer" bench --weights "$checkpoint" --repeats "$repeats" --threads 2 --stages sgemm,vision,qformer,prefill,decode,caption | tee "$theirs"

python3 - "$ours" "$theirs" <<'PY'
import json, sys
def load(path):
    return {d["name"]: d for d in map(json.loads, (l for l in open(path) if l.startswith("{")))}
ours, theirs = load(sys.argv[1]), load(sys.argv[2])
for name in ("vision", "qformer", "lm_prefill", "lm_decode_per_token", "caption_end_to_end"):
    if name in ours and name in theirs:
        o, t = ours[name]["median_s"], theirs[name]["median_s"]
        print(f"{name:20s} ours {o:8.3f} s   peer {t:8.3f} s   ratio {o / t:5.2f}")
PY
rm -f "$ours" "$theirs"
