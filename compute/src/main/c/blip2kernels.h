/*
 * What the library's kernel files share: the instruction-set levels (the order of NativeKernels.Isa), the
 * function attributes that compile one function for one level, the threads they run on, and the 16 x 16 transpose
 * both GEMMs pack with.
 */
#ifndef BLIP2KERNELS_H
#define BLIP2KERNELS_H

enum { SCALAR = 0, AVX2 = 1, AVX512 = 2, AVX512_VNNI = 3, AMX_BF16 = 4 };

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

#include <immintrin.h>

/*
 * The library's threads (pool.c): pool_run runs task(context, t, count) for t in [0, count) on count threads, the
 * caller as t = 0, count <= threads (1, the caller alone and no handoff, where threads is 1 or the workers are busy
 * with another caller); pool_barrier(count) waits inside a task until all count threads reach it; pool_threads() is
 * how many threads a product may use.
 */
#define POOL_MAX_THREADS 256
typedef void (*Task)(void *context, int t, int count);
void pool_run(int threads, Task task, void *context);
void pool_barrier(int count);
int pool_threads(void);

/*
 * The 16 x 16 transpose of 32-bit elements in place, r[q] becoming column q of the input rows: the float32 GEMM packs
 * its transposed operands with it, the bfloat16 GEMM its weight's pairs.
 */
__attribute__((target("avx512f"))) INLINE void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {
        u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    /* u[4g + q], lane L: rows 4g..4g+3 at column 4L + q; a 4 x 4 transpose of 128-bit lanes finishes it */
    for (int q = 0; q < 4; q++) {
        __m512i v0 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x44);
        __m512i v1 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xee);
        __m512i v2 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x44);
        __m512i v3 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xee);
        r[q] = _mm512_shuffle_i32x4(v0, v2, 0x88);
        r[4 + q] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
        r[8 + q] = _mm512_shuffle_i32x4(v1, v3, 0x88);
        r[12 + q] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
    }
}

#endif
