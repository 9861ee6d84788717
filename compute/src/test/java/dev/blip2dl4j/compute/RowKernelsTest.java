package dev.blip2dl4j.compute;

import dev.blip2dl4j.compute.NativeKernels.Isa;
import org.bytedeco.javacpp.FloatPointer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every row kernel at every instruction-set level this CPU (or the flags the pom forces) runs, against float64
 * references, on edge widths (1, odd, not a multiple of 8 or 16), a row stride wider than the row, rows enough
 * for two threads, and the inputs that break vectorised exp and erf: zeros, the erf tails, a softmax with masked
 * (-1e9, -inf) entries. Columns past a row's width must stay untouched.
 */
class RowKernelsTest {
    /** rows, cols, row stride. */
    private static final int[][] SHAPES = {
        {1, 1, 1}, {1, 7, 9}, {3, 15, 15}, {2, 16, 17}, {5, 17, 20}, {4, 33, 33}, {1, 88, 88}, {3, 1408, 1411},
        {300, 257, 260}, {257, 300, 300},
    };
    private static final float GUARD = 12345f;

    @Test
    void forcingThePortableLoopsTurnsTheRowPassesOffToo() {
        assumeTrue(NativeKernels.loaded(), "the native library did not load here");
        assertEquals(null, new Dispatcher(CpuFeatures.detect(), "portable").rowIsa());
        assertEquals(new Dispatcher(CpuFeatures.detect(), "auto").isa(), new Dispatcher(CpuFeatures.detect(), "auto").rowIsa());
        assertTrue(new Dispatcher(CpuFeatures.detect(), "auto").rowIsa() != null);
    }

    @Test
    void layerNormMatchesFloat64() {
        Random random = new Random(3);
        for (Isa isa : levels()) {
            for (int[] shape : SHAPES) {
                for (boolean rms : new boolean[]{false, true}) {
                    int rows = shape[0], cols = shape[1];
                    long stride = shape[2];
                    float[] x = values(random, rows, cols, stride, 3f, 0.5f);
                    float[] gain = values(random, 1, cols, cols, 1f, 1f);
                    float[] shift = values(random, 1, cols, cols, 1f, 0f);
                    float eps = 1e-6f;
                    float[] out = new float[x.length];
                    java.util.Arrays.fill(out, GUARD);
                    FloatPointer xp = new FloatPointer(x), op = new FloatPointer(out);
                    if (rms) {
                        RowKernels.rmsNorm(isa, matrix(xp, shape), new FloatPointer(gain), eps, matrix(op, shape));
                    } else {
                        RowKernels.layerNorm(isa, matrix(xp, shape), new FloatPointer(gain), new FloatPointer(shift),
                                eps, matrix(op, shape));
                    }
                    op.get(out);
                    for (int r = 0; r < rows; r++) {
                        double mean = 0, squares = 0;
                        for (int c = 0; c < cols; c++) {
                            mean += rms ? 0 : x[(int) (r * stride + c)];
                        }
                        mean /= cols;
                        for (int c = 0; c < cols; c++) {
                            double d = x[(int) (r * stride + c)] - mean;
                            squares += d * d;
                        }
                        double inv = 1 / Math.sqrt(squares / cols + eps);
                        for (int c = 0; c < cols; c++) {
                            double expected = (x[(int) (r * stride + c)] - mean) * inv * gain[c] + (rms ? 0 : shift[c]);
                            close(expected, out[(int) (r * stride + c)], 2e-6, 2e-6,
                                    isa + (rms ? " rmsNorm " : " layerNorm ") + java.util.Arrays.toString(shape));
                        }
                    }
                    guarded(out, rows, cols, stride, isa + " norm");
                }
            }
        }
    }

    @Test
    void addRowMatchesFloat64() {
        Random random = new Random(5);
        for (Isa isa : levels()) {
            for (int[] shape : SHAPES) {
                int rows = shape[0], cols = shape[1];
                long stride = shape[2];
                float[] x = values(random, rows, cols, stride, 2f, 0f);
                guard(x, rows, cols, stride);
                float[] row = values(random, 1, cols, cols, 2f, 0f);
                FloatPointer xp = new FloatPointer(x);
                RowKernels.addRow(isa, matrix(xp, shape), new FloatPointer(row));
                float[] out = new float[x.length];
                xp.get(out);
                for (int r = 0; r < rows; r++) {
                    for (int c = 0; c < cols; c++) {
                        int at = (int) (r * stride + c);
                        assertEquals(x[at] + row[c], out[at], 0f, isa + " addRow");
                    }
                }
                guarded(out, rows, cols, stride, isa + " addRow");
            }
        }
    }

    @Test
    void geluMatchesBothFormsInFloat64() {
        Random random = new Random(7);
        float[] specials = {0f, -0f, 1e-30f, -1e-30f, 1e-4f, -1e-4f, 0.5f, -0.5f, 3f, -3f, 5.5f, -5.5f, 9f, -9f,
                            13.5f, -13.5f, 20f, -20f, 100f, -100f, 1e6f, -1e6f};
        for (Isa isa : levels()) {
            for (int[] shape : SHAPES) {
                for (int variant = 0; variant < 6; variant++) {
                    RowKernels.Gelu form = variant < 3 ? RowKernels.Gelu.ERF : RowKernels.Gelu.TANH;
                    boolean withBias = variant % 3 == 1;
                    boolean gated = variant % 3 == 2;
                    int rows = shape[0], cols = shape[1];
                    long stride = shape[2];
                    float[] x = values(random, rows, cols, stride, 8f, 0f);
                    for (int i = 0; i < Math.min(specials.length, rows * cols); i++) {
                        x[(int) (i / cols * stride + i % cols)] = specials[i];
                    }
                    guard(x, rows, cols, stride);
                    float[] bias = withBias ? values(random, 1, cols, cols, 0.25f, 0f) : null;
                    float[] gate = gated ? values(random, rows, cols, stride, 1f, 0f) : null;
                    float[] argument = new float[x.length];
                    java.util.Arrays.fill(argument, GUARD);
                    FloatPointer xp = new FloatPointer(x), ap = new FloatPointer(argument);
                    RowKernels.gelu(isa, form, matrix(xp, shape), bias == null ? null : new FloatPointer(bias),
                            withBias ? matrix(ap, shape) : null, gated ? matrix(new FloatPointer(gate), shape) : null);
                    float[] out = new float[x.length];
                    xp.get(out);
                    ap.get(argument);
                    String what = isa + " gelu " + form + (withBias ? " with bias" : "") + (gated ? " gated" : "");
                    for (int r = 0; r < rows; r++) {
                        for (int c = 0; c < cols; c++) {
                            int at = (int) (r * stride + c);
                            float v = bias == null ? x[at] : x[at] + bias[c];
                            double g = gated ? gate[at] : 1;
                            if (form == RowKernels.Gelu.ERF) {
                                // relative: the negative tail keeps float32's accuracy, less what rounding v / sqrt 2
                                // to float costs there (erfc's relative slope is 2z: z^2 float ulps); 1e-37: denormals
                                close(0.5 * v * Erf.erfc(-v / Math.sqrt(2)) * g, out[at], 1e-6 + 1.2e-7 * v * v,
                                        1e-37, what + "(" + v + ")");
                            } else {
                                // 0.5 v (1 + tanh u) = v / (1 + exp(-2u)): float32's u is off by a few ulps of u
                                double u = Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v);
                                close(v / (1 + Math.exp(-2 * u)) * g, out[at], 1e-6 + 1e-6 * Math.abs(u), 1e-30,
                                        what + "(" + v + ")");
                            }
                            if (withBias) {
                                assertEquals(v, argument[at], 0f, what + ": the argument");
                            }
                        }
                    }
                    guarded(out, rows, cols, stride, what);
                    if (withBias) {
                        guarded(argument, rows, cols, stride, what + ": the argument");
                    }
                }
            }
        }
    }

    @Test
    void softmaxMatchesFloat64() {
        Random random = new Random(9);
        for (Isa isa : levels()) {
            for (int[] shape : SHAPES) {
                int rows = shape[0], cols = shape[1];
                long stride = shape[2];
                float[] x = values(random, rows, cols, stride, 20f, 0f);
                for (int r = 0; r < rows; r++) { // masked keys, but never a whole row
                    for (int c = 1; c < cols; c += 3) {
                        x[(int) (r * stride + c)] = c % 2 == 0 ? -1e9f : Float.NEGATIVE_INFINITY;
                    }
                }
                guard(x, rows, cols, stride);
                FloatPointer xp = new FloatPointer(x);
                RowKernels.softmax(isa, matrix(xp, shape));
                float[] out = new float[x.length];
                xp.get(out);
                for (int r = 0; r < rows; r++) {
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int c = 0; c < cols; c++) {
                        max = Math.max(max, x[(int) (r * stride + c)]);
                    }
                    for (int c = 0; c < cols; c++) {
                        sum += Math.exp(x[(int) (r * stride + c)] - max);
                    }
                    for (int c = 0; c < cols; c++) {
                        int at = (int) (r * stride + c);
                        // float32's x - max is off by up to half an ulp of itself, exp's relative error as much
                        close(Math.exp(x[at] - max) / sum, out[at], 1e-6 + 6e-8 * Math.min(Math.abs(x[at] - max), 1e3), 1e-37,
                                isa + " softmax");
                    }
                }
                guarded(out, rows, cols, stride, isa + " softmax");
            }
        }
    }

    /** The levels the tests run at: each up to the dispatcher's, which the flags (the pom's AVX2 run) may cap. */
    private static List<Isa> levels() {
        assumeTrue(RowKernels.available(), "no native library here");
        Isa flags = Isa.of(CpuFeatures.detect());
        Isa highest = flags.compareTo(NativeKernels.hardwareIsa()) < 0 ? flags : NativeKernels.hardwareIsa();
        List<Isa> levels = new ArrayList<>();
        for (Isa isa : Isa.values()) {
            if (isa.compareTo(highest) <= 0) {
                levels.add(isa);
            }
        }
        assertEquals(highest, Products.DISPATCHER.isa(), "the row kernels run at the products' level");
        return levels;
    }

    private static FloatMatrix matrix(FloatPointer data, int[] shape) {
        return new FloatMatrix(data, shape[0], shape[1], shape[2]);
    }

    /** {@code rows} rows of {@code cols} values around {@code centre}, {@code stride} apart; the gaps hold GUARD. */
    private static float[] values(Random random, int rows, int cols, long stride, float spread, float centre) {
        float[] values = new float[(int) ((rows - 1) * stride + cols)];
        java.util.Arrays.fill(values, GUARD);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                values[(int) (r * stride + c)] = centre + spread * (float) random.nextGaussian();
            }
        }
        return values;
    }

    private static void guard(float[] values, int rows, int cols, long stride) {
        for (int r = 0; r + 1 < rows; r++) {
            for (long c = cols; c < stride; c++) {
                values[(int) (r * stride + c)] = GUARD;
            }
        }
    }

    private static void guarded(float[] values, int rows, int cols, long stride, String what) {
        for (int r = 0; r + 1 < rows; r++) {
            for (long c = cols; c < stride; c++) {
                assertEquals(GUARD, values[(int) (r * stride + c)], what + ": wrote past a row");
            }
        }
    }

    private static void close(double expected, float actual, double relative, double absolute, String what) {
        assertTrue(Math.abs(actual - expected) <= relative * Math.abs(expected) + absolute,
                what + ": expected " + expected + ", got " + actual);
    }

    /** erfc in float64 (W. J. Cody's rational fits via the continued fraction would do too; this is exact enough). */
    private static final class Erf {
        static double erfc(double z) {
            if (z < 0) {
                return 2 - erfc(-z);
            }
            if (z < 3) { // the Taylor series of erf, alternating, converges quickly here
                double term = z, sum = z;
                for (int n = 1; n < 200; n++) {
                    term *= -z * z / n;
                    sum += term / (2 * n + 1);
                }
                return 1 - 2 / Math.sqrt(Math.PI) * sum;
            }
            // the continued fraction of erfc, evaluated from the tail
            double fraction = 0;
            for (int n = 200; n >= 1; n--) {
                fraction = n / 2.0 / (z + fraction);
            }
            return Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + fraction);
        }
    }
}
