#!/usr/bin/env bash
# Training benchmark (not a test): one stage-two optimizer step at full size, ours (`blip2 bench --stages
# train_step`) against the PyTorch peer's `train` stage (docs/DESIGN.md "Benchmarks"), same checkpoint, same
# run, fp32, 2 threads, batch 1, 16 tokens. Prints both JSON lines and the ratio ours / peer (time and peak RSS).
#
#   bench/train.sh --peer TORCH_PEER_PY CHECKPOINT_DIR ARTIFACT [REPEATS]
#
# As bench/graphs.sh: TORCH_PEER_PY is the peer's script, CHECKPOINT_DIR the Hugging Face safetensors folder,
# ARTIFACT the same converted.
set -euo pipefail
usage="usage: bench/train.sh --peer TORCH_PEER_PY CHECKPOINT_DIR ARTIFACT [REPEATS]"
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
"$root/blip2" bench "$artifact" --repeats "$repeats" --warmup 1 --stages train_step | tee "$ours"
# the peer at its best: these machines hold OpenBLAS to AVX2 kernels through OPENBLAS_CORETYPE (docs/DESIGN.md "Benchmarks")
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${PYTHON:-/usr/bin/python3}" "$peer" bench --weights "$checkpoint" --repeats "$repeats" --threads 2 --stages train | tee "$theirs"

python3 - "$ours" "$theirs" <<'PY'
import json, sys
def load(path):
    return {d["name"]: d for d in map(json.loads, (l for l in open(path) if l.startswith("{")))}
o, t = load(sys.argv[1])["train_step"], load(sys.argv[2])["train_step"]
print(f"train_step ours {o['median_s']:7.2f} s {o['peak_rss_mib']:6d} MiB   peer {t['median_s']:7.2f} s "
      f"{t['peak_rss_mib']:6d} MiB   ratio {o['median_s'] / t['median_s']:5.2f} time, "
      f"{o['peak_rss_mib'] / t['peak_rss_mib']:5.2f} RSS")
PY
rm -f "$ours" "$theirs"
