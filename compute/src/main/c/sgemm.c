/*
 * Our float32 GEMM, C [m, n] = alpha op(A) [m, k] op(B) [k, n] + beta C, row-major, each operand with its row
 * stride, for AVX-512 CPUs (the caller, NativeKernels, only calls it where the library's maxIsa() says AVX512
 * or more). GotoBLAS / BLIS structure: a block of op(A) (MC x KC) is packed into MR-row tiles (kept in L2), a
 * panel of op(B) (KC x NR) into one contiguous strip that every tile of the block runs the register-blocked
 * micro-kernel over: MR x NR accumulators in zmm registers, each step one load per 16 columns of B and one
 * broadcast of A per row. Exact float32 products and sums, as any sgemm. The threads split n by panels, so each
 * streams its own part of B (the weight, for a linear layer x W^T); each packs its own copy of the A block, which
 * is small next to its share of the work. Rows run as tiles of near-equal height (tiles_of); tails of n and k are
 * packed with zeros and stored through masks; op(B) stored [k, n] is read in place for a few tiles of rows
 * (direct_b). Measured choices of MR, NR, KC and the prefetches: bench/README.md "Compute layer".
 */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma")
#include <jni.h>
#include <immintrin.h>
#include "blip2kernels.h"
#include <stdint.h>
#include <stdlib.h>

#define MR 14          /* rows of a tile: 14 x 2 accumulators, 2 loads of B and 14 broadcasts per step */
#define NV 2           /* zmm vectors across a panel */
#define NR (16 * NV)   /* columns of a panel */
#define KC 512         /* depth of a block: a packed panel, KC x NR floats, 64 KiB, streams from L2 at 2 lines per 28 FMAs */
#define MC 420         /* rows of a packed A block (a multiple of MR): 840 KiB of the 2 MiB L2 */
/* Steps of the micro-kernel between fetching a line of the B panel into L1 and reading it. */
#define B_AHEAD 8
/* Rows up to which op(B) stored [k, n] is read in place, not packed (direct_b), and the most bytes it may span. */
#define DIRECT_B_ROWS 64
#define DIRECT_B_BYTES (2L << 20)
/*
 * Below this many multiply-adds (about 8 us on one thread) a second thread costs more than it saves: handing it the
 * task takes a few microseconds even when it is awake (pool.c), and it packs its own A.
 */
#define PARALLEL_MIN (1L << 20)

typedef struct {
    int transA, transB;
    long m, n, k;
    float alpha, beta;
    const float *a, *b;
    long lda, ldb;
    float *c;
    long ldc;
} Gemm;

/*
 * The source lines of the next B panel to pack, fetched into L2 one per step of the micro-kernel: a weight streams
 * from memory in short runs of each of NR rows (KC floats each), too short for the hardware prefetchers to get
 * ahead of the packing, which then waited on memory (measured: bench/README.md "Our float32 GEMM").
 */
typedef struct {
    const char *row;  /* the row being fetched */
    long ld;          /* bytes between rows */
    long col, bytes;  /* next byte offset in the row, bytes per row */
    long rows;        /* rows left, the current one included */
} Ahead;

INLINE void fetch_ahead(Ahead *ahead) {
    if (ahead->rows > 0) {
        _mm_prefetch(ahead->row + ahead->col, _MM_HINT_T1);
        ahead->col += 64;
        if (ahead->col >= ahead->bytes) {
            ahead->col = 0;
            ahead->row += ahead->ld;
            ahead->rows--;
        }
    }
}

/* Per-thread packing buffers, kept between calls (grown, never shrunk): nothing is allocated per call. */
static __thread float *packed_a;
static __thread float *packed_b;

INLINE __mmask16 lanes(long count) {
    return count >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << count) - 1);
}

/*
 * Packs rows [0, rows) x columns [0, cols) of a row-major matrix (row stride ld) transposed: out[c * width + r],
 * for rows <= 16 per call; rows past `rows` are packed as zeros. The destination's lanes past `width` are left.
 */
static void pack_transposed(const float *src, long ld, long rows, long cols, float *out, long width) {
    __mmask16 store = lanes(width < 16 ? width : 16);
    for (long c = 0; c < cols; c += 16) {
        __mmask16 load = lanes(cols - c);
        __m512i r[16];
        for (int i = 0; i < 16; i++) {
            r[i] = i < rows ? _mm512_castps_si512(_mm512_maskz_loadu_ps(load, src + i * ld + c)) : _mm512_setzero_si512();
        }
        transpose16(r);
        long count = cols - c < 16 ? cols - c : 16;
        for (int q = 0; q < count; q++) {
            _mm512_mask_storeu_ps(out + (c + q) * width, store, _mm512_castsi512_ps(r[q]));
        }
    }
}

/* Packs `cols` columns of `rows` <= 16 consecutive values each: out[c * width + r] = src[c * ld + r], zeros past rows. */
static void pack_straight(const float *src, long ld, long rows, long cols, float *out, long width) {
    __mmask16 load = lanes(rows);
    __mmask16 store = lanes(width < 16 ? width : 16);
    for (long c = 0; c < cols; c++) {
        _mm512_mask_storeu_ps(out + c * width, store, _mm512_maskz_loadu_ps(load, src + c * ld));
    }
}

/*
 * A block of `rows` rows runs as ceil(rows / MR) tiles of near-equal height (257 = 10 x 14 + 9 x 13, 32 = 11 + 11 +
 * 10), not full tiles and a short last one: a tile of few rows has too few accumulators to hide the FMAs' latency.
 */
INLINE long tiles_of(long rows) {
    return (rows + MR - 1) / MR;
}

INLINE long tile_start(long rows, long t) {
    return rows * t / tiles_of(rows);
}

/* op(A) rows [i0, i0 + rows) x columns [p0, p0 + kc) into tiles: tile t at out + t * kc * MR, [kc][MR]. */
static void pack_a(const Gemm *g, long i0, long rows, long p0, long kc, float *out) {
    for (long t = 0; t < tiles_of(rows); t++) {
        long from = tile_start(rows, t), count = tile_start(rows, t + 1) - from;
        long i = i0 + from;
        float *tile = out + t * kc * MR;
        if (g->transA) { /* A stored [k, m]: op(A)'s column p is a row of A */
            pack_straight(g->a + p0 * g->lda + i, g->lda, count, kc, tile, MR);
        } else {
            pack_transposed(g->a + i * g->lda + p0, g->lda, count, kc, tile, MR);
        }
    }
}

/* op(B) rows [p0, p0 + kc) x columns [j0, j0 + cols) into a [kc][NR] strip, zeros past cols. */
static void pack_b(const Gemm *g, long p0, long kc, long j0, long cols, float *out) {
    for (int v = 0; v < NV; v++) {
        long from = 16 * v;
        long count = cols - from;
        count = count < 0 ? 0 : count > 16 ? 16 : count;
        if (g->transB) { /* B stored [n, k]: a weight W, op(B) = W^T */
            pack_transposed(g->b + (j0 + from) * g->ldb + p0, g->ldb, count, kc, out + from, NR);
        } else {
            pack_straight(g->b + p0 * g->ldb + j0 + from, g->ldb, count, kc, out + from, NR);
        }
    }
}

/* The cursor over op(B)'s source for the panel of rows [p0, p0 + kc) x columns [j0, j0 + cols), as pack_b reads it. */
static Ahead ahead_of(const Gemm *g, long p0, long kc, long j0, long cols) {
    const float *from = g->transB ? g->b + j0 * g->ldb + p0 : g->b + p0 * g->ldb + j0;
    long skew = (long) ((uintptr_t) from & 63); /* whole lines: from the one holding the first element */
    Ahead ahead = {(const char *) from - skew, g->ldb * (long) sizeof(float), 0,
                   (g->transB ? kc : cols) * (long) sizeof(float) + skew, g->transB ? cols : kc};
    return ahead;
}

/*
 * C[0..rows) x [0..NR) (masked by the panel's columns) = alpha sum_p a[p][r] b[p * ldb + .] + (first ? beta C :
 * C); b a packed panel (ldb NR) or op(B) where it lies (direct_b). Inlined with rows a constant, so that the accumulators live in registers.
 */
INLINE void tile(int rows, long kc, const float *a, const float *b, long ldb, float *c, long ldc, float alpha,
                 float beta, int first, const __mmask16 mask[NV], Ahead *ahead) {
    Ahead next = *ahead; /* a local copy stays in registers across the loop */
    __m512 acc[MR][NV];
    #pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
        #pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            acc[r][v] = _mm512_setzero_ps();
        }
    }
    for (long p = 0; p < kc; p++) {
        fetch_ahead(&next);
        /* the panel's two lines B_AHEAD steps on into L1: it streams from L2 (measured: bench/README.md) */
        _mm_prefetch((const char *) (b + (p + B_AHEAD) * ldb), _MM_HINT_T0);
        _mm_prefetch((const char *) (b + (p + B_AHEAD) * ldb) + 64, _MM_HINT_T0);
        __m512 bv[NV];
        #pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            bv[v] = _mm512_maskz_loadu_ps(mask[v], b + p * ldb + 16 * v);
        }
        #pragma GCC unroll 16
        for (int r = 0; r < rows; r++) {
            __m512 av = _mm512_set1_ps(a[p * MR + r]);
            #pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
            }
        }
    }
    *ahead = next;
    __m512 scale = _mm512_set1_ps(alpha);
    __m512 keep = _mm512_set1_ps(first ? beta : 1.0f);
    int read = !first || beta != 0.0f; /* beta 0: C is not read (it may hold NaN) */
    #pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
        #pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            float *to = c + r * ldc + 16 * v;
            __m512 sum = _mm512_mul_ps(acc[r][v], scale);
            if (read) {
                sum = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask[v], to), keep, sum);
            }
            _mm512_mask_storeu_ps(to, mask[v], sum);
        }
    }
}

/* One tile, dispatched to the instance for its row count. */
static void tile_rows(int rows, long kc, const float *a, const float *b, long ldb, float *c, long ldc, float alpha,
                      float beta, int first, const __mmask16 mask[NV], Ahead *ahead) {
    switch (rows) {
#define ROWS_CASE(R) case R: tile(R, kc, a, b, ldb, c, ldc, alpha, beta, first, mask, ahead); break;
    ROWS_CASE(1) ROWS_CASE(2) ROWS_CASE(3) ROWS_CASE(4) ROWS_CASE(5) ROWS_CASE(6) ROWS_CASE(7)
    ROWS_CASE(8) ROWS_CASE(9) ROWS_CASE(10) ROWS_CASE(11) ROWS_CASE(12) ROWS_CASE(13) ROWS_CASE(14)
#undef ROWS_CASE
    default: break;
    }
}

static float *grow(float **buffer, size_t floats) {
    /* one buffer per thread, sized for the largest block: MC x KC for A, KC x NR for B */
    if (*buffer == NULL) {
        *buffer = aligned_alloc(64, floats * sizeof(float));
    }
    return *buffer;
}

/*
 * Whether the micro-kernel reads op(B) where it lies instead of a packed panel: B stored [k, n] already holds each
 * step's NR columns side by side, and for a few tiles of rows (the Q-Former's attention, 32 queries) the copy would
 * cost more than it saves. Not a weight (training's dy W, W [n, k] read as B): a panel then steps through KC rows
 * tens of KiB apart, each a page of its own, at half the packed panel's rate. Measured: bench/README.md "Our
 * float32 GEMM".
 */
static int direct_b(const Gemm *g) {
    return !g->transB && g->m <= DIRECT_B_ROWS && g->k * g->ldb * (long) sizeof(float) <= DIRECT_B_BYTES;
}

/* This thread's part of C: rows [row0, row1), panels of columns [first, last) in units of NR. */
static void run(const Gemm *g, long row0, long row1, long first, long last) {
    float *a = grow(&packed_a, (size_t) MC * KC);
    float *b = grow(&packed_b, (size_t) KC * NR);
    if (a == NULL || b == NULL) {
        abort(); /* a few hundred KiB per thread: no memory left for them is beyond recovery */
    }
    int direct = direct_b(g);
    for (long i0 = row0; i0 < row1; i0 += MC) {
        long rows = row1 - i0 < MC ? row1 - i0 : MC;
        for (long p0 = 0; p0 < g->k; p0 += KC) {
            long kc = g->k - p0 < KC ? g->k - p0 : KC;
            pack_a(g, i0, rows, p0, kc, a);
            for (long panel = first; panel < last; panel++) {
                long j0 = panel * NR;
                long cols = g->n - j0 < NR ? g->n - j0 : NR;
                const float *panel_b = b;
                long ldb = NR;
                if (direct) {
                    panel_b = g->b + p0 * g->ldb + j0;
                    ldb = g->ldb;
                } else {
                    pack_b(g, p0, kc, j0, cols, b);
                }
                /* while this panel runs: the next one's source, in this block of depth or the next */
                Ahead ahead = {NULL, 0, 0, 0, 0};
                if (direct) {
                    /* nothing to pack next */
                } else if (panel + 1 < last) {
                    long next = j0 + NR;
                    ahead = ahead_of(g, p0, kc, next, g->n - next < NR ? g->n - next : NR);
                } else if (p0 + KC < g->k) {
                    long next = first * NR;
                    ahead = ahead_of(g, p0 + KC, g->k - p0 - KC < KC ? g->k - p0 - KC : KC, next,
                                     g->n - next < NR ? g->n - next : NR);
                }
                __mmask16 mask[NV];
                for (int v = 0; v < NV; v++) {
                    mask[v] = cols <= 16 * v ? 0 : lanes(cols - 16 * v);
                }
                for (long t = 0; t < tiles_of(rows); t++) {
                    long from = tile_start(rows, t), count = tile_start(rows, t + 1) - from;
                    tile_rows((int) count, kc, a + t * kc * MR, panel_b, ldb, g->c + (i0 + from) * g->ldc + j0, g->ldc,
                              g->alpha, g->beta, p0 == 0, mask, &ahead);
                }
            }
        }
    }
}

/* The threads' parts of a product: parts of its tiles of rows or of its panels of columns. */
typedef struct {
    const Gemm *g;
    long parts, panels;
    int by_rows;
} Split;

static void run_part(void *context, int t, int count) {
    const Split *s = context;
    long from = s->parts * t / count, to = s->parts * (t + 1) / count;
    if (s->by_rows) {
        long row1 = to * MR < s->g->m ? to * MR : s->g->m;
        run(s->g, from * MR, row1, 0, s->panels);
    } else {
        run(s->g, 0, s->g->m, from, to);
    }
}

/* k = 0 is a scaling of C: no block runs. */
static void scale_only(const Gemm *g) {
    for (long i = 0; i < g->m; i++) {
        for (long j = 0; j < g->n; j++) {
            float *to = g->c + i * g->ldc + j;
            *to = g->beta == 0.0f ? 0.0f : *to * g->beta;
        }
    }
}

/* The Java side (Products) has checked the shapes; the operands' addresses are those of their first elements. */
JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_gemm(
        JNIEnv *env, jclass cls, jboolean transA, jboolean transB, jint m, jint n, jint k, jfloat alpha, jlong a,
        jlong lda, jlong b, jlong ldb, jfloat beta, jlong c, jlong ldc) {
    Gemm g = {transA, transB, m, n, k, alpha, beta, (const float *) (intptr_t) a, (const float *) (intptr_t) b,
              lda, ldb, (float *) (intptr_t) c, ldc};
    if (m <= 0 || n <= 0) {
        return;
    }
    if (k <= 0) {
        scale_only(&g);
        return;
    }
    long panels = (n + NR - 1) / NR, tiles = (m + MR - 1) / MR;
    int threads = (long) m * n * k < PARALLEL_MIN ? 1 : pool_threads();
    /* n split by panels where each thread gets a few (a weight: each streams its own rows); else m by tiles
       (the attention's narrow products, n = a head's width: the threads share B, which is small) */
    int by_rows = panels < 4L * threads && tiles > panels;
    long parts = by_rows ? tiles : panels;
    if (threads > parts) {
        threads = (int) parts;
    }
    Split split = {&g, parts, panels, by_rows};
    pool_run(threads, run_part, &split);
}
