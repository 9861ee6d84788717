#!/usr/bin/env bash
# Conversion benchmark (not a test): converts a random checkpoint with the exact names, shapes and shard
# layout of Salesforce/blip2-opt-2.7b (15.5 GB fp32) with -Xmx1g, and compares the time with `cp` of the
# same shards into the same folder, in the same run. Prints one JSON line per measurement and a summary.
#
#   bench/convert.sh [--make-checkpoint MAKE_BIG_CHECKPOINT_PY] CHECKPOINT_DIR WORK_DIR [ROUNDS]
#
# If CHECKPOINT_DIR does not exist, MAKE_BIG_CHECKPOINT_PY writes it (the PyTorch peer's script, kept outside
# this repository, docs/DESIGN.md "Benchmarks"; python3-torch).
# WORK_DIR needs ~31 GB free (the copy and the artifact, one at a time). As root, the page cache is dropped
# before every timed run, so each reads the shards from disk (cold), like a fresh download would.
set -euo pipefail
usage="usage: bench/convert.sh [--make-checkpoint MAKE_BIG_CHECKPOINT_PY] CHECKPOINT_DIR WORK_DIR [ROUNDS]"
maker=""
if [ "${1:-}" = --make-checkpoint ] && [ $# -ge 2 ]; then
  maker="$2"
  shift 2
fi
if [ $# -lt 2 ]; then
  echo "$usage" >&2
  exit 2
fi
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

cold() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}

# Runs a command under GNU time; prints "seconds peak_rss_kb".
timed() {
  local log
  log="$(mktemp)"
  /usr/bin/time -f "%e %M" -o "$log" "$@" >/dev/null
  cat "$log"
  rm -f "$log"
}

cp_times=() convert_times=() rss=()
for round in $(seq "$rounds"); do
  cold
  read -r t _ < <(timed sh -c "cp '$checkpoint'/model-*.safetensors '$work'/ && sync")
  cp_times+=("$t")
  rm -f "$work"/model-*.safetensors
  echo "{\"name\": \"cp_shards\", \"round\": $round, \"seconds\": $t}"

  cold
  read -r t kb < <(BLIP2_JAVA_OPTS="-Xmx1g" timed sh -c "'$root/blip2' convert '$checkpoint' -o '$work/bench.b2z' --quiet && sync")
  convert_times+=("$t")
  rss+=("$kb")
  rm -f "$work/bench.b2z"
  echo "{\"name\": \"convert\", \"round\": $round, \"seconds\": $t, \"peak_rss_mib\": $((kb / 1024))}"
done

python3 - "${cp_times[*]}" "${convert_times[*]}" "${rss[*]}" <<'PY'
import statistics, sys
cp = [float(x) for x in sys.argv[1].split()]
conv = [float(x) for x in sys.argv[2].split()]
rss = [int(x) for x in sys.argv[3].split()]
ratios = [c / p for c, p in zip(conv, cp)]
print(f"cp median {statistics.median(cp):.1f} s, convert median {statistics.median(conv):.1f} s, "
      f"ratio per round {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}), "
      f"peak RSS {max(rss) / 1024:.0f} MiB")
PY
