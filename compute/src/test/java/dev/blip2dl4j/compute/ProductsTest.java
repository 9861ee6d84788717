package dev.blip2dl4j.compute;

import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.tensor.StoredTensor;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.javacpp.FloatPointer;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
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
 * bias and accumulation. Each path's bound is what its arithmetic allows: float32 rounding, x rounded to bfloat16
 * (half an ulp of 8 bits), x quantized to int8 per block (half a step of amax / 127).
 */
class ProductsTest {
    /** m, n, k, int8 block (0: one scale per row). */
    private static final int[][] SHAPES = {
        {1, 1, 1, 0}, {1, 7, 1, 1}, {2, 3, 1, 0}, {3, 5, 33, 11}, {1, 37, 64, 32}, {5, 17, 96, 0}, {17, 33, 130, 13},
        {1, 300, 257, 0}, {40, 100, 256, 32}, {64, 48, 160, 16},
    };
    private static final List<String> FORCED = List.of("auto", "portable", "openblas", "dnnl");
    private static final List<DType> TYPES = List.of(DType.F32, DType.BF16, DType.F16, DType.I8);

    @Test
    void everyProductOnEveryPathMatchesFloat64() {
        Set<KernelPath> ran = EnumSet.noneOf(KernelPath.class);
        Random random = new Random(11);
        for (String forced : FORCED) {
            Dispatcher dispatcher = new Dispatcher(CpuFeatures.detect(), forced);
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
        assertEquals(possible, ran, "the paths this CPU can take, each run");
    }

    /**
     * The backward to the input, {@code dx = alpha dy W (+ dx)}, for every type on every path, on the same edge shapes
     * and on one taller than a decoded block (4096 rows of 256 columns), so that the blocks' sums meet; float32
     * rounding is the bound, since the weight is decoded exactly.
     */
    @Test
    void everyBackwardOnEveryPathMatchesFloat64() {
        Set<KernelPath> ran = EnumSet.noneOf(KernelPath.class);
        Random random = new Random(12);
        int[][] shapes = Arrays.copyOf(SHAPES, SHAPES.length + 1);
        shapes[SHAPES.length] = new int[] {2, 4097, 256, 64};
        for (String forced : FORCED) {
            Dispatcher dispatcher = new Dispatcher(CpuFeatures.detect(), forced);
            for (DType type : TYPES) {
                for (int[] shape : shapes) {
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
        assertEquals(possible, ran, "the float32 GEMMs this CPU has, and the decoded blocks");
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

    @Test
    void dispatcherKeysOnFeatures() {
        Dispatcher avx2 = new Dispatcher(CpuFeatures.parse("sse4_2 avx avx2 fma"), "auto");
        assertEquals(KernelPath.OPENBLAS_F32, avx2.choose(DType.F32, 1));
        assertEquals(KernelPath.DNNL_F32, avx2.choose(DType.F32, 40));
        assertEquals(KernelPath.PORTABLE, avx2.choose(DType.I8, 1), "oneDNN's int8 GEMM saturates without VNNI");
        assertEquals(KernelPath.PORTABLE, avx2.choose(DType.BF16, 40), "no bf16 dot products in hardware");
        Dispatcher bf16 = new Dispatcher(CpuFeatures.parse("avx2 fma avx512f avx512_bf16 avx512_vnni"), null);
        assertEquals(KernelPath.DNNL_BF16, bf16.choose(DType.BF16, 1));
        assertEquals(KernelPath.DNNL_I8, bf16.choose(DType.I8, 1));
        Dispatcher old = new Dispatcher(CpuFeatures.parse("sse2 sse4_2"), "auto");
        assertEquals(KernelPath.OPENBLAS_F32, old.choose(DType.F32, 40), "OpenBLAS runs anywhere");
        assertEquals(KernelPath.PORTABLE, old.choose(DType.I8, 40));
        assertEquals(KernelPath.PORTABLE, old.choose(DType.F16, 1));
        assertThrows(IllegalArgumentException.class, () -> avx2.choose(DType.I32, 1));
        assertThrows(IllegalArgumentException.class, () -> new Dispatcher(CpuFeatures.parse("avx2"), "fast"));
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
                for (int c = 0; c < k; c++) {
                    double xv = xs[(int) (i * xStride + c)];
                    exact += xv * w[j][c];
                    magnitude += Math.abs(xv * w[j][c]);
                }
                if (path == KernelPath.DNNL_I8) {
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
                double bound = 1e-5 * magnitude + 1e-6 + (path == KernelPath.DNNL_BF16 ? magnitude / 256 : 0)
                        + quantization * 1.001;
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
