/*
 * The per-row passes around the products, each one pass over a row-major float32 matrix with its row stride:
 * LayerNorm and RMSNorm (statistics, scale and shift), a bias added to every row, a bias and GELU (the exact erf
 * form, or the tanh form, times a gate where asked) over a linear layer's output, a row softmax. Written in place or into an output the caller owns, nothing
 * allocated. The same three instruction-set levels as the products (blip2kernels.c); rows are split across the
 * library's threads (pool.c) where there are enough of them.
 *
 * GELU's erf and the softmax's exp are evaluated in vector registers: erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 +
 * z / 2) (Numerical Recipes' Chebyshev fit, relative error under 1.2e-7 for every z >= 0) and exp by range
 * reduction to [-ln 2 / 2, ln 2 / 2] and Cephes' degree-6 polynomial (about one float32 ulp). GELU goes through
 * erfc of |x| / sqrt 2 on both sides of zero, so its negative tail keeps float32's relative accuracy. The plain C
 * level calls libm's erfcf and expf. The tanh form is x / (1 + exp(-2u)), u = sqrt(2 / pi) (x + 0.044715 x^3):
 * 0.5 x (1 + tanh u) without tanh's cancellation near -1.
 */
#include <jni.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "blip2kernels.h"

/* Below this many elements a second thread costs more than it saves (as for the products). */
#define PARALLEL_MIN (1L << 16)

enum { LAYER_NORM, RMS_NORM, ADD_ROW, GELU, SOFTMAX };

typedef struct {
    int kernel;
    float *x;
    long cols, xStride;
    const float *row;   /* gain, or the bias (NULL: none) */
    const float *shift; /* LayerNorm's shift */
    float eps;
    float *out; /* the norms' output, GELU's copy of its argument (NULL: none) */
    long outStride;
    int tanh;          /* GELU's tanh form */
    const float *gate; /* GELU's result times this (NULL: none) */
    long gateStride;
} Pass;

#define EXP_LOW -87.33654f /* below, exp is under float32's smallest normal: 0 */
#define EXP_HIGH 88.0f     /* exp's arguments here are never positive (softmax) or near 0 (erfc) */
#define LOG2E 1.44269504088896341f
#define LN2_HIGH 0.693359375f
#define LN2_LOW -2.12194440e-4f
#define SQRT1_2 0.70710678118654752f
#define SQRT2_PI 0.79788456080286536f
#define GELU_CUBE 0.044715f

/* exp(r) - 1 - r over r^2 on [-ln 2 / 2, ln 2 / 2], a degree-5 polynomial by Horner's rule: the vector exps share it. */
#define EXP_HORNER(fma, set, r)                                                                                      \
    fma(fma(fma(fma(fma(set(1.9875691500e-4f), r, set(1.3981999507e-3f)), r, set(8.3334519073e-3f)), r,              \
    set(4.1665795894e-2f)), r, set(1.6666665459e-1f)), r, set(5.0000001201e-1f))

/* Numerical Recipes' erfc fit: erfc(z) = t exp(-z^2 + ERFC_P(t)), t = 1 / (1 + z / 2), z >= 0. */
#define ERFC_HORNER(fma, set, t)                                                                                     \
    fma(t, fma(t, fma(t, fma(t, fma(t, fma(t, fma(t, fma(t, fma(t, set(0.17087277f), set(-0.82215223f)),                 \
    set(1.48851587f)), set(-1.13520398f)), set(0.27886807f)), set(-0.18628806f)), set(0.09678418f)),                  \
    set(0.37409196f)), set(1.00002368f)), set(-1.26551223f))

/* ---- plain C ---- */

static float row_statistic_scalar(const Pass *p, const float *x, float *mean) {
    double sum = 0;
    if (p->kernel == LAYER_NORM) {
        for (long c = 0; c < p->cols; c++) {
            sum += x[c];
        }
        *mean = (float) (sum / p->cols);
    } else {
        *mean = 0;
    }
    double squares = 0;
    for (long c = 0; c < p->cols; c++) {
        float centred = x[c] - *mean;
        squares += (double) centred * centred;
    }
    return (float) (1 / sqrt(squares / p->cols + p->eps));
}

static void rows_scalar(const Pass *p, long from, long to) {
    for (long r = from; r < to; r++) {
        float *x = p->x + r * p->xStride;
        float *out = p->out ? p->out + r * p->outStride : NULL;
        switch (p->kernel) {
        case LAYER_NORM:
        case RMS_NORM: {
            float mean;
            float inv = row_statistic_scalar(p, x, &mean);
            for (long c = 0; c < p->cols; c++) {
                float normed = (x[c] - mean) * inv * p->row[c];
                out[c] = p->shift ? normed + p->shift[c] : normed;
            }
            break;
        }
        case ADD_ROW:
            for (long c = 0; c < p->cols; c++) {
                x[c] += p->row[c];
            }
            break;
        case GELU:
            for (long c = 0; c < p->cols; c++) {
                float v = p->row ? x[c] + p->row[c] : x[c];
                if (out) {
                    out[c] = v;
                }
                float g = p->tanh ? v / (1 + expf(-2 * SQRT2_PI * (v + GELU_CUBE * v * v * v)))
                                  : 0.5f * v * erfcf(-v * SQRT1_2);
                x[c] = p->gate ? g * p->gate[r * p->gateStride + c] : g;
            }
            break;
        default: {
            float max = -INFINITY;
            for (long c = 0; c < p->cols; c++) {
                max = fmaxf(max, x[c]);
            }
            double sum = 0;
            for (long c = 0; c < p->cols; c++) {
                x[c] = expf(x[c] - max);
                sum += x[c];
            }
            float total = (float) sum;
            for (long c = 0; c < p->cols; c++) {
                x[c] /= total;
            }
        }
        }
    }
}

/* ---- AVX2 with FMA: 8 columns a step, the rest in plain C arithmetic ---- */

AVX2_TARGET INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_TARGET INLINE float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_TARGET INLINE __m256 exp8(__m256 x) {
    __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LOW), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LOW)), _mm256_set1_ps(EXP_HIGH));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HIGH), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LOW), r);
    __m256 p = EXP_HORNER(_mm256_fmadd_ps, _mm256_set1_ps, r);
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i two_n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(y, _mm256_castsi256_ps(two_n)));
}

AVX2_TARGET INLINE __m256 gelu8(__m256 v) {
    __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), _mm256_set1_ps(SQRT1_2));
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
    __m256 erfc = _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, ERFC_HORNER(_mm256_fmadd_ps, _mm256_set1_ps, t))));
    __m256 half = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), erfc);
    /* 0.5 v (1 + erf(v / sqrt 2)): v - half above zero, half below */
    return _mm256_blendv_ps(_mm256_sub_ps(v, half), half, v);
}

AVX2_TARGET INLINE __m256 gelu_tanh8(__m256 v) {
    __m256 u = _mm256_mul_ps(_mm256_set1_ps(SQRT2_PI),
                             _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_CUBE), v), _mm256_mul_ps(v, v), v));
    __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), u));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

AVX2_TARGET static void rows_avx2(const Pass *p, long from, long to) {
    long cols = p->cols, full = cols / 8 * 8;
    for (long r = from; r < to; r++) {
        float *x = p->x + r * p->xStride;
        float *out = p->out ? p->out + r * p->outStride : NULL;
        switch (p->kernel) {
        case LAYER_NORM:
        case RMS_NORM: {
            float mean = 0;
            if (p->kernel == LAYER_NORM) {
                __m256 sum = _mm256_setzero_ps();
                float rest = 0;
                for (long c = 0; c < full; c += 8) {
                    sum = _mm256_add_ps(sum, _mm256_loadu_ps(x + c));
                }
                for (long c = full; c < cols; c++) {
                    rest += x[c];
                }
                mean = (hsum8(sum) + rest) / cols;
            }
            __m256 meanv = _mm256_set1_ps(mean), squares = _mm256_setzero_ps();
            float rest = 0;
            for (long c = 0; c < full; c += 8) {
                __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + c), meanv);
                squares = _mm256_fmadd_ps(d, d, squares);
            }
            for (long c = full; c < cols; c++) {
                rest += (x[c] - mean) * (x[c] - mean);
            }
            float inv = (float) (1 / sqrt((double) (hsum8(squares) + rest) / cols + p->eps));
            __m256 invv = _mm256_set1_ps(inv);
            for (long c = 0; c < full; c += 8) {
                __m256 normed = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), meanv), invv),
                                              _mm256_loadu_ps(p->row + c));
                _mm256_storeu_ps(out + c, p->shift ? _mm256_add_ps(normed, _mm256_loadu_ps(p->shift + c)) : normed);
            }
            for (long c = full; c < cols; c++) {
                float normed = (x[c] - mean) * inv * p->row[c];
                out[c] = p->shift ? normed + p->shift[c] : normed;
            }
            break;
        }
        case ADD_ROW:
            for (long c = 0; c < full; c += 8) {
                _mm256_storeu_ps(x + c, _mm256_add_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(p->row + c)));
            }
            for (long c = full; c < cols; c++) {
                x[c] += p->row[c];
            }
            break;
        case GELU:
            for (long c = 0; c < cols; c += 8) {
                __m256 v;
                float tail[8] = {0};
                long count = cols - c < 8 ? cols - c : 8;
                if (count == 8) {
                    v = _mm256_loadu_ps(x + c);
                    if (p->row) {
                        v = _mm256_add_ps(v, _mm256_loadu_ps(p->row + c));
                    }
                } else {
                    for (long i = 0; i < count; i++) {
                        tail[i] = p->row ? x[c + i] + p->row[c + i] : x[c + i];
                    }
                    v = _mm256_loadu_ps(tail);
                }
                __m256 g = p->tanh ? gelu_tanh8(v) : gelu8(v);
                if (p->gate) {
                    const float *gate = p->gate + r * p->gateStride + c;
                    for (long i = 0; i < 8; i++) {
                        tail[i] = i < count ? gate[i] : 0;
                    }
                    g = _mm256_mul_ps(g, count == 8 ? _mm256_loadu_ps(gate) : _mm256_loadu_ps(tail));
                }
                if (count == 8) {
                    if (out) {
                        _mm256_storeu_ps(out + c, v);
                    }
                    _mm256_storeu_ps(x + c, g);
                } else {
                    _mm256_storeu_ps(tail, g);
                    for (long i = 0; i < count; i++) {
                        if (out) {
                            out[c + i] = p->row ? x[c + i] + p->row[c + i] : x[c + i];
                        }
                        x[c + i] = tail[i];
                    }
                }
            }
            break;
        default: {
            __m256 maxv = _mm256_set1_ps(-INFINITY);
            float max = -INFINITY;
            for (long c = 0; c < full; c += 8) {
                maxv = _mm256_max_ps(maxv, _mm256_loadu_ps(x + c));
            }
            for (long c = full; c < cols; c++) {
                max = fmaxf(max, x[c]);
            }
            max = fmaxf(max, hmax8(maxv));
            __m256 shift = _mm256_set1_ps(max), sum = _mm256_setzero_ps();
            for (long c = 0; c < cols; c += 8) {
                long count = cols - c < 8 ? cols - c : 8;
                float tail[8];
                for (long i = 0; i < 8; i++) {
                    tail[i] = i < count ? x[c + i] : -INFINITY;
                }
                __m256 e = exp8(_mm256_sub_ps(count == 8 ? _mm256_loadu_ps(x + c) : _mm256_loadu_ps(tail), shift));
                sum = _mm256_add_ps(sum, e);
                if (count == 8) {
                    _mm256_storeu_ps(x + c, e);
                } else {
                    _mm256_storeu_ps(tail, e);
                    for (long i = 0; i < count; i++) {
                        x[c + i] = tail[i];
                    }
                }
            }
            float total = hsum8(sum);
            __m256 totalv = _mm256_set1_ps(total);
            for (long c = 0; c < full; c += 8) {
                _mm256_storeu_ps(x + c, _mm256_div_ps(_mm256_loadu_ps(x + c), totalv));
            }
            for (long c = full; c < cols; c++) {
                x[c] /= total;
            }
        }
        }
    }
}

/* ---- AVX-512: 16 columns a step, the last partial step under a mask ---- */

AVX512_TARGET INLINE __m512 exp16(__m512 x) {
    __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LOW), _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LOW)), _mm512_set1_ps(EXP_HIGH));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HIGH), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LOW), r);
    __m512 p = EXP_HORNER(_mm512_fmadd_ps, _mm512_set1_ps, r);
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps((__mmask16) ~underflow, y, n);
}

AVX512_TARGET INLINE __m512 gelu16(__m512 v) {
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(v), _mm512_set1_ps(SQRT1_2));
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
    __m512 erfc = _mm512_mul_ps(t, exp16(_mm512_fnmadd_ps(z, z, ERFC_HORNER(_mm512_fmadd_ps, _mm512_set1_ps, t))));
    __m512 half = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), erfc);
    /* 0.5 v (1 + erf(v / sqrt 2)): v - half above zero, half below */
    __mmask16 negative = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(negative, _mm512_sub_ps(v, half), half);
}

AVX512_TARGET INLINE __m512 gelu_tanh16(__m512 v) {
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(SQRT2_PI),
                             _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_CUBE), v), _mm512_mul_ps(v, v), v));
    __m512 e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u));
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

AVX512_TARGET INLINE __mmask16 tail16(long cols, long c) {
    return cols - c >= 16 ? 0xffff : (__mmask16) ((1u << (cols - c)) - 1);
}

AVX512_TARGET static void rows_avx512(const Pass *p, long from, long to) {
    long cols = p->cols;
    for (long r = from; r < to; r++) {
        float *x = p->x + r * p->xStride;
        float *out = p->out ? p->out + r * p->outStride : NULL;
        switch (p->kernel) {
        case LAYER_NORM:
        case RMS_NORM: {
            float mean = 0;
            if (p->kernel == LAYER_NORM) {
                __m512 sum = _mm512_setzero_ps();
                for (long c = 0; c < cols; c += 16) {
                    sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(tail16(cols, c), x + c));
                }
                mean = _mm512_reduce_add_ps(sum) / cols;
            }
            __m512 meanv = _mm512_set1_ps(mean), squares = _mm512_setzero_ps();
            for (long c = 0; c < cols; c += 16) {
                __mmask16 m = tail16(cols, c);
                __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + c), meanv);
                squares = _mm512_fmadd_ps(d, d, squares);
            }
            __m512 invv = _mm512_set1_ps((float) (1 / sqrt((double) _mm512_reduce_add_ps(squares) / cols + p->eps)));
            for (long c = 0; c < cols; c += 16) {
                __mmask16 m = tail16(cols, c);
                __m512 normed = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + c), meanv), invv),
                                              _mm512_maskz_loadu_ps(m, p->row + c));
                if (p->shift) {
                    normed = _mm512_add_ps(normed, _mm512_maskz_loadu_ps(m, p->shift + c));
                }
                _mm512_mask_storeu_ps(out + c, m, normed);
            }
            break;
        }
        case ADD_ROW:
            for (long c = 0; c < cols; c += 16) {
                __mmask16 m = tail16(cols, c);
                _mm512_mask_storeu_ps(x + c, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + c),
                                                              _mm512_maskz_loadu_ps(m, p->row + c)));
            }
            break;
        case GELU:
            for (long c = 0; c < cols; c += 16) {
                __mmask16 m = tail16(cols, c);
                __m512 v = _mm512_maskz_loadu_ps(m, x + c);
                if (p->row) {
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, p->row + c));
                }
                if (out) {
                    _mm512_mask_storeu_ps(out + c, m, v);
                }
                __m512 g = p->tanh ? gelu_tanh16(v) : gelu16(v);
                if (p->gate) {
                    g = _mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, p->gate + r * p->gateStride + c));
                }
                _mm512_mask_storeu_ps(x + c, m, g);
            }
            break;
        default: {
            __m512 maxv = _mm512_set1_ps(-INFINITY);
            for (long c = 0; c < cols; c += 16) {
                maxv = _mm512_max_ps(maxv, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail16(cols, c), x + c));
            }
            __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(maxv)), sum = _mm512_setzero_ps();
            for (long c = 0; c < cols; c += 16) {
                __mmask16 m = tail16(cols, c);
                __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + c), shift)));
                sum = _mm512_add_ps(sum, e);
                _mm512_mask_storeu_ps(x + c, m, e);
            }
            __m512 totalv = _mm512_set1_ps(_mm512_reduce_add_ps(sum));
            for (long c = 0; c < cols; c += 16) {
                __mmask16 m = tail16(cols, c);
                _mm512_mask_storeu_ps(x + c, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + c), totalv));
            }
        }
        }
    }
}

/* A pass's rows, split between the threads. */
typedef struct {
    int isa;
    const Pass *p;
    long rows;
} Rows;

static void run_part(void *context, int t, int count) {
    const Rows *r = context;
    long from = r->rows * t / count, to = r->rows * (t + 1) / count;
    if (r->isa >= AVX512) {
        rows_avx512(r->p, from, to);
    } else if (r->isa == AVX2) {
        rows_avx2(r->p, from, to);
    } else {
        rows_scalar(r->p, from, to);
    }
}

static void run(int isa, const Pass *p, long rows) {
    int threads = rows * p->cols < PARALLEL_MIN ? 1 : pool_threads();
    if (threads > rows) {
        threads = (int) rows;
    }
    Rows r = {isa, p, rows};
    pool_run(threads, run_part, &r);
}

#define ADDRESS(a) ((float *) (intptr_t) (a))

JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_norm(
        JNIEnv *env, jclass cls, jint isa, jlong x, jint rows, jint cols, jlong xStride, jlong gain, jlong shift,
        jfloat eps, jlong out, jlong outStride) {
    Pass p = {shift ? LAYER_NORM : RMS_NORM, ADDRESS(x), cols, xStride, ADDRESS(gain), ADDRESS(shift), eps,
              ADDRESS(out), outStride, 0, NULL, 0};
    run(isa, &p, rows);
}

JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_addRow(
        JNIEnv *env, jclass cls, jint isa, jlong x, jint rows, jint cols, jlong xStride, jlong row) {
    Pass p = {ADD_ROW, ADDRESS(x), cols, xStride, ADDRESS(row), NULL, 0, NULL, 0, 0, NULL, 0};
    run(isa, &p, rows);
}

JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_gelu(
        JNIEnv *env, jclass cls, jint isa, jboolean tanh, jlong x, jint rows, jint cols, jlong xStride, jlong bias,
        jlong argument, jlong argumentStride, jlong gate, jlong gateStride) {
    Pass p = {GELU, ADDRESS(x), cols, xStride, ADDRESS(bias), NULL, 0, ADDRESS(argument), argumentStride, tanh,
              ADDRESS(gate), gateStride};
    run(isa, &p, rows);
}

JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_softmax(
        JNIEnv *env, jclass cls, jint isa, jlong x, jint rows, jint cols, jlong xStride) {
    Pass p = {SOFTMAX, ADDRESS(x), cols, xStride, NULL, NULL, 0, NULL, 0, 0, NULL, 0};
    run(isa, &p, rows);
}
