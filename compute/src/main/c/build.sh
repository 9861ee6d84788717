#!/bin/sh
# Compiles every .c file of this folder (blip2kernels.c, sgemm.c, ...) into one library, libblip2kernels.so, in the
# classes the jar carries (compute/pom.xml runs this at compile time).
# Where it cannot (no gcc, another platform, a compiler too old for the intrinsics) it says so and leaves no
# library: NativeKernels then reports it once and the dispatcher uses the other kernels.
# usage: build.sh JAVA_HOME OUTPUT_DIRECTORY
set -u
jdk=$1
out=$2
dir=$(dirname "$0")
lib=$out/libblip2kernels.so
if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
    echo "blip2kernels: not built, the native products are for Linux x86-64" >&2
    exit 0
fi
if ! command -v gcc >/dev/null 2>&1; then
    echo "blip2kernels: not built, no gcc on the PATH" >&2
    exit 0
fi
fresh=true
for src in "$dir"/*.c "$dir"/*.h "$0"; do
    if [ ! -f "$lib" ] || [ ! "$lib" -nt "$src" ]; then
        fresh=false
    fi
done
if $fresh; then
    exit 0
fi
mkdir -p "$out"
if ! gcc -O3 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -shared -fPIC \
        -I"$jdk/include" -I"$jdk/include/linux" -o "$lib.tmp" "$dir"/*.c -pthread -lm; then
    rm -f "$lib" "$lib.tmp"
    echo "blip2kernels: gcc failed, the native products are left out" >&2
    exit 0
fi
mv "$lib.tmp" "$lib"
