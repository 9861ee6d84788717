package dev.blip2dl4j.compute;

import dev.blip2dl4j.compute.NativeKernels.Isa;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.tensor.StoredTensor;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.javacpp.FloatPointer;
import org.junit.jupiter.api.Test;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every product on every path the dispatcher can take, against float64 sums over the weight's decoded values,
 * on edge sizes (1, odd, not a multiple of a block or a vector), views with a wider row stride, with and without
 * bias and accumulation. Each path's bound is what its arithmetic allows: float32 rounding (the bfloat16 GEMMs'
 * sums against x rounded to bfloat16 as they round it, to nearest even), x quantized to int8 per block (half a step of amax / 127: oneDNN's int8 GEMM and our
 * AVX512_VNNI path).
 */
class ProductsTest {
    /** m, n, k, int8 block (0: one scale per row). */
    private static final int[][] SHAPES = {
        {1, 1, 1, 0}, {1, 7, 1, 1}, {2, 3, 1, 0}, {3, 5, 33, 11}, {1, 37, 64, 32}, {5, 17, 96, 0}, {17, 33, 130, 13},
        {1, 300, 257, 0}, {40, 100, 256, 32}, {64, 48, 160, 16},
    };
    /** The native kernels' own edge cases: rows not a multiple of their group of 4, enough work for two threads. */
    private static final int[][] NATIVE_SHAPES = {
        {1, 2, 15, 0}, {1, 4, 16, 16}, {1, 5, 17, 0}, {2, 9, 31, 31}, {1, 515, 130, 13}, {3, 263, 257, 0},
        {1, 131, 1024, 64}, {1, 67, 1000, 40}, {4, 130, 513, 0}, {1, 1031, 96, 32},
    };
    private static final List<String> FORCED = List.of("auto", "portable", "openblas", "dnnl", "native", "gemm");
    private static final List<DType> TYPES = List.of(DType.F32, DType.BF16, DType.F16, DType.I8);

    @Test
    void everyProductOnEveryPathMatchesFloat64() {
        Set<KernelPath> ran = EnumSet.noneOf(KernelPath.class);
        Random random = new Random(11);
        for (Dispatcher dispatcher : forcedDispatchers()) {
            for (DType type : TYPES) {
                for (int[] shape : SHAPES) {
                    for (int variant = 0; variant < 4; variant++) {
                        ran.add(check(dispatcher, type, shape, variant % 2 == 1, variant >= 2, random));
                    }
                }
            }
        }
        CpuFeatures cpu = CpuFeatures.detect();
        Set<KernelPath> possible = EnumSet.of(KernelPath.PORTABLE, KernelPath.OPENBLAS_F32);
        if (cpu.avx2()) {
            possible.add(KernelPath.DNNL_F32);
        }
        if (cpu.avx2() && cpu.int8()) {
            possible.add(KernelPath.DNNL_I8);
        }
        if (cpu.avx2() && cpu.bf16()) {
            possible.add(KernelPath.DNNL_BF16);
        }
        if (NativeKernels.loaded()) {
            possible.add(KernelPath.NATIVE);
        }
        if (oursGemmRuns()) {
            possible.add(KernelPath.NATIVE_GEMM);
        }
        if (amxRuns()) {
            possible.add(KernelPath.NATIVE_BF16_GEMM);
        }
        assertEquals(possible, ran, "the paths this CPU can take, each run");
    }

    /** The backward's shapes: the products', the native kernels' edges, one taller than a decoded block. */
    private static final int[][] BACKWARD_SHAPES = backwardShapes();

    /**
     * The backward to the input, {@code dx = alpha dy W (+ dx)}, for every type on every path, on the same edge shapes
     * and on one taller than a decoded block (4096 rows of 256 columns), so that the blocks' sums meet; float32
     * rounding is the bound, since the weight is decoded exactly.
     */
    @Test
    void everyBackwardOnEveryPathMatchesFloat64() {
        Set<KernelPath> ran = EnumSet.noneOf(KernelPath.class);
        Random random = new Random(12);
        for (Dispatcher dispatcher : forcedDispatchers()) {
            for (DType type : TYPES) {
                for (int[] shape : BACKWARD_SHAPES) {
                    for (boolean accumulate : new boolean[] {false, true}) {
                        ran.add(checkBackward(dispatcher, type, shape, accumulate, random));
                    }
                }
            }
        }
        Set<KernelPath> possible = EnumSet.of(KernelPath.PORTABLE, KernelPath.OPENBLAS_F32);
        if (CpuFeatures.detect().avx2()) {
            possible.add(KernelPath.DNNL_F32);
        }
        if (oursGemmRuns()) {
            possible.add(KernelPath.NATIVE_GEMM);
        }
        if (NativeKernels.loaded()) {
            possible.add(KernelPath.NATIVE);
        }
        assertEquals(possible, ran, "the float32 GEMMs this CPU has, and the blocks decoded natively and in Java");
    }

    /** The backward's native decoding at each instruction-set level this CPU runs, forced, on every type and shape. */
    @Test
    void backwardDecodingAtEveryNativeLevelMatchesFloat64() {
        if (!NativeKernels.loaded()) {
            assertEquals(KernelPath.PORTABLE, Dispatcher.detect().decoder(), "Java decodes without the library");
            return;
        }
        Random random = new Random(13);
        for (Dispatcher dispatcher : nativeLevels()) {
            for (DType type : List.of(DType.BF16, DType.F16, DType.I8)) {
                for (int[] shape : BACKWARD_SHAPES) {
                    for (boolean accumulate : new boolean[] {false, true}) {
                        assertEquals(KernelPath.NATIVE, checkBackward(dispatcher, type, shape, accumulate, random),
                                dispatcher.isa() + " " + type);
                    }
                }
            }
        }
    }

    /** Our kernels forced, at each instruction-set level this CPU runs. */
    private static List<Dispatcher> nativeLevels() {
        List<Dispatcher> levels = new ArrayList<>();
        Isa highest = Dispatcher.detect().isa();
        for (Isa isa : Isa.values()) {
            if (isa.compareTo(highest) <= 0) {
                levels.add(new Dispatcher(CpuFeatures.detect(), "native", isa.name(), NativeKernels.hardwareIsa()));
                assertEquals(isa, levels.get(levels.size() - 1).isa());
            }
        }
        return levels;
    }

    private static int[][] backwardShapes() {
        int[][] shapes = Arrays.copyOf(SHAPES, SHAPES.length + NATIVE_SHAPES.length + 1);
        System.arraycopy(NATIVE_SHAPES, 0, shapes, SHAPES.length, NATIVE_SHAPES.length);
        shapes[shapes.length - 1] = new int[] {2, 4097, 256, 64};
        return shapes;
    }

    /** Every family that can be forced here; {@code gemm} only where our GEMM runs (AVX-512 at the level in force). */
    private static List<Dispatcher> forcedDispatchers() {
        List<Dispatcher> dispatchers = new ArrayList<>();
        for (String forced : FORCED) {
            if (!forced.equals("gemm") || oursGemmRuns()) {
                dispatchers.add(new Dispatcher(CpuFeatures.detect(), forced));
            }
        }
        return dispatchers;
    }

    /**
     * The bfloat16 GEMMs, ours on AMX (forced to any size) and oneDNN's, where each runs, on every m up to 40 and the
     * ViT's 257, n and k odd, k not a multiple of 2 or of a tile row (32), deeper than one pass (2048) of ours.
     */
    @Test
    void bf16GemmsOnEdgeShapesMatchFloat64OverRoundedX() {
        CpuFeatures cpu = CpuFeatures.detect();
        List<Dispatcher> dispatchers = new ArrayList<>();
        if (amxRuns()) {
            dispatchers.add(new Dispatcher(cpu, "gemm"));
        } else {
            assertTrue(Dispatcher.detect().choose(DType.BF16, 257) != KernelPath.NATIVE_BF16_GEMM, "no AMX here");
        }
        if (cpu.avx2() && cpu.bf16()) {
            dispatchers.add(new Dispatcher(cpu, "dnnl"));
        }
        List<int[]> shapes = new ArrayList<>();
        for (int m = 1; m <= 40; m++) {
            shapes.add(new int[] {m, 2 * m + 3, 3 * m + 2, 0});
        }
        shapes.addAll(List.of(new int[] {257, 70, 129, 0}, new int[] {257, 33, 31, 0}, new int[] {33, 65, 1, 0},
                new int[] {31, 17, 2081, 0}, new int[] {16, 32, 4096, 0}, new int[] {9, 100, 33, 0}));
        Random random = new Random(14);
        for (Dispatcher dispatcher : dispatchers) {
            KernelPath expected = dispatcher.choose(DType.BF16, 257);
            for (int[] shape : shapes) {
                for (int variant = 0; variant < 4; variant++) {
                    assertEquals(expected, check(dispatcher, DType.BF16, shape, variant % 2 == 1, variant >= 2, random));
                }
            }
        }
    }

    /** Whether this process's CPU (as the flags present it) runs our bfloat16 GEMM: the native library at AMX_BF16. */
    private static boolean amxRuns() {
        return NativeKernels.loaded() && Dispatcher.detect().isa() == Isa.AMX_BF16;
    }

    /** Whether this process's CPU (as the flags present it) runs our float32 GEMM: the native library at AVX-512. */
    private static boolean oursGemmRuns() {
        return NativeKernels.loaded() && Dispatcher.detect().isa().compareTo(Isa.AVX512) >= 0;
    }

    /**
     * Our float32 GEMM on its edge shapes (1, odd, not a multiple of the micro-kernel's 14 x 32 tile or of 16
     * lanes, deeper than a packed block of 512 or taller than one of 420 rows, enough work for two threads split
     * either way: by panels of columns, or by rows where the columns are few),
     * every transpose, alpha and beta, strided operands; with beta 0 it must not read C (NaN there). Where it
     * cannot run (no AVX-512 at the level in force: the AVX2 surefire execution), nothing takes it.
     */
    @Test
    void oursGemmMatchesFloat64OnEdgeShapes() {
        Dispatcher auto = Dispatcher.detect();
        if (!oursGemmRuns()) {
            for (int rows : new int[] {1, 5, 40, 257}) {
                assertTrue(auto.choose(DType.F32, rows) != KernelPath.NATIVE_GEMM, "no AVX-512: not ours");
                assertTrue(auto.gemm(rows) != KernelPath.NATIVE_GEMM, "no AVX-512: not ours");
            }
            assertMessage(() -> new Dispatcher(CpuFeatures.detect(), "gemm"), "blip2.compute.path=gemm", "AVX-512");
            return;
        }
        assertEquals(KernelPath.NATIVE_GEMM, auto.choose(DType.F32, 40));
        Dispatcher gemm = new Dispatcher(CpuFeatures.detect(), "gemm");
        assertEquals(KernelPath.NATIVE_GEMM, gemm.gemm(1));
        Random random = new Random(14);
        int[][] shapes = {{1, 1, 1}, {2, 3, 1}, {5, 33, 257}, {14, 32, 256}, {15, 31, 600}, {29, 65, 17},
            {3, 1, 513}, {33, 100, 1}, {60, 200, 300}, {850, 40, 70}, {900, 300, 40}, {13, 47, 16},
            // the Q-Former's attention (32 queries, B read in place up to 64 rows), the ViT's 257 rows in tiles of
            // 14 and 13, the first rows past in-place B
            {32, 64, 257}, {32, 257, 64}, {64, 45, 530}, {65, 33, 20}, {257, 88, 61}, {257, 70, 600}};
        List<int[]> every = new ArrayList<>(Arrays.asList(shapes));
        for (int m = 1; m <= 40; m++) { // each height of the tiles, their splits into near-equal ones
            every.add(new int[] {m, 37 + m % 3, 19 + 2 * m});
        }
        for (int[] shape : every) {
            for (int transposes = 0; transposes < 4; transposes++) {
                for (float[] alphaBeta : new float[][] {{1, 0}, {1, 1}, {0.75f, 0.5f}}) {
                    sgemmMatches(gemm, transposes >= 2, transposes % 2 == 1, shape[0], shape[1], shape[2],
                            alphaBeta[0], alphaBeta[1], true, random);
                }
            }
        }
    }

    /**
     * The library's threads serve one caller at a time and a caller that finds them busy runs alone (pool.c): the
     * results must be those of a caller on its own, bit for bit, on every multi-threaded kernel, whatever the
     * interleaving.
     */
    @Test
    void concurrentCallersGetTheResultsOfALoneCaller() throws Exception {
        Random random = new Random(21);
        record Case(FloatMatrix x, StoredTensor w, FloatBuffer bias, int n) {
        }
        List<Case> cases = new ArrayList<>();
        int[][] shapes = {{1, 700, 300}, {40, 300, 200}, {257, 130, 90}, {12, 500, 64}};
        for (DType type : TYPES) {
            for (int[] shape : shapes) {
                int m = shape[0];
                int n = shape[1];
                int k = shape[2];
                FloatBuffer bias = ByteBuffer.allocateDirect(n * 4).order(ByteOrder.nativeOrder()).asFloatBuffer()
                        .put(gaussian(n, random)).flip();
                cases.add(new Case(matrix(gaussian(m * k, random), m, k, k), weight(type, new double[n][k], 0,
                        random), bias, n));
            }
        }
        List<float[]> alone = new ArrayList<>();
        for (Case c : cases) {
            alone.add(run(c.x(), c.w(), c.bias(), c.n()));
        }
        int callers = 4;
        List<Thread> threads = new ArrayList<>();
        List<String> mismatches = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int caller = 0; caller < callers; caller++) {
            Thread thread = new Thread(() -> {
                for (int round = 0; round < 10; round++) {
                    for (int i = 0; i < cases.size(); i++) {
                        Case c = cases.get(i);
                        if (!Arrays.equals(alone.get(i), run(c.x(), c.w(), c.bias(), c.n()))) {
                            mismatches.add(c.w().dtype() + " " + c.x().rows() + " x " + c.n());
                        }
                    }
                }
            });
            threads.add(thread);
            thread.start();
        }
        for (Thread thread : threads) {
            thread.join();
        }
        assertTrue(mismatches.isEmpty(), "concurrent results differ: " + mismatches);
    }

    private static float[] run(FloatMatrix x, StoredTensor w, FloatBuffer bias, int n) {
        try (FloatPointer y = new FloatPointer((long) x.rows() * n)) {
            Products.linear(x, w, bias.duplicate(), new FloatMatrix(y, x.rows(), n, n), false);
            float[] out = new float[x.rows() * n];
            y.get(out);
            return out;
        }
    }

    @Test
    void badBackwardInputIsRefusedWithItsName() {
        FloatMatrix dy = matrix(new float[2], 1, 2, 2);
        FloatMatrix dx = matrix(new float[5], 1, 5, 5);
        assertMessage(() -> Products.linearBackward(dy, new StoredTensor("w.back", DType.BF16, new long[] {2, 4},
                direct(16), null, 0), 1f, dx, false), "w.back", "shapes do not match");
        assertMessage(() -> Products.linearBackward(dy, new StoredTensor("w.unscaled", DType.I8, new long[] {2, 5},
                direct(10), null, 0), 1f, dx, false), "w.unscaled", "got none");
    }

    /** Each instruction-set level the native kernels can run here, forced, on every type and edge shape. */
    @Test
    void nativeKernelsAtEveryLevelMatchFloat64() {
        if (!NativeKernels.loaded()) {
            assertMessage(() -> new Dispatcher(CpuFeatures.detect(), "native"), "no native kernels here");
            assertEquals(KernelPath.PORTABLE, Dispatcher.detect().choose(DType.F16, 1), "the fallback");
            return;
        }
        Random random = new Random(12);
        for (Dispatcher dispatcher : nativeLevels()) {
            for (DType type : TYPES) {
                for (int[][] shapes : new int[][][] {SHAPES, NATIVE_SHAPES}) {
                    for (int[] shape : shapes) {
                        for (int variant = 0; variant < 4; variant++) {
                            assertEquals(KernelPath.NATIVE, check(dispatcher, type, shape, variant % 2 == 1,
                                    variant >= 2, random), dispatcher.isa() + " " + type);
                        }
                    }
                }
            }
        }
    }

    /**
     * The runtime's float32 linear layers come through {@code sgemm} (x W^T, W a possibly wider array's rows): at
     * every native level, and the calls ours do not take (other alpha, beta or transposes) still right elsewhere.
     */
    @Test
    void sgemmTakesTheNativeKernelsForLinearLayers() {
        Random random = new Random(13);
        List<Dispatcher> dispatchers = new ArrayList<>(List.of(Dispatcher.detect()));
        for (Isa isa : Isa.values()) {
            if (NativeKernels.loaded() && isa.compareTo(Dispatcher.detect().isa()) <= 0) {
                dispatchers.add(new Dispatcher(CpuFeatures.detect(), "native", isa.name(), NativeKernels.hardwareIsa()));
            }
        }
        for (Dispatcher dispatcher : dispatchers) {
            for (int[] shape : new int[][] {{1, 1, 1}, {1, 7, 33}, {1, 261, 300}, {3, 5, 17}, {2, 70, 1030}}) {
                for (float[] alphaBeta : new float[][] {{1, 0}, {1, 1}, {2, 0.5f}}) {
                    sgemmMatches(dispatcher, false, true, shape[0], shape[1], shape[2], alphaBeta[0], alphaBeta[1],
                            false, random);
                }
            }
        }
    }

    /**
     * {@code c = alpha op(a) op(b) + beta c} against float64 sums, each operand some columns of a wider array;
     * {@code nanWhereIgnored}: C holds NaN where beta is 0, which the kernels must not read.
     */
    private static void sgemmMatches(Dispatcher dispatcher, boolean transA, boolean transB, int m, int n, int k,
                                     float alpha, float beta, boolean nanWhereIgnored, Random random) {
        long lda = (transA ? m : k) + 2;
        long ldb = (transB ? k : n) + 3; // W when transB: some columns of a wider array
        long ldc = n + 1;
        float[] a = gaussian((int) ((transA ? k : m) * lda), random);
        float[] b = gaussian((int) ((transB ? n : k) * ldb), random);
        float[] c = gaussian((int) (m * ldc), random);
        if (nanWhereIgnored && beta == 0) {
            for (int i = 0; i < m; i++) {
                Arrays.fill(c, (int) (i * ldc), (int) (i * ldc + n), Float.NaN);
            }
        }
        float[] before = c.clone();
        FloatPointer out = new FloatPointer(c);
        Products.sgemm(dispatcher, transA, transB, m, n, k, alpha, new FloatPointer(a), lda, new FloatPointer(b), ldb,
                beta, out, ldc);
        out.get(c);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < (int) ldc; j++) {
                int at = (int) (i * ldc + j);
                if (j >= n) {
                    assertEquals(before[at], c[at], "wrote outside the view");
                    continue;
                }
                double exact = beta == 0 ? 0 : beta * before[at];
                double magnitude = Math.abs(exact);
                for (int t = 0; t < k; t++) {
                    double term = alpha * (double) a[(int) (transA ? t * lda + i : i * lda + t)]
                            * b[(int) (transB ? j * ldb + t : t * ldb + j)];
                    exact += term;
                    magnitude += Math.abs(term);
                }
                assertEquals(exact, c[at], 1e-5 * magnitude + 1e-6, dispatcher.isa() + " " + dispatcher.gemm(m)
                        + " trans " + transA + "/" + transB + " " + m + "x" + n + "x" + k + " alpha " + alpha
                        + " beta " + beta + " at [" + i + ", " + j + "]");
            }
        }
    }

    /** Where gcc is, the build made the library and it loads: a C error or a bad load fails here, not silently. */
    @Test
    void theBuildMadeTheNativeKernelsWhereGccIs() {
        boolean gcc = System.getProperty("os.name").equals("Linux") && System.getProperty("os.arch").equals("amd64")
                && Arrays.stream(System.getenv("PATH").split(File.pathSeparator))
                        .anyMatch(dir -> Files.isExecutable(Path.of(dir, "gcc")));
        assertEquals(gcc, NativeKernels.loaded(), "gcc here: " + gcc + "; " + NativeKernels.problem());
        if (!gcc) {
            return;
        }
        Isa flags = Isa.of(CpuFeatures.detect());
        Isa expected = flags.compareTo(NativeKernels.hardwareIsa()) < 0 ? flags : NativeKernels.hardwareIsa();
        assertEquals(expected, Dispatcher.detect().isa(), "the highest level both the flags and cpuid allow");
    }

    @Test
    void nativeLevelsAreForcedNoHigherThanTheCpu() {
        CpuFeatures avx2 = CpuFeatures.parse("sse4_2 avx avx2 fma f16c");
        assertEquals(Isa.AVX2, new Dispatcher(avx2, "auto", null, Isa.AVX512).isa(), "the flags cap the level");
        assertEquals(Isa.SCALAR, new Dispatcher(avx2, "native", "Scalar", Isa.AVX512).isa());
        assertEquals(Isa.AVX2, new Dispatcher(CpuFeatures.parse("avx2 fma f16c avx512f avx512bw avx512vl"), "auto",
                null, Isa.AVX2).isa(), "and so does the library's cpuid test");
        assertEquals(Isa.SCALAR, new Dispatcher(CpuFeatures.parse("avx2 fma"), "auto", null, Isa.AVX512).isa(),
                "no F16C: no AVX2 level");
        assertMessage(() -> new Dispatcher(avx2, "native", "avx512", Isa.AVX512), "blip2.compute.isa=avx512",
                "avx2 at most");
        assertMessage(() -> new Dispatcher(avx2, "native", "sse9", Isa.AVX512), "blip2.compute.isa=sse9",
                "scalar, avx2, avx512, avx512_vnni or amx_bf16");
        assertMessage(() -> new Dispatcher(avx2, "native", null, null), "blip2.compute.path=native",
                "no native kernels");
        assertMessage(() -> new Dispatcher(avx2, "fast", null, Isa.AVX512), "blip2.compute.path=fast", "native or gemm");
    }

    /** With AMX: bfloat16 products of more rows on our AMX GEMM, unless a lower level or another family is forced. */
    @Test
    void dispatcherTakesTheAmxGemmForBf16Rows() {
        CpuFeatures amx = CpuFeatures.parse("avx avx2 fma f16c avx512f avx512bw avx512vl avx512_bf16 avx512_vnni"
                + " amx_tile amx_bf16 amx_int8");
        Dispatcher auto = new Dispatcher(amx, "auto", null, Isa.AMX_BF16);
        assertEquals(Isa.AMX_BF16, auto.isa());
        assertEquals(KernelPath.NATIVE, auto.choose(DType.BF16, 1), "one row: streamed by the one-row kernels");
        assertEquals(KernelPath.NATIVE, auto.choose(DType.BF16, 8));
        assertEquals(KernelPath.NATIVE_BF16_GEMM, auto.choose(DType.BF16, 9));
        assertEquals(KernelPath.NATIVE_BF16_GEMM, auto.choose(DType.BF16, 257));
        assertEquals(KernelPath.DNNL_I8, auto.choose(DType.I8, 257), "int8 is not on the tiles");
        assertEquals(KernelPath.NATIVE_BF16_GEMM, new Dispatcher(amx, "gemm", null, Isa.AMX_BF16).choose(DType.BF16, 1),
                "forced to our GEMMs, at any size");
        assertEquals(KernelPath.NATIVE, new Dispatcher(amx, "native", null, Isa.AMX_BF16).choose(DType.BF16, 257),
                "forced to the one-row kernels");
        assertEquals(KernelPath.DNNL_BF16, new Dispatcher(amx, "dnnl", null, Isa.AMX_BF16).choose(DType.BF16, 257));
        assertEquals(KernelPath.DNNL_BF16, new Dispatcher(amx, "auto", "avx512_vnni", Isa.AMX_BF16).choose(DType.BF16, 257),
                "a lower level forced");
        assertEquals(KernelPath.DNNL_BF16, new Dispatcher(amx, "auto", null, Isa.AVX512_VNNI).choose(DType.BF16, 257),
                "the library found no AMX, or the kernel refused the tiles");
        assertEquals(Isa.AVX512_VNNI, new Dispatcher(CpuFeatures.parse("avx avx2 fma f16c avx512f avx512bw avx512vl"
                + " avx512_vnni amx_tile amx_bf16"), "auto", null, Isa.AMX_BF16).isa(), "no AVX512_BF16 to round x");
    }

    /** Where the native library did not load, the choices of the other kernels. */
    @Test
    void dispatcherKeysOnFeatures() {
        Dispatcher avx2 = new Dispatcher(CpuFeatures.parse("sse4_2 avx avx2 fma"), "auto", null, null);
        assertEquals(KernelPath.OPENBLAS_F32, avx2.choose(DType.F32, 1));
        assertEquals(KernelPath.DNNL_F32, avx2.choose(DType.F32, 40));
        assertEquals(KernelPath.PORTABLE, avx2.choose(DType.I8, 1), "oneDNN's int8 GEMM saturates without VNNI");
        assertEquals(KernelPath.PORTABLE, avx2.choose(DType.BF16, 40), "no bf16 dot products in hardware");
        Dispatcher bf16 = new Dispatcher(CpuFeatures.parse("avx2 fma avx512f avx512_bf16 avx512_vnni"), null, null, null);
        assertEquals(KernelPath.DNNL_BF16, bf16.choose(DType.BF16, 1));
        assertEquals(KernelPath.DNNL_I8, bf16.choose(DType.I8, 1));
        Dispatcher old = new Dispatcher(CpuFeatures.parse("sse2 sse4_2"), "auto", null, null);
        assertEquals(KernelPath.OPENBLAS_F32, old.choose(DType.F32, 40), "OpenBLAS runs anywhere");
        assertEquals(KernelPath.PORTABLE, old.choose(DType.I8, 40));
        assertEquals(KernelPath.PORTABLE, old.choose(DType.F16, 1));
        assertThrows(IllegalArgumentException.class, () -> avx2.choose(DType.I32, 1));
        assertThrows(IllegalArgumentException.class, () -> new Dispatcher(CpuFeatures.parse("avx2"), "fast"));
    }

    /** With the native library: ours for one row and a few, our GEMM for more float32 rows (the measured crossovers). */
    @Test
    void dispatcherTakesTheNativeKernelsWhereMeasuredFastest() {
        Dispatcher full = new Dispatcher(CpuFeatures.parse(
                "avx avx2 fma f16c avx512f avx512bw avx512vl avx512_bf16 avx512_vnni"), "auto", null, Isa.AVX512_VNNI);
        assertEquals(Isa.AVX512_VNNI, full.isa());
        assertEquals(KernelPath.NATIVE, full.choose(DType.F32, 1));
        assertEquals(KernelPath.NATIVE, full.choose(DType.F32, 4));
        assertEquals(KernelPath.NATIVE_GEMM, full.choose(DType.F32, 5), "five rows: our GEMM's");
        assertEquals(KernelPath.NATIVE_GEMM, full.gemm(40), "the attention's products too");
        assertEquals(KernelPath.NATIVE_GEMM, full.choose(DType.F32, 257), "the ViT's 257 rows: ours too");
        assertEquals(KernelPath.NATIVE_GEMM, full.gemm(257), "the ViT's attention: ours too");
        assertEquals(KernelPath.OPENBLAS_F32, full.gemm(1), "one row of another shape: OpenBLAS's GEMV");
        assertEquals(KernelPath.NATIVE_GEMM, new Dispatcher(CpuFeatures.parse("avx avx2 fma f16c avx512f avx512bw avx512vl"), "gemm", null, Isa.AVX512).choose(DType.F32, 1),
                "forced to our GEMM, at any size");
        assertEquals(KernelPath.DNNL_F32, new Dispatcher(CpuFeatures.parse("avx avx2 fma f16c avx512f avx512bw avx512vl"), "dnnl", null, Isa.AVX512).choose(DType.F32, 40));
        assertEquals(KernelPath.DNNL_F32, new Dispatcher(CpuFeatures.parse("avx avx2 fma f16c avx512f avx512bw avx512vl"), "auto", "avx2", Isa.AVX512).choose(DType.F32, 40),
                "our GEMM is AVX-512 only");
        assertEquals(KernelPath.NATIVE, full.choose(DType.BF16, 8));
        assertTrue(full.choose(DType.BF16, 9) != KernelPath.NATIVE);
        assertEquals(KernelPath.NATIVE, full.choose(DType.I8, 8));
        assertTrue(full.choose(DType.I8, 9) != KernelPath.NATIVE);
        assertEquals(KernelPath.NATIVE, full.choose(DType.F16, 257), "nothing else reads float16 in hardware");
        Dispatcher avx2 = new Dispatcher(CpuFeatures.parse("sse4_2 avx avx2 fma f16c"), "auto", null, Isa.AVX512);
        assertEquals(Isa.AVX2, avx2.isa());
        assertEquals(KernelPath.DNNL_F32, avx2.choose(DType.F32, 257), "no AVX-512: oneDNN's GEMM");
        assertMessage(() -> new Dispatcher(CpuFeatures.parse("sse4_2 avx avx2 fma f16c"), "gemm", null, Isa.AVX512), "blip2.compute.path=gemm",
                "needs AVX-512");
        assertEquals(KernelPath.NATIVE, avx2.choose(DType.BF16, 257), "no bf16 dot products: ours at any size");
        assertEquals(KernelPath.NATIVE, avx2.choose(DType.I8, 257), "no VNNI: ours at any size");
        assertEquals(KernelPath.DNNL_F32, new Dispatcher(CpuFeatures.parse("avx2 fma f16c"), "dnnl", null, Isa.AVX2)
                .choose(DType.F32, 1), "forced to oneDNN");
        Dispatcher openblas = new Dispatcher(CpuFeatures.parse("avx2 fma f16c"), "openblas", null, Isa.AVX2);
        assertEquals(KernelPath.OPENBLAS_F32, openblas.choose(DType.F32, 1));
        assertEquals(KernelPath.PORTABLE, openblas.choose(DType.I8, 1));
        assertEquals(KernelPath.NATIVE, new Dispatcher(CpuFeatures.parse("sse2"), "native", null, Isa.SCALAR)
                .choose(DType.F32, 300), "forced to ours, at any size");
    }

    /** Run under {@code DNNL_MAX_CPU_ISA} (the surefire execution "avx2" sets it): oneDNN took the cap. */
    @Test
    void oneDnnRunsTheInstructionSetItWasCappedAt() {
        String cap = System.getenv("DNNL_MAX_CPU_ISA");
        if (cap != null && CpuFeatures.detect().avx2()) {
            new Dispatcher(CpuFeatures.detect(), "dnnl");
            assertEquals(cap.equalsIgnoreCase("AVX2") ? dnnl.dnnl_cpu_isa_avx2 : -1, dnnl.dnnl_get_effective_cpu_isa());
        }
    }

    @Test
    void badInputIsRefusedWithItsName() {
        FloatMatrix x = matrix(new float[4], 1, 4, 4);
        FloatMatrix y = matrix(new float[2], 1, 2, 2);
        StoredTensor ints = new StoredTensor("w.int32", DType.I32, new long[] {2, 4}, direct(32), null, 0);
        assertMessage(() -> Products.linear(x, ints, null, y, false), "w.int32", "I32");
        ByteBuffer q = direct(8);
        assertMessage(() -> Products.linear(x, new StoredTensor("w.rows", DType.I8, new long[] {2, 4}, q,
                FloatBuffer.allocate(3), 0), null, y, false), "w.rows", "needs 2 scales, got 3");
        assertMessage(() -> Products.linear(x, new StoredTensor("w.blocks", DType.I8, new long[] {2, 4}, q,
                FloatBuffer.allocate(2), 2), null, y, false), "w.blocks", "needs 4 scales, got 2");
        assertMessage(() -> Products.linear(x, new StoredTensor("w.block3", DType.I8, new long[] {2, 4}, q,
                FloatBuffer.allocate(2), 3), null, y, false), "w.block3", "does not divide");
        assertMessage(() -> Products.linear(x, new StoredTensor("w.none", DType.I8, new long[] {2, 4}, q,
                null, 0), null, y, false), "w.none", "got none");
        assertMessage(() -> Products.linear(x, new StoredTensor("w.short", DType.F32, new long[] {2, 4}, direct(31),
                null, 0), null, y, false), "w.short", "expected 32 bytes");
        assertMessage(() -> Products.linear(x, new StoredTensor("w.heap", DType.F32, new long[] {2, 4},
                ByteBuffer.allocate(32), null, 0), null, y, false), "w.heap", "on the heap");
        ByteBuffer misaligned = direct(33).position(1);
        assertMessage(() -> Products.linear(x, new StoredTensor("w.odd", DType.F32, new long[] {2, 4}, misaligned,
                null, 0), null, y, false), "w.odd", "not aligned");
        assertMessage(() -> Products.linear(x, new StoredTensor("w.scaled", DType.BF16, new long[] {2, 4}, direct(16),
                FloatBuffer.allocate(2), 0), null, y, false), "w.scaled", "no scale table");
        assertMessage(() -> Products.linear(x, new StoredTensor("w.wide", DType.F32, new long[] {2, 5}, direct(40),
                null, 0), null, y, false), "w.wide", "shapes do not match");
        assertMessage(() -> Products.linear(x, new StoredTensor("w.bias", DType.F32, new long[] {2, 4}, direct(32),
                null, 0), FloatBuffer.allocate(3), y, false), "w.bias", "bias of 2");
    }

    private static KernelPath check(Dispatcher dispatcher, DType type, int[] shape, boolean biased, boolean accumulate,
                                    Random random) {
        int m = shape[0];
        int n = shape[1];
        int k = shape[2];
        int block = shape[3];
        long xStride = k + (m > 1 ? 3 : 0);
        long yStride = n + (m > 1 ? 5 : 0);
        float[] xs = new float[(int) ((m - 1) * xStride + k)];
        for (int i = 0; i < xs.length; i++) {
            xs[i] = (float) random.nextGaussian();
        }
        float[] ys = new float[(int) ((m - 1) * yStride + n)];
        for (int i = 0; i < ys.length; i++) {
            ys[i] = (float) random.nextGaussian();
        }
        float[] before = ys.clone();
        double[][] w = new double[n][k];
        StoredTensor weight = weight(type, w, block, random);
        FloatBuffer bias = null;
        if (biased) {
            bias = FloatBuffer.allocate(n);
            for (int j = 0; j < n; j++) {
                bias.put(j, (float) random.nextGaussian());
            }
        }
        FloatMatrix x = matrix(xs, m, k, xStride);
        FloatMatrix y = matrix(ys, m, n, yStride);
        KernelPath path = Products.linear(dispatcher, x, weight, bias, y, accumulate);
        y.data().get(ys);
        int blockSize = block == 0 || type != DType.I8 ? k : block;
        String where = type + " " + path + " " + m + "x" + n + "x" + k + " block " + block + " bias " + biased
                + " accumulate " + accumulate;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double exact = (accumulate ? before[(int) (i * yStride + j)] : 0) + (biased ? bias.get(j) : 0);
                double magnitude = Math.abs(exact);
                double quantization = 0;
                boolean rounded = path == KernelPath.DNNL_BF16 || path == KernelPath.NATIVE_BF16_GEMM;
                for (int c = 0; c < k; c++) {
                    float xf = xs[(int) (i * xStride + c)];
                    double xv = rounded ? Float.intBitsToFloat(FloatConversion.floatToBfloat16(xf) << 16) : xf;
                    exact += xv * w[j][c];
                    magnitude += Math.abs(xv * w[j][c]);
                }
                if (path == KernelPath.DNNL_I8 || path == KernelPath.NATIVE && type == DType.I8
                        && dispatcher.isa().compareTo(Isa.AVX512_VNNI) >= 0) {
                    for (int b = 0; b < k / blockSize; b++) {
                        double max = 0;
                        double weights = 0;
                        for (int c = b * blockSize; c < (b + 1) * blockSize; c++) {
                            max = Math.max(max, Math.abs(xs[(int) (i * xStride + c)]));
                            weights += Math.abs(w[j][c]);
                        }
                        quantization += weights * max / 254;
                    }
                }
                double bound = 1e-5 * magnitude + 1e-6 + quantization * 1.001;
                double got = ys[(int) (i * yStride + j)];
                assertTrue(Math.abs(got - exact) <= bound, where + " at [" + i + ", " + j + "]: " + got + " vs " + exact
                        + " (bound " + bound + ")");
            }
        }
        for (int i = 0; i < m - 1; i++) {
            for (long j = n; j < yStride; j++) {
                assertEquals(before[(int) (i * yStride + j)], ys[(int) (i * yStride + j)], where + ": wrote outside the view");
            }
        }
        return path;
    }

    private static KernelPath checkBackward(Dispatcher dispatcher, DType type, int[] shape, boolean accumulate,
                                            Random random) {
        int m = shape[0];
        int n = shape[1];
        int k = shape[2];
        long dyStride = n + (m > 1 ? 3 : 0);
        long dxStride = k + (m > 1 ? 5 : 0);
        float[] dys = gaussian((int) ((m - 1) * dyStride + n), random);
        float[] dxs = gaussian((int) ((m - 1) * dxStride + k), random);
        float[] before = dxs.clone();
        float alpha = (float) (0.25 + random.nextDouble());
        double[][] w = new double[n][k];
        StoredTensor weight = weight(type, w, shape[3], random);
        FloatMatrix dx = matrix(dxs, m, k, dxStride);
        KernelPath path = Products.linearBackward(dispatcher, matrix(dys, m, n, dyStride), weight, alpha, dx, accumulate);
        dx.data().get(dxs);
        String where = "backward " + type + " " + path + " " + m + "x" + n + "x" + k + " accumulate " + accumulate;
        for (int i = 0; i < m; i++) {
            for (int c = 0; c < k; c++) {
                double exact = accumulate ? before[(int) (i * dxStride + c)] : 0;
                double magnitude = Math.abs(exact);
                for (int j = 0; j < n; j++) {
                    double term = alpha * dys[(int) (i * dyStride + j)] * w[j][c];
                    exact += term;
                    magnitude += Math.abs(term);
                }
                double got = dxs[(int) (i * dxStride + c)];
                double bound = 1e-5 * magnitude + 1e-6;
                assertTrue(Math.abs(got - exact) <= bound, where + " at [" + i + ", " + c + "]: " + got + " vs "
                        + exact + " (bound " + bound + ")");
            }
        }
        for (int i = 0; i < m - 1; i++) {
            for (long c = k; c < dxStride; c++) {
                assertEquals(before[(int) (i * dxStride + c)], dxs[(int) (i * dxStride + c)], where + ": wrote outside the view");
            }
        }
        return path;
    }

    private static float[] gaussian(int length, Random random) {
        float[] values = new float[length];
        for (int i = 0; i < length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }

    /** A random weight stored as {@code type}; {@code w} receives the values it stands for. */
    private static StoredTensor weight(DType type, double[][] w, int block, Random random) {
        int n = w.length;
        int k = w[0].length;
        ByteBuffer data = direct((long) n * k * type.size());
        FloatBuffer scales = null;
        int blocks = block == 0 ? 1 : k / block;
        int span = k / blocks;
        if (type == DType.I8) {
            scales = ByteBuffer.allocateDirect(n * blocks * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
            for (int j = 0; j < n; j++) {
                for (int b = 0; b < blocks; b++) {
                    float scale = (float) (0.001 + random.nextDouble() * 0.02);
                    scales.put(j * blocks + b, scale);
                    for (int c = b * span; c < (b + 1) * span; c++) {
                        byte q = (byte) (random.nextInt(255) - 127);
                        data.put(j * k + c, q);
                        w[j][c] = (double) q * scale;
                    }
                }
            }
        }
        for (int j = 0; j < n && type != DType.I8; j++) {
            for (int c = 0; c < k; c++) {
                float value = (float) random.nextGaussian();
                int at = (j * k + c) * type.size();
                switch (type) {
                    case F32 -> data.putFloat(at, value);
                    case BF16 -> data.putShort(at, FloatConversion.floatToBfloat16(value));
                    case F16 -> data.putShort(at, FloatConversion.floatToHalf(value));
                    default -> throw new AssertionError(type);
                }
                w[j][c] = switch (type) {
                    case F32 -> value;
                    case BF16 -> Float.intBitsToFloat((data.getShort(at) & 0xffff) << 16);
                    default -> FloatConversion.halfToFloat(data.getShort(at));
                };
            }
        }
        return new StoredTensor("w", type, new long[] {n, k}, data, scales, type == DType.I8 ? block : 0);
    }

    private static ByteBuffer direct(long bytes) {
        return ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static FloatMatrix matrix(float[] values, int rows, int cols, long rowStride) {
        return new FloatMatrix(new FloatPointer(values), rows, cols, rowStride);
    }

    private static void assertMessage(Runnable call, String... parts) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "'" + e.getMessage() + "' should say " + part);
        }
    }
}
