/*
 * Our bfloat16 GEMM on AMX tiles, y [m, n] = x [m, k] W [n, k]^T (+ y): W bfloat16 read where it lies, x float32
 * rounded to bfloat16 (to nearest even, what PyTorch's .to(torch.bfloat16) and oneDNN's bf16 matmul do), exact
 * bfloat16 products summed in float32 by TDPBF16PS. For the products of many rows (the ViT's 257): oneDNN 2.5's
 * AMX matmul, given the weight in place as x W^T, repacks it for the tiles on every call and ran at a third of
 * this (bench/README.md "Compute layer").
 *
 * x is rounded once per call into rows of whole 32-element tile rows (zeros past k; the row stride padded off a
 * multiple of 4 KiB so that a tile's 16 rows do not share cache sets), which A tiles load in place. The threads
 * split n by panels of 32 weight rows; each packs its panel in the tiles' pair-interleaved layout (element pairs
 * k, k+1 of 16 weight rows side by side: a 16 x 16 transpose of 32-bit pairs), once for all of x's rows, and runs
 * blocks of 32 rows of x over it: 2 x 2 tiles of float32 sums (16 x 16 each), 2 A and 2 B tiles per step of 32.
 * The depth is run in passes of KC, each panel's passes in order, so that x's rows of one pass stay in L2.
 * Tails (m not a multiple of 32, n of 32, k of 32) are zeros in the packed operands and stored through a scratch
 * block.
 *
 * AMX needs the kernel's permission for the tile data (arch_prctl ARCH_REQ_XCOMP_PERM, once per process, as
 * oneDNN asks for it too): amxBf16() says whether the CPU has AMX-BF16 and the permission was granted.
 */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")
#include <jni.h>
#include <cpuid.h>
#include <immintrin.h>
#include "blip2kernels.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STEP 32     /* bfloat16 per tile row (64 bytes): the depth of one TDPBF16PS */
#define PANEL 32    /* weight rows (columns of y) per packed panel: two B tiles */
#define BLOCK 32    /* rows of x per block: two A tiles */
/* depth of a pass: x's rows over it, 257 x 2048 bfloat16 (1 MiB), stay in L2 while every panel runs over them */
#define KC 2048
/* Below this many multiply-adds a second thread costs more than it saves. */
#define PARALLEL_MIN (1L << 18)
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct __attribute__((packed)) {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes[16];
    uint8_t rows[16];
} TileConfig;

typedef struct {
    long m, n, k, kp; /* kp: k rounded up to STEP */
    const float *x;
    long ldx;
    const uint16_t *w;
    float *y;
    long ldy;
    int accumulate;
    uint16_t *a; /* x rounded: rounded-up m rows of lda elements */
    long lda;
} Gemm;

static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static int amx_granted;

static void request_amx(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        return;
    }
    int tile = (edx >> 24) & 1, bf16 = (edx >> 22) & 1, avx512bw = (ebx >> 30) & 1;
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) {
        return;
    }
    int avx512bf16 = (eax >> 5) & 1; /* the rounding of x (VCVTNE2PS2BF16) */
    amx_granted = tile && bf16 && avx512bw && avx512bf16
                  && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

static int amx_bf16(void) {
    pthread_once(&amx_once, request_amx);
    return amx_granted;
}

/* Per-thread buffers, kept between calls and grown as needed: nothing is allocated per call once warm. */
typedef struct {
    void *data;
    size_t bytes;
} Buffer;

static __thread Buffer rounded; /* x as bfloat16 */
static __thread Buffer packed;  /* a panel of W */
static __thread Buffer done;    /* per panel of a call: how many of its passes are summed into y */

static void *grow(Buffer *buffer, size_t bytes) {
    if (buffer->bytes < bytes) {
        free(buffer->data);
        buffer->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
        buffer->bytes = buffer->data == NULL ? 0 : bytes;
    }
    if (buffer->data == NULL) {
        abort(); /* a few MiB at most: no memory left for them is beyond recovery */
    }
    return buffer->data;
}

/* Rows [from, to) of x to bfloat16 in a, nearest even, zeros from k to lda; rows past m are all zeros. */
static void round_rows(const Gemm *g, long from, long to) {
    for (long i = from; i < to; i++) {
        uint16_t *out = g->a + i * g->lda;
        for (long c = 0; c < g->lda; c += STEP) {
            long left = i < g->m ? g->k - c : 0;
            __mmask16 lo = left >= 16 ? 0xffff : left > 0 ? (__mmask16) ((1u << left) - 1) : 0;
            __mmask16 hi = left >= 32 ? 0xffff : left > 16 ? (__mmask16) ((1u << (left - 16)) - 1) : 0;
            const float *x = g->x + i * g->ldx + c;
            __m512 l = _mm512_maskz_loadu_ps(lo, x);
            __m512 h = _mm512_maskz_loadu_ps(hi, x + 16);
            _mm512_store_si512((__m512i *) (out + c), (__m512i) _mm512_cvtne2ps_pbh(h, l));
        }
    }
}

/*
 * Weight rows [j0, j0 + cols), cols <= PANEL, as two B tiles' columns: half h (rows j0 + 16h ..) at
 * out + h * kp * 16, [kp / 2][16] pairs; zeros past k and past cols.
 */
static void pack_panel(const Gemm *g, long j0, long cols, long p0, long kc, uint16_t *out) {
    for (int h = 0; h < 2; h++) {
        long rows = cols - 16 * h;
        uint32_t *half = (uint32_t *) (out + h * kc * 16);
        for (long c = 0; c < kc; c += STEP) {
            long left = g->k - p0 - c;
            __mmask32 load = left >= 32 ? 0xffffffffu : left > 0 ? (__mmask32) ((1u << left) - 1) : 0;
            __m512i r[16];
            for (int i = 0; i < 16; i++) {
                r[i] = i < rows ? _mm512_maskz_loadu_epi16(load, g->w + (j0 + 16 * h + i) * g->k + p0 + c)
                                : _mm512_setzero_si512();
            }
            transpose16(r);
            for (int q = 0; q < 16; q++) {
                _mm512_store_si512((__m512i *) (half + (c / 2 + q) * 16), r[q]);
            }
        }
    }
}

/*
 * Sums of BLOCK (or 16, `two` false) rows of a against a packed panel into the float32 block c (row stride ldc
 * bytes), loaded from c first when `load`. Tiles: 0-3 the sums, 4-5 a, 6-7 the panel's halves.
 */
INLINE void block(const uint16_t *a, long lda, const uint16_t *b, long kp, float *c, long ldc, int load, int two) {
    long half = kp * 16; /* elements from the panel's first half to its second */
    float *c1 = (float *) ((char *) c + 16 * ldc);
    if (load) {
        _tile_loadd(0, c, ldc);
        _tile_loadd(1, c + 16, ldc);
        if (two) {
            _tile_loadd(2, c1, ldc);
            _tile_loadd(3, c1 + 16, ldc);
        }
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    long bytes = lda * 2;
    for (long s = 0; s < kp / STEP; s++) {
        _tile_loadd(6, b + s * 512, 64);
        _tile_loadd(7, b + half + s * 512, 64);
        _tile_loadd(4, a + s * STEP, bytes);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        if (two) {
            _tile_loadd(5, a + 16 * lda + s * STEP, bytes);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, c, ldc);
    _tile_stored(1, c + 16, ldc);
    if (two) {
        _tile_stored(2, c1, ldc);
        _tile_stored(3, c1 + 16, ldc);
    }
}

/* One panel of weight rows over columns [p0, p0 + kc) of x against every row of x, its packing in b. */
static void run(const Gemm *g, long panel, long p0, long kc, uint16_t *b) {
    float scratch[BLOCK * PANEL] __attribute__((aligned(64)));
    int load = g->accumulate || p0 > 0;
    {
        long j0 = panel * PANEL;
        long cols = g->n - j0 < PANEL ? g->n - j0 : PANEL;
        pack_panel(g, j0, cols, p0, kc, b);
        for (long i0 = 0; i0 < g->m; i0 += BLOCK) {
            long rows = g->m - i0 < BLOCK ? g->m - i0 : BLOCK;
            int two = rows > 16;
            const uint16_t *a = g->a + i0 * g->lda + p0;
            float *y = g->y + i0 * g->ldy + j0;
            if (rows == BLOCK && cols == PANEL) {
                block(a, g->lda, b, kc, y, g->ldy * 4, load, 1);
                continue;
            }
            /* a partial block: through the scratch, only its rows and columns read from and written to y */
            __mmask16 lanes[2];
            for (int h = 0; h < 2; h++) {
                long count = cols - 16 * h;
                lanes[h] = count >= 16 ? 0xffff : count > 0 ? (__mmask16) ((1u << count) - 1) : 0;
            }
            if (load) {
                for (long r = 0; r < rows; r++) {
                    for (int h = 0; h < 2; h++) {
                        _mm512_store_ps(scratch + r * PANEL + 16 * h,
                                        _mm512_maskz_loadu_ps(lanes[h], y + r * g->ldy + 16 * h));
                    }
                }
            }
            if (two) {
                block(a, g->lda, b, kc, scratch, PANEL * 4, load, 1);
            } else {
                block(a, g->lda, b, kc, scratch, PANEL * 4, load, 0);
            }
            for (long r = 0; r < rows; r++) {
                for (int h = 0; h < 2; h++) {
                    _mm512_mask_storeu_ps(y + r * g->ldy + 16 * h, lanes[h], _mm512_load_ps(scratch + r * PANEL + 16 * h));
                }
            }
        }
    }
}

JNIEXPORT jboolean JNICALL Java_dev_blip2dl4j_compute_NativeKernels_amxBf16(JNIEnv *env, jclass cls) {
    return amx_bf16() ? JNI_TRUE : JNI_FALSE;
}

/* A product's (pass, panel) items, handed out as the threads come free, and each panel's passes done. */
typedef struct {
    const Gemm *g;
    long mp, panels, passes;
    long *passes_done;
    long next;        /* the next item to take */
} Work;

static void run_part(void *context, int t, int count) {
    Work *work = context;
    const Gemm *g = work->g;
    round_rows(g, work->mp * t / count, work->mp * (t + 1) / count);
    pool_barrier(count);
    uint16_t *b = grow(&packed, (size_t) KC * PANEL * sizeof(uint16_t));
    TileConfig config = {0};
    config.palette = 1;
    for (int i = 0; i < 8; i++) {
        config.bytes[i] = 64;
        config.rows[i] = 16;
    }
    _tile_loadconfig(&config);
    /* (pass, panel) in pass order, handed out as the threads come free, each waiting only for its panel's
       previous pass: no barrier between passes for a thread another process has taken off its core to hold the
       other one up */
    for (;;) {
        long item = __atomic_fetch_add(&work->next, 1, __ATOMIC_RELAXED);
        if (item >= work->passes * work->panels) {
            break;
        }
        long pass = item / work->panels, panel = item % work->panels;
        while (__atomic_load_n(&work->passes_done[panel], __ATOMIC_ACQUIRE) < pass) {
            _mm_pause();
        }
        long p0 = pass * KC;
        run(g, panel, p0, g->kp - p0 < KC ? g->kp - p0 : KC, b);
        __atomic_store_n(&work->passes_done[panel], pass + 1, __ATOMIC_RELEASE);
    }
    _tile_release();
}

/* The Java side (Products) has checked the shapes and asked amxBf16() first; y's rows may be a wider array's. */
JNIEXPORT void JNICALL Java_dev_blip2dl4j_compute_NativeKernels_bf16Gemm(
        JNIEnv *env, jclass cls, jint m, jint n, jint k, jlong x, jlong ldx, jlong w, jlong y, jlong ldy,
        jboolean accumulate) {
    if (m <= 0 || n <= 0) {
        return;
    }
    long kp = (k + STEP - 1) / STEP * STEP;
    /* the row stride in bytes off a multiple of 4 KiB: a tile's 16 rows would share L1 sets */
    long lda = kp % 2048 == 0 ? kp + STEP : kp;
    long mp = (m + 15) / 16 * 16;
    uint16_t *a = grow(&rounded, (size_t) mp * lda * sizeof(uint16_t));
    Gemm g = {m, n, k, kp, (const float *) (intptr_t) x, ldx, (const uint16_t *) (intptr_t) w,
              (float *) (intptr_t) y, ldy, accumulate, a, lda};
    long panels = (n + PANEL - 1) / PANEL, passes = (kp + KC - 1) / KC;
    long *passes_done = grow(&done, (size_t) panels * sizeof(long));
    memset(passes_done, 0, (size_t) panels * sizeof(long));
    int threads = (long) m * n * k < PARALLEL_MIN ? 1 : pool_threads();
    if (threads > panels) {
        threads = (int) panels;
    }
    Work work = {&g, mp, panels, passes, passes_done, 0};
    pool_run(threads, run_part, &work);
}
