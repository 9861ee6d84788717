#!/usr/bin/env bash
# Conversion benchmark (not a test): converts a random checkpoint with the exact names, shapes and shard
# layout of Salesforce/blip2-opt-2.7b (15.5 GB fp32) with -Xmx1g, and compares the time with `cp` of the
# same shards into the same folder, in the same run. Prints one JSON line per measurement and a summary.
#
#   bench/convert.sh [--make-checkpoint MAKE_BIG_CHECKPOINT_PY] [--warm] [--dtype TYPE]... CHECKPOINT_DIR WORK_DIR [ROUNDS]
#
# If CHECKPOINT_DIR does not exist, MAKE_BIG_CHECKPOINT_PY writes it (the PyTorch peer's script, kept outside
# this repository, docs/DESIGN.md "Benchmarks"; python3-torch).
# Cold (the default): as root, the page cache is dropped before every timed run, so each reads the shards from
# disk, like a conversion long after the download. --warm reads the shards once before every timed run instead,
# so each finds them in the page cache, as right after a download. Each --dtype (float32, bfloat16, float16,
# int8; default float32) is converted once per round, interleaved with cp.
# cp copies one shard at a time (each followed by `sync`, then deleted; the times add up) and the artifact is
# deleted once timed: WORK_DIR needs the largest shard's size or the artifact's, whichever is larger.
set -euo pipefail
usage="usage: bench/convert.sh [--make-checkpoint MAKE_BIG_CHECKPOINT_PY] [--warm] [--dtype TYPE]... CHECKPOINT_DIR WORK_DIR [ROUNDS]"
maker="" warm=0 dtypes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --make-checkpoint) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; maker="$2"; shift 2 ;;
    --warm) warm=1; shift ;;
    --dtype) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; dtypes+=("$2"); shift 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "$usage" >&2
  exit 2
fi
[ ${#dtypes[@]} -gt 0 ] || dtypes=(float32)
root="$(cd "$(dirname "$0")/.." && pwd)"
checkpoint="$1" work="$2" rounds="${3:-2}"

if [ ! -f "$checkpoint/model.safetensors.index.json" ]; then
  if [ -z "$maker" ]; then
    echo "no checkpoint in $checkpoint: name the script that writes one with --make-checkpoint" >&2
    echo "$usage" >&2
    exit 2
  fi
  "${PYTHON:-/usr/bin/python3}" "$maker" "$checkpoint"
fi
mkdir -p "$work"
"$root/blip2" --version >/dev/null   # build before timing, and never during it
export BLIP2_SKIP_BUILD=1

prepare() {
  sync
  if [ "$warm" = 1 ]; then
    cat "$checkpoint"/model-*.safetensors > /dev/null
  elif [ -w /proc/sys/vm/drop_caches ]; then
    echo 3 > /proc/sys/vm/drop_caches
  fi
}

# Runs a command under GNU time; prints "seconds peak_rss_kb".
timed() {
  local log
  log="$(mktemp)"
  /usr/bin/time -f "%e %M" -o "$log" "$@" >/dev/null
  cat "$log"
  rm -f "$log"
}

results="$(mktemp)"
for round in $(seq "$rounds"); do
  prepare
  total=0
  for shard in "$checkpoint"/model-*.safetensors; do
    read -r t _ < <(timed sh -c "cp '$shard' '$work'/ && sync")
    rm -f "$work/$(basename "$shard")"
    total="$(python3 -c "print($total + $t)")"
  done
  echo "{\"name\": \"cp_shards\", \"round\": $round, \"seconds\": $total}"
  echo "cp $round $total 0" >> "$results"
  for dtype in "${dtypes[@]}"; do
    prepare
    read -r t kb < <(BLIP2_JAVA_OPTS="-Xmx1g" timed sh -c "'$root/blip2' convert '$checkpoint' -o '$work/bench.b2z' --dtype $dtype --quiet && sync")
    rm -f "$work/bench.b2z"
    echo "{\"name\": \"convert\", \"dtype\": \"$dtype\", \"round\": $round, \"seconds\": $t, \"peak_rss_mib\": $((kb / 1024))}"
    echo "$dtype $round $t $kb" >> "$results"
  done
done

python3 - "$results" <<'PY'
import collections, statistics, sys
cp, runs = {}, collections.defaultdict(dict)
for line in open(sys.argv[1]):
    name, rnd, seconds, kb = line.split()
    if name == "cp":
        cp[rnd] = float(seconds)
    else:
        runs[name][rnd] = (float(seconds), int(kb))
print(f"cp median {statistics.median(cp.values()):.1f} s")
for dtype, by_round in runs.items():
    ratios = [by_round[r][0] / cp[r] for r in sorted(by_round)]
    print(f"{dtype}: convert median {statistics.median(t for t, _ in by_round.values()):.1f} s, ratio per round "
          f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f}), "
          f"peak RSS {max(kb for _, kb in by_round.values()) / 1024:.0f} MiB")
PY
rm -f "$results"
