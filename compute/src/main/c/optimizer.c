/*
 * The optimizer's passes over the trained parameters (107M floats in stage two): the sum of squares of a gradient,
 * for the global norm that clipping and the logs need, and AdamW's update.
 *
 * The sum of squares is in double, each fixed block of BLOCK elements summed in order and the blocks' sums added in
 * order, so the result does not depend on how many threads took the blocks (a resumed run clips as the first did).
 * ND4J's norm2, one op per gradient, took 0.35 s a step.
 *
 * AdamW's update of a parameter array in place, element by element as finetune's AdamW writes it in Java:
 * torch's order of float operations (mul_, add_(alpha), addcmul_, sqrt, div, add_, addcdiv_), each rounded to
 * float, no fused multiply-adds (the file is compiled with contraction off): the results are the Java loop's, bit for
 * bit, 16 elements a step at AVX-512 and 8 at AVX2, the array split across the library's threads. The Java loop
 * spent ~1 s a step on the 107M parameters of stage two (bench/README.md "Compute layer").
 */
#pragma GCC optimize("fp-contract=off")
#include "blip2kernels.h"

#include <jni.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Below this many elements a second thread costs more than it saves. */
#define PARALLEL_MIN (1L << 16)

typedef struct {
    int isa;
    float *p;
    const float *g;
    float *m, *v;
    long n;
    float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, minus_step_size, correction2_sqrt, epsilon;
} Update;

static void update_scalar(const Update *u, long from, long to) {
    for (long i = from; i < to; i++) {
        float grad = u->g[i];
        float param = u->p[i] * u->decay;
        float first = u->m[i] * u->beta1 + u->one_minus_beta1 * grad;
        float second = u->v[i] * u->beta2 + u->one_minus_beta2 * grad * grad;
        float denominator = sqrtf(second) / u->correction2_sqrt + u->epsilon;
        u->m[i] = first;
        u->v[i] = second;
        u->p[i] = param + u->minus_step_size * first / denominator;
    }
}

AVX512_TARGET static void update_avx512(const Update *u, long from, long to) {
    __m512 decay = _mm512_set1_ps(u->decay), beta1 = _mm512_set1_ps(u->beta1);
    __m512 one_minus_beta1 = _mm512_set1_ps(u->one_minus_beta1), beta2 = _mm512_set1_ps(u->beta2);
    __m512 one_minus_beta2 = _mm512_set1_ps(u->one_minus_beta2), step = _mm512_set1_ps(u->minus_step_size);
    __m512 correction = _mm512_set1_ps(u->correction2_sqrt), epsilon = _mm512_set1_ps(u->epsilon);
    for (long i = from; i < to; i += 16) {
        __mmask16 k = to - i >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (to - i)) - 1);
        __m512 grad = _mm512_maskz_loadu_ps(k, u->g + i);
        __m512 param = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, u->p + i), decay);
        __m512 first = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, u->m + i), beta1),
                                     _mm512_mul_ps(one_minus_beta1, grad));
        __m512 second = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, u->v + i), beta2),
                                      _mm512_mul_ps(_mm512_mul_ps(one_minus_beta2, grad), grad));
        __m512 denominator = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(second), correction), epsilon);
        _mm512_mask_storeu_ps(u->m + i, k, first);
        _mm512_mask_storeu_ps(u->v + i, k, second);
        _mm512_mask_storeu_ps(u->p + i, k, _mm512_add_ps(param, _mm512_div_ps(_mm512_mul_ps(step, first), denominator)));
    }
}

AVX2_TARGET static void update_avx2(const Update *u, long from, long to) {
    __m256 decay = _mm256_set1_ps(u->decay), beta1 = _mm256_set1_ps(u->beta1);
    __m256 one_minus_beta1 = _mm256_set1_ps(u->one_minus_beta1), beta2 = _mm256_set1_ps(u->beta2);
    __m256 one_minus_beta2 = _mm256_set1_ps(u->one_minus_beta2), step = _mm256_set1_ps(u->minus_step_size);
    __m256 correction = _mm256_set1_ps(u->correction2_sqrt), epsilon = _mm256_set1_ps(u->epsilon);
    long i = from;
    for (; i + 8 <= to; i += 8) {
        __m256 grad = _mm256_loadu_ps(u->g + i);
        __m256 param = _mm256_mul_ps(_mm256_loadu_ps(u->p + i), decay);
        __m256 first = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(u->m + i), beta1), _mm256_mul_ps(one_minus_beta1, grad));
        __m256 second = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(u->v + i), beta2),
                                      _mm256_mul_ps(_mm256_mul_ps(one_minus_beta2, grad), grad));
        __m256 denominator = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(second), correction), epsilon);
        _mm256_storeu_ps(u->m + i, first);
        _mm256_storeu_ps(u->v + i, second);
        _mm256_storeu_ps(u->p + i, _mm256_add_ps(param, _mm256_div_ps(_mm256_mul_ps(step, first), denominator)));
    }
    update_scalar(u, i, to);
}

static void update_part(void *context, int t, int count) {
    const Update *u = context;
    long from = u->n * t / count, to = u->n * (t + 1) / count;
    if (u->isa >= AVX512) {
        update_avx512(u, from, to);
    } else if (u->isa == AVX2) {
        update_avx2(u, from, to);
    } else {
        update_scalar(u, from, to);
    }
}

/* The Java side (OptimizerKernels) has checked that the four arrays hold n floats each. */
JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_adamw(
        JNIEnv *env, jclass cls, jint isa, jlong p, jlong g, jlong m, jlong v, jlong n, jfloat decay, jfloat beta1,
        jfloat one_minus_beta1, jfloat beta2, jfloat one_minus_beta2, jfloat minus_step_size,
        jfloat correction2_sqrt, jfloat epsilon) {
    Update u = {isa, (float *) (intptr_t) p, (const float *) (intptr_t) g, (float *) (intptr_t) m,
                (float *) (intptr_t) v, n, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, minus_step_size,
                correction2_sqrt, epsilon};
    pool_run(n < PARALLEL_MIN ? 1 : pool_threads(), update_part, &u);
}

#define BLOCK 65536L

typedef struct {
    int isa;
    const float *x;
    long n, blocks;
    double *sums; /* per block */
} Squares;

static double squares_scalar(const float *x, long from, long to) {
    double sum = 0;
    for (long i = from; i < to; i++) {
        sum += (double) x[i] * x[i];
    }
    return sum;
}

/* Eight double lanes, each summing every eighth element in order, added lane by lane at the end. */
AVX512_TARGET static double squares_avx512(const float *x, long from, long to) {
    __m512d sum = _mm512_setzero_pd();
    long i = from;
    for (; i + 8 <= to; i += 8) {
        __m512d d = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
        sum = _mm512_add_pd(sum, _mm512_mul_pd(d, d));
    }
    double lanes[8];
    _mm512_storeu_pd(lanes, sum);
    double total = 0;
    for (int l = 0; l < 8; l++) {
        total += lanes[l];
    }
    return total + squares_scalar(x, i, to);
}

AVX2_TARGET static double squares_avx2(const float *x, long from, long to) {
    __m256d low = _mm256_setzero_pd(), high = _mm256_setzero_pd();
    long i = from;
    for (; i + 8 <= to; i += 8) {
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        low = _mm256_add_pd(low, _mm256_mul_pd(a, a));
        high = _mm256_add_pd(high, _mm256_mul_pd(b, b));
    }
    double lanes[8];
    _mm256_storeu_pd(lanes, low);
    _mm256_storeu_pd(lanes + 4, high);
    double total = 0;
    for (int l = 0; l < 8; l++) {
        total += lanes[l];
    }
    return total + squares_scalar(x, i, to);
}

static void squares_part(void *context, int t, int count) {
    const Squares *s = context;
    for (long b = s->blocks * t / count; b < s->blocks * (t + 1) / count; b++) {
        long from = b * BLOCK, to = from + BLOCK < s->n ? from + BLOCK : s->n;
        s->sums[b] = s->isa >= AVX512 ? squares_avx512(s->x, from, to)
                     : s->isa == AVX2 ? squares_avx2(s->x, from, to) : squares_scalar(s->x, from, to);
    }
}

/* The Java side (OptimizerKernels) has checked that x holds n floats; -1 where the blocks' sums had no memory. */
JNIEXPORT jdouble JNICALL Java_dev_blip2dl4j_compute_NativeKernels_sumOfSquares(JNIEnv *env, jclass cls, jint isa,
                                                                                jlong x, jlong n) {
    long blocks = (n + BLOCK - 1) / BLOCK;
    double *sums = malloc((size_t) (blocks > 0 ? blocks : 1) * sizeof(double));
    if (sums == NULL) {
        return -1;
    }
    Squares s = {isa, (const float *) (intptr_t) x, n, blocks, sums};
    pool_run(blocks < 2 ? 1 : pool_threads(), squares_part, &s);
    double total = 0;
    for (long b = 0; b < blocks; b++) {
        total += sums[b];
    }
    free(sums);
    return total;
}
