#!/bin/sh
# Our float32 GEMM against oneDNN's (compute's ProductsBench gemm) and the PyTorch peer's (gemm_peer.py) on the
# GEMMs of full-size blip2-opt-2.7b's stages, alternating the two programs ROUNDS times (the machine is shared:
# compare within a round, take medians across rounds). 2 threads each; the peer with both OpenBLAS variables
# unset, at its best. Needs compute's test classes built (mvn -o test-compile -pl compute -am).
# With cpu: one thread each, rates over the thread's CPU time (the kernels' own speed, whatever else loads the cores).
# usage: bench/gemm.sh CLASSPATH [ROUNDS [cpu]]   (CLASSPATH: compute's test classpath)
set -eu
cp=$1
rounds=${2:-3}
mode=${3:-wall}
threads=2
if [ "$mode" = cpu ]; then
    threads=1
fi
here=$(dirname "$0")
for round in $(seq "$rounds"); do
    echo "round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
    OMP_NUM_THREADS=$threads java -cp "$cp" dev.blip2dl4j.compute.ProductsBench gemm 5 "$mode" 2>/dev/null
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$here/gemm_peer.py" 5 "$mode"
done
