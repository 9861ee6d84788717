/*
 * The native products y [m, n] = x [m, k] W [n, k]^T (+ y), W in its storage type (float32, bfloat16, float16,
 * int8 with float scales per row or per block of input columns), x and y float32, every weight element decoded
 * to float32 in registers and multiplied exactly: float32 sums, no rounding of x. The weight is read in place;
 * nothing is allocated. Three instruction-set levels (AVX-512, AVX2 with FMA and F16C, plain C), the caller
 * picks one no higher than maxIsa() says this CPU runs (docs/DESIGN.md "Compute layer"). Rows of W are split
 * across the library's threads (pool.c: OMP_NUM_THREADS of them, as for oneDNN and OpenBLAS).
 *
 * Built by the compute module's Maven build with the machine's gcc (compute/pom.xml), loaded by NativeKernels.
 */
#include <jni.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blip2kernels.h"

enum { F32 = 0, BF16 = 1, F16 = 2, I8 = 3 };

/* Below this many weight elements a second thread costs more than it saves. */
#define PARALLEL_MIN (1L << 16)
/* Weight rows read together: four streams in flight, each x element loaded once for four products. */
#define ROWS 4

typedef struct {
    int dtype;
    const float *x;
    long m, k, xStride;
    const void *w;
    long wStride;        /* elements from one row of W to the next, k or more */
    const float *scales; /* NULL, or [n, k / block] */
    long block;          /* input columns per scale; k when one scale per row or none */
    long blocks;         /* k / block */
    float *y;
    long yStride;
    int accumulate;
} Product;

/*
 * Each weight row is a short stream (5 KB of bfloat16 at OPT-2.7B's width, 2.5 KB of int8) that the hardware
 * prefetcher has to pick up anew, so the low-precision one-row products read memory well below float32's rate; while
 * a group of ROWS rows is read, the same columns of the next group (the rows right after them) are fetched into L2.
 */
INLINE void prefetch_next_rows(int bytes_per_element, const Product *p, long j, long to, long c) {
    if (j + 2 * ROWS <= to && (c * bytes_per_element) % 64 == 0) {
        for (int r = 0; r < ROWS; r++) {
            __builtin_prefetch((const char *) p->w + ((j + ROWS + r) * p->wStride + c) * bytes_per_element, 0, 2);
        }
    }
}


static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000 | mantissa << 13;
    } else if (exponent != 0) {
        bits = sign | (exponent + 112) << 23 | mantissa << 13;
    } else if (mantissa == 0) {
        bits = sign;
    } else { /* subnormal: normalize */
        exponent = 113;
        while (!(mantissa & 0x400)) {
            mantissa <<= 1;
            exponent--;
        }
        bits = sign | exponent << 23 | (mantissa & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

INLINE float element(int dtype, const void *w, long i) {
    switch (dtype) {
    case F32: return ((const float *) w)[i];
    case BF16: {
        uint32_t bits = (uint32_t) ((const uint16_t *) w)[i] << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    case F16: return half_to_float(((const uint16_t *) w)[i]);
    default: return ((const int8_t *) w)[i];
    }
}

INLINE void store(const Product *p, long i, long j, float sum) {
    float *out = p->y + i * p->yStride + j;
    *out = p->accumulate ? *out + sum : sum;
}

INLINE float scale(const Product *p, long row, long b) {
    return p->scales ? p->scales[row * p->blocks + b] : 1.0f;
}

/* ---- plain C: any x86-64 (and what the others fall back to for the last few rows) ---- */

INLINE void rows_scalar(int dtype, const Product *p, long from, long to) {
    long blocks = p->blocks;
    for (long j = from; j < to; j++) {
        for (long i = 0; i < p->m; i++) {
            const float *x = p->x + i * p->xStride;
            float sum = 0;
            for (long b = 0; b < blocks; b++) {
                float part = 0;
                for (long c = b * p->block; c < (b + 1) * p->block; c++) {
                    part += x[c] * element(dtype, p->w, j * p->wStride + c);
                }
                sum += part * scale(p, j, b);
            }
            store(p, i, j, sum);
        }
    }
}

static void product_scalar(const Product *p, long from, long to) {
    switch (p->dtype) {
    case F32: rows_scalar(F32, p, from, to); break;
    case BF16: rows_scalar(BF16, p, from, to); break;
    case F16: rows_scalar(F16, p, from, to); break;
    default: rows_scalar(I8, p, from, to); break;
    }
}

/* ---- AVX2, FMA, F16C: 8 elements a step; the columns past the last full step are summed in plain C ---- */

AVX2_TARGET INLINE __m256 load8(int dtype, const void *w, long i) {
    switch (dtype) {
    case F32: return _mm256_loadu_ps((const float *) w + i);
    case BF16: return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *) ((const uint16_t *) w + i))), 16));
    case F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) ((const uint16_t *) w + i)));
    default: return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *) ((const int8_t *) w + i))));
    }
}

AVX2_TARGET INLINE float sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_TARGET INLINE void rows_avx2(int dtype, const Product *p, long from, long to) {
    long block = p->block, blocks = p->blocks;
    long j = from;
    for (; j + ROWS <= to; j += ROWS) {
        const char *w = (const char *) p->w;
        for (long i = 0; i < p->m; i++) {
            const float *x = p->x + i * p->xStride;
            __m256 total[ROWS];
            float tail[ROWS] = {0};
            for (int r = 0; r < ROWS; r++) {
                total[r] = _mm256_setzero_ps();
            }
            for (long b = 0; b < blocks; b++) {
                __m256 part[ROWS];
                for (int r = 0; r < ROWS; r++) {
                    part[r] = _mm256_setzero_ps();
                }
                long c = b * block, end = c + block;
                for (; c + 8 <= end; c += 8) {
                    __m256 xv = _mm256_loadu_ps(x + c);
                    for (int r = 0; r < ROWS; r++) {
                        part[r] = _mm256_fmadd_ps(xv, load8(dtype, w, (j + r) * p->wStride + c), part[r]);
                    }
                }
                for (int r = 0; r < ROWS; r++) {
                    float rest = 0;
                    for (long t = c; t < end; t++) {
                        rest += x[t] * element(dtype, w, (j + r) * p->wStride + t);
                    }
                    float s = scale(p, j + r, b);
                    total[r] = _mm256_fmadd_ps(part[r], _mm256_set1_ps(s), total[r]);
                    tail[r] += rest * s;
                }
            }
            for (int r = 0; r < ROWS; r++) {
                store(p, i, j + r, sum8(total[r]) + tail[r]);
            }
        }
    }
    rows_scalar(dtype, p, j, to);
}

AVX2_TARGET static void product_avx2(const Product *p, long from, long to) {
    switch (p->dtype) {
    case F32: rows_avx2(F32, p, from, to); break;
    case BF16: rows_avx2(BF16, p, from, to); break;
    case F16: rows_avx2(F16, p, from, to); break;
    default: rows_avx2(I8, p, from, to); break;
    }
}

/* ---- AVX-512 (F, BW, VL): 16 elements a step, the last partial step under a mask ---- */

AVX512_TARGET INLINE __m512 load16(int dtype, const void *w, long i, __mmask16 mask) {
    switch (dtype) {
    case F32: return _mm512_maskz_loadu_ps(mask, (const float *) w + i);
    case BF16: return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, (const uint16_t *) w + i)), 16));
    case F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *) w + i));
    default: return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, (const int8_t *) w + i)));
    }
}

AVX512_TARGET INLINE void rows_avx512(int dtype, const Product *p, long from, long to) {
    long block = p->block, blocks = p->blocks;
    long j = from;
    for (; j + ROWS <= to; j += ROWS) {
        const char *w = (const char *) p->w;
        for (long i = 0; i < p->m; i++) {
            const float *x = p->x + i * p->xStride;
            __m512 total[ROWS];
            for (int r = 0; r < ROWS; r++) {
                total[r] = _mm512_setzero_ps();
            }
            for (long b = 0; b < blocks; b++) {
                __m512 part[ROWS];
                for (int r = 0; r < ROWS; r++) {
                    part[r] = _mm512_setzero_ps();
                }
                long end = (b + 1) * block;
                for (long c = b * block; c < end; c += 16) {
                    __mmask16 mask = end - c >= 16 ? 0xffff : (__mmask16) ((1u << (end - c)) - 1);
                    if (i == 0) {
                        prefetch_next_rows(dtype == F32 ? 4 : dtype == I8 ? 1 : 2, p, j, to, c);
                    }
                    __m512 xv = _mm512_maskz_loadu_ps(mask, x + c);
                    for (int r = 0; r < ROWS; r++) {
                        part[r] = _mm512_fmadd_ps(xv, load16(dtype, w, (j + r) * p->wStride + c, mask), part[r]);
                    }
                }
                for (int r = 0; r < ROWS; r++) {
                    total[r] = p->scales ? _mm512_fmadd_ps(part[r], _mm512_set1_ps(scale(p, j + r, b)), total[r])
                                         : _mm512_add_ps(part[r], total[r]);
                }
            }
            for (int r = 0; r < ROWS; r++) {
                store(p, i, j + r, _mm512_reduce_add_ps(total[r]));
            }
        }
    }
    rows_scalar(dtype, p, j, to);
}

AVX512_TARGET static void product_avx512(const Product *p, long from, long to) {
    switch (p->dtype) {
    case F32: rows_avx512(F32, p, from, to); break;
    case BF16: rows_avx512(BF16, p, from, to); break;
    case F16: rows_avx512(F16, p, from, to); break;
    default: rows_avx512(I8, p, from, to); break;
    }
}

/*
 * ---- AVX512_VNNI, int8 weights: x quantized per row and per block of the weight's scales (symmetric, |q| <= 127,
 * nearest even), the int8 products summed exactly in int32 by vpdpbusd, each block's sum scaled in float32: the
 * dynamic quantization PyTorch's int8 linear layers use, at a finer grain. vpdpbusd multiplies unsigned by signed
 * bytes, so x goes in as q + 128 and 128 times the block's weight sum (a second vpdpbusd against ones) comes off.
 * Two instructions per 64 weights and row, against twelve for the float path above.
 */

#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

/* x's rows as q + 128 and one scale per (row, block), in a buffer kept per thread: nothing allocated per call. */
static __thread uint8_t *quantized;
static __thread size_t quantized_size;

VNNI_TARGET static int quantize(const Product *p, uint8_t **q, float **x_scales) {
    long k = p->k, blocks = p->blocks;
    size_t bytes = (size_t) (p->m * k + 63) / 64 * 64 + (size_t) (p->m * blocks) * sizeof(float);
    if (bytes > quantized_size) {
        uint8_t *grown = realloc(quantized, bytes);
        if (!grown) {
            return 0;
        }
        quantized = grown;
        quantized_size = bytes;
    }
    *q = quantized;
    *x_scales = (float *) (quantized + (size_t) (p->m * k + 63) / 64 * 64);
    for (long i = 0; i < p->m; i++) {
        const float *x = p->x + i * p->xStride;
        for (long b = 0; b < blocks; b++) {
            long from = b * p->block, end = from + p->block;
            __m512 max = _mm512_setzero_ps();
            for (long c = from; c < end; c += 16) {
                __mmask16 mask = end - c >= 16 ? 0xffff : (__mmask16) ((1u << (end - c)) - 1);
                max = _mm512_max_ps(max, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask, x + c)));
            }
            float amax = _mm512_reduce_max_ps(max);
            (*x_scales)[i * blocks + b] = amax / 127;
            __m512 inverse = _mm512_set1_ps(amax == 0 ? 0 : 127 / amax);
            for (long c = from; c < end; c += 16) {
                __mmask16 mask = end - c >= 16 ? 0xffff : (__mmask16) ((1u << (end - c)) - 1);
                __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + c), inverse));
                __m128i bytes8 = _mm_add_epi8(_mm512_cvtsepi32_epi8(v), _mm_set1_epi8((char) 128));
                _mm_mask_storeu_epi8(*q + i * k + c, mask, bytes8);
            }
        }
    }
    return 1;
}

/*
 * Kept out of the VNNI function: gcc 12 -O3 vectorizes this loop there with vpdpbusd and gets it wrong (measured:
 * wrong sums on the last rows; right at -O2 or without VNNI).
 */
__attribute__((noinline)) static int32_t int8_dot(const uint8_t *x, const int8_t *w, long count) {
    int32_t sum = 0;
    for (long c = 0; c < count; c++) {
        sum += ((int32_t) x[c] - 128) * w[c];
    }
    return sum;
}

VNNI_TARGET static void product_vnni(const Product *p, const uint8_t *q, const float *x_scales, long from, long to) {
    long k = p->k, block = p->block, blocks = p->blocks;
    const int8_t *w = (const int8_t *) p->w;
    const __m512i ones = _mm512_set1_epi8(1);
    long j = from;
    for (; j + ROWS <= to; j += ROWS) {
        for (long i = 0; i < p->m; i++) {
            const uint8_t *x = q + i * k;
            __m512 total[ROWS];
            for (int r = 0; r < ROWS; r++) {
                total[r] = _mm512_setzero_ps();
            }
            for (long b = 0; b < blocks; b++) {
                __m512i products[ROWS], sums[ROWS];
                for (int r = 0; r < ROWS; r++) {
                    products[r] = _mm512_setzero_si512();
                    sums[r] = _mm512_setzero_si512();
                }
                long end = (b + 1) * block;
                for (long c = b * block; c < end; c += 64) {
                    __mmask64 mask = end - c >= 64 ? ~0ULL : (1ULL << (end - c)) - 1;
                    if (i == 0) {
                        prefetch_next_rows(1, p, j, to, c);
                    }
                    __m512i xv = _mm512_maskz_loadu_epi8(mask, x + c);
                    for (int r = 0; r < ROWS; r++) {
                        __m512i wv = _mm512_maskz_loadu_epi8(mask, w + (j + r) * p->wStride + c);
                        products[r] = _mm512_dpbusd_epi32(products[r], xv, wv);
                        sums[r] = _mm512_dpbusd_epi32(sums[r], ones, wv);
                    }
                }
                float x_scale = x_scales[i * blocks + b];
                for (int r = 0; r < ROWS; r++) {
                    __m512i exact = _mm512_sub_epi32(products[r], _mm512_slli_epi32(sums[r], 7));
                    total[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(exact),
                                               _mm512_set1_ps(x_scale * scale(p, j + r, b)), total[r]);
                }
            }
            for (int r = 0; r < ROWS; r++) {
                store(p, i, j + r, _mm512_reduce_add_ps(total[r]));
            }
        }
    }
    /* the last rows, one at a time, the same arithmetic in plain C */
    for (; j < to; j++) {
        for (long i = 0; i < p->m; i++) {
            float sum = 0;
            for (long b = 0; b < blocks; b++) {
                int32_t exact = int8_dot(q + i * k + b * block, w + j * p->wStride + b * block, block);
                sum += (float) exact * (x_scales[i * blocks + b] * scale(p, j, b));
            }
            store(p, i, j, sum);
        }
    }
}

static int max_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return __builtin_cpu_supports("avx512vnni") ? AVX512_VNNI : AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        return AVX2;
    }
    return SCALAR;
}

JNIEXPORT jint JNICALL Java_dev_blip2dl4j_compute_NativeKernels_maxIsa(JNIEnv *env, jclass cls) {
    return max_isa();
}

/* A product's weight rows, split between the threads. */
typedef struct {
    const Product *p;
    int isa;
    long n;
    uint8_t *q;       /* x quantized, for the VNNI kernel */
    float *x_scales;
    int vnni;
} Rows;

static void product_part(void *context, int t, int count) {
    const Rows *r = context;
    /* whole groups of ROWS per thread, the remainder to the last */
    long groups = r->n / ROWS;
    long from = groups * t / count * ROWS;
    long to = t == count - 1 ? r->n : groups * (t + 1) / count * ROWS;
    if (r->vnni) {
        product_vnni(r->p, r->q, r->x_scales, from, to);
    } else if (r->isa >= AVX512) {
        product_avx512(r->p, from, to);
    } else if (r->isa == AVX2) {
        product_avx2(r->p, from, to);
    } else {
        product_scalar(r->p, from, to);
    }
}

/* The Java side has checked the shapes, the byte counts, the alignment and the scale table (Products.check). */
JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_linear(
        JNIEnv *env, jclass cls, jint isa, jint dtype, jlong x, jint m, jint k, jlong xStride, jlong w,
        jlong wStride, jlong scales, jint block, jlong y, jint n, jlong yStride, jboolean accumulate) {
    Product p = {dtype, (const float *) (intptr_t) x, m, k, xStride, (const void *) (intptr_t) w, wStride,
                 (const float *) (intptr_t) scales, block > 0 ? block : k, block > 0 ? k / block : 1,
                 (float *) (intptr_t) y, yStride, accumulate};
    int threads = (long) n * k * m < PARALLEL_MIN ? 1 : pool_threads();
    if (threads > n / ROWS) {
        threads = n / ROWS > 0 ? (int) (n / ROWS) : 1;
    }
    Rows rows = {&p, isa, n, NULL, NULL, 0};
    /* int32 sums hold blocks of up to 65536 columns (each lane adds 4 products of at most 255 x 128 per 64) */
    rows.vnni = isa >= AVX512_VNNI && dtype == I8 && p.block <= 65536 && quantize(&p, &rows.q, &rows.x_scales);
    pool_run(threads, product_part, &rows);
}

/*
 * ---- Decoding rows of W to float32, for training's backward dx = alpha dy W: the caller multiplies the decoded
 * block on the float32 GEMM (dy W is a GEMM over m = batch x sequence rows, which a tuned GEMM runs near the FMA
 * peak; decoding is a few instructions per element, once per weight and step). Each element exactly: the
 * stored value times its row's (or block's) scale, as the forward's float path multiplies them.
 */

INLINE void decode_scalar(int dtype, const Product *p, long row, float *out) {
    for (long b = 0; b < p->blocks; b++) {
        float s = scale(p, row, b);
        for (long c = b * p->block; c < (b + 1) * p->block; c++) {
            out[c] = element(dtype, p->w, row * p->wStride + c) * s;
        }
    }
}

AVX2_TARGET INLINE void decode_avx2(int dtype, const Product *p, long row, float *out) {
    for (long b = 0; b < p->blocks; b++) {
        float s = scale(p, row, b);
        __m256 sv = _mm256_set1_ps(s);
        long c = b * p->block, end = c + p->block;
        for (; c + 8 <= end; c += 8) {
            _mm256_storeu_ps(out + c, _mm256_mul_ps(load8(dtype, p->w, row * p->wStride + c), sv));
        }
        for (; c < end; c++) {
            out[c] = element(dtype, p->w, row * p->wStride + c) * s;
        }
    }
}

AVX512_TARGET INLINE void decode_avx512(int dtype, const Product *p, long row, float *out) {
    for (long b = 0; b < p->blocks; b++) {
        __m512 sv = _mm512_set1_ps(scale(p, row, b));
        long end = (b + 1) * p->block;
        for (long c = b * p->block; c < end; c += 16) {
            __mmask16 mask = end - c >= 16 ? 0xffff : (__mmask16) ((1u << (end - c)) - 1);
            _mm512_mask_storeu_ps(out + c, mask, _mm512_mul_ps(load16(dtype, p->w, row * p->wStride + c, mask), sv));
        }
    }
}

/* One function per level and type, so that each loop is compiled for its type (as the products are). */
#define DECODE_ROWS(level, target)                                                                        \
    target static void decode_rows_##level(const Product *p, long from, long to, float *out) {           \
        for (long j = from; j < to; j++) {                                                                \
            float *row = out + (j - from) * p->k;                                                         \
            switch (p->dtype) { /* float32 weights need no decoding: the GEMM reads them */               \
            case BF16: decode_##level(BF16, p, j, row); break;                                            \
            case F16: decode_##level(F16, p, j, row); break;                                              \
            default: decode_##level(I8, p, j, row); break;                                                \
            }                                                                                             \
        }                                                                                                 \
    }
DECODE_ROWS(scalar, )
DECODE_ROWS(avx2, AVX2_TARGET)
DECODE_ROWS(avx512, AVX512_TARGET)

/* Rows of W to decode, split between the threads. */
typedef struct {
    const Product *p;
    int isa;
    long from, count;
    float *out;
} Decoding;

static void decode_part(void *context, int t, int all) {
    const Decoding *d = context;
    long first = d->from + d->count * t / all, last = d->from + d->count * (t + 1) / all;
    float *at = d->out + (first - d->from) * d->p->k;
    if (d->isa >= AVX512) {
        decode_rows_avx512(d->p, first, last, at);
    } else if (d->isa == AVX2) {
        decode_rows_avx2(d->p, first, last, at);
    } else {
        decode_rows_scalar(d->p, first, last, at);
    }
}

/* Rows [from, from + count) of W [n, k] into out [count, k], float32; the Java side has checked W (Products.check). */
JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_decode(
        JNIEnv *env, jclass cls, jint isa, jint dtype, jlong w, jint k, jlong scales, jint block, jint from,
        jint count, jlong out) {
    Product p = {dtype, NULL, 0, k, 0, (const void *) (intptr_t) w, k, (const float *) (intptr_t) scales,
                 block > 0 ? block : k, block > 0 ? k / block : 1, NULL, 0, 0};
    int threads = (long) count * k < PARALLEL_MIN ? 1 : pool_threads();
    if (threads > count) {
        threads = count;
    }
    Decoding d = {&p, isa, from, count, (float *) (intptr_t) out};
    pool_run(threads, decode_part, &d);
}

/* Reads count floats with every thread, as a product reads its weight: the read rate the products are held to. */
AVX512_TARGET static float read_avx512(const float *a, long from, long to) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    long i = from;
    for (; i + 64 <= to; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + i + 48));
    }
    float rest = 0;
    for (; i < to; i++) {
        rest += a[i];
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))) + rest;
}

AVX2_TARGET static float read_avx2(const float *a, long from, long to) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    long i = from;
    for (; i + 32 <= to; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
    }
    float rest = 0;
    for (; i < to; i++) {
        rest += a[i];
    }
    return sum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + rest;
}

/* A span to read, split between the threads, and each one's sum (so that nothing is optimised away). */
typedef struct {
    int isa;
    const float *a;
    long count;
    float sums[POOL_MAX_THREADS];
} Reading;

static void read_part(void *context, int t, int threads) {
    Reading *r = context;
    long from = r->count * t / threads, to = r->count * (t + 1) / threads;
    float sum = 0;
    if (r->isa >= AVX512) {
        sum = read_avx512(r->a, from, to);
    } else if (r->isa == AVX2) {
        sum = read_avx2(r->a, from, to);
    } else {
        for (long i = from; i < to; i++) {
            sum += r->a[i];
        }
    }
    r->sums[t] = sum;
}

JNIEXPORT jfloat JNICALL Java_dev_blip2dl4j_compute_NativeKernels_read(JNIEnv *env, jclass cls, jint isa,
                                                                      jlong address, jlong count) {
    Reading r = {isa, (const float *) (intptr_t) address, count, {0}};
    int threads = pool_threads();
    pool_run(threads, read_part, &r);
    float sum = 0;
    for (int t = 0; t < threads; t++) {
        sum += r.sums[t];
    }
    return sum;
}
