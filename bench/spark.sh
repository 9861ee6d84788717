#!/usr/bin/env bash
# Spark benchmark (not a test): the same images captioned by a `local[1]` Spark job (`blip2 spark caption`) and by
# the plain command line (`blip2 caption`), interleaved in the same run, REPEATS times each; prints per run the
# wall time, throughput and peak RSS, then the medians and the ratio Spark / CLI. With --cores N (N > 1) a
# `local[N]` job runs too: N tasks share the executor's one model (docs/DESIGN.md "Spark"), so its peak RSS shows
# whether the mapped weights are shared or copied per task.
#
#   bench/spark.sh --model M.b2z --images DIR [--repeats 3] [--max-new-tokens 20] [--batch-size 1] [--cores N]
#                  [--peer-cli BLIP2]
#
# --peer-cli names the command line compared against (default: this clone's ./blip2). Both sides run with the same
# threads (OMP_NUM_THREADS, default: the machine's cores) and the same generation settings; wall times include
# each JVM's start and the model's load, as a user sees them (Spark's session start is part of its overhead).
set -euo pipefail
usage="usage: bench/spark.sh --model M.b2z --images DIR [--repeats N] [--max-new-tokens N] [--batch-size N] [--cores N] [--peer-cli BLIP2]"
root="$(cd "$(dirname "$0")/.." && pwd)"
model="" images="" repeats=3 tokens=20 batch=1 cores=1 cli="$root/blip2"
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --images) images="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --max-new-tokens) tokens="$2"; shift 2 ;;
    --batch-size) batch="$2"; shift 2 ;;
    --cores) cores="$2"; shift 2 ;;
    --peer-cli) cli="$2"; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
if [ -z "$model" ] || [ -z "$images" ]; then
  echo "$usage" >&2
  exit 2
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}" OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4

"$cli" --version >/dev/null               # build both before timing, and never during it
"$root/blip2" spark --version >/dev/null
export BLIP2_SKIP_BUILD=1
count="$(find "$images" -maxdepth 1 -type f | grep -ciE '\.(jpe?g|png|gif|bmp|webp|tiff?)$')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.tsv"

# one timed run: NAME COMMAND...; appends "NAME seconds peak_rss_kib" to the results
timed() {
  local name="$1"
  shift
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r seconds rss <"$work/time"
  echo "$name $seconds $rss" >>"$results"
  awk -v n="$name" -v s="$seconds" -v r="$rss" -v c="$count" \
    'BEGIN { printf "%-10s %8.1f s  %7.3f images/s  peak RSS %6.0f MiB\n", n, s, c / s, r / 1024 }'
}

for i in $(seq "$repeats"); do
  timed cli "$cli" caption --model "$model" --max-new-tokens "$tokens" --batch-size "$batch" "$images"
  rm -rf "$work/spark.parquet"
  timed spark1 "$root/blip2" spark caption --master 'local[1]' --model "$model" --max-new-tokens "$tokens" \
    --batch-size "$batch" "$images" -o "$work/spark.parquet"
  if [ "$cores" -gt 1 ]; then
    rm -rf "$work/sparkN.parquet"
    timed "spark$cores" "$root/blip2" spark caption --master "local[$cores]" --partitions "$cores" --model "$model" \
      --max-new-tokens "$tokens" --batch-size "$batch" "$images" -o "$work/sparkN.parquet"
  fi
done

python3 - "$results" "$count" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, seconds, rss = line.split()
    runs.setdefault(name, []).append((float(seconds), int(rss)))
count = int(sys.argv[2])
median = {n: (statistics.median(s for s, _ in r), statistics.median(m for _, m in r)) for n, r in runs.items()}
for n, (s, m) in median.items():
    print(f"median {n:8s} {s:8.1f} s  {count / s:7.3f} images/s  peak RSS {m / 1024:6.0f} MiB")
cli_s = median["cli"][0]
for n, (s, m) in median.items():
    if n != "cli":
        print(f"{n} / cli: throughput {cli_s / s:5.2f}x, peak RSS {m / median['cli'][1]:5.2f}x")
PY
