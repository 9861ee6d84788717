package dev.blip2dl4j.finetune;

import dev.blip2dl4j.compute.OptimizerKernels;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** AdamW over several steps, its saved state, LAVIS's parameter groups and schedule, clipping. */
class TrainOptimizerTest {
    private static final float[] START = {0.5f, -1.25f, 3e-3f, 0f};
    private static final float[][] GRADIENTS = {{0.1f, -2f, 1e-9f, 0f}, {-0.3f, 0.5f, 2e-4f, 1f}, {0.05f, 0.05f, -1e-3f, -1f}};
    private static final double[] RATES = {1e-3, 5e-4, 2e-3};

    /** torch.optim.AdamW's single-tensor step written out in doubles, for comparison. */
    private static double[] torchAdamW(double lr0, double wd) {
        double[] p = new double[START.length];
        double[] m = new double[p.length];
        double[] v = new double[p.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = START[i];
        }
        for (int t = 1; t <= GRADIENTS.length; t++) {
            double lr = RATES[t - 1] * lr0;
            for (int i = 0; i < p.length; i++) {
                double g = GRADIENTS[t - 1][i];
                p[i] *= 1 - lr * wd;
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                double denominator = Math.sqrt(v[i]) / Math.sqrt(1 - Math.pow(0.999, t)) + 1e-8;
                p[i] -= lr / (1 - Math.pow(0.9, t)) * m[i] / denominator;
            }
        }
        return p;
    }

    @Test
    void threeStepsFollowTorch() {
        INDArray p = Nd4j.createFromArray(START);
        AdamW adamW = new AdamW(Map.of("w", p), new AdamW.Settings(0.9, 0.999, 1e-8, 0.05, WeightDecayGroups.ALL));
        for (int t = 0; t < GRADIENTS.length; t++) {
            adamW.step(Map.of("w", Nd4j.createFromArray(GRADIENTS[t])), RATES[t]);
        }
        double[] expected = torchAdamW(1, 0.05);
        double[] actual = p.castTo(DataType.DOUBLE).toDoubleVector();
        for (int i = 0; i < expected.length; i++) {
            // float32 keeps 24 bits: a few units in the last place after three steps
            assertEquals(expected[i], actual[i], 5e-7 * Math.max(1, Math.abs(expected[i])), "element " + i);
        }
        assertEquals(3, adamW.steps());
    }

    @Test
    void savedStateResumesExactly() {
        INDArray straight = Nd4j.createFromArray(START);
        AdamW uninterrupted = new AdamW(Map.of("w", straight), AdamW.Settings.torchDefaults());
        INDArray resumed = Nd4j.createFromArray(START);
        AdamW first = new AdamW(Map.of("w", resumed), AdamW.Settings.torchDefaults());
        uninterrupted.step(Map.of("w", Nd4j.createFromArray(GRADIENTS[0])), RATES[0]);
        first.step(Map.of("w", Nd4j.createFromArray(GRADIENTS[0])), RATES[0]);

        AdamW.State saved = first.state();
        Map<String, INDArray> arrays = saved.arrays();
        assertEquals(List.of("w.exp_avg", "w.exp_avg_sq"), List.copyOf(arrays.keySet()));
        AdamW second = new AdamW(Map.of("w", resumed), AdamW.Settings.torchDefaults());
        second.restore(AdamW.State.of(saved.step(), arrays));
        for (int t = 1; t < GRADIENTS.length; t++) {
            uninterrupted.step(Map.of("w", Nd4j.createFromArray(GRADIENTS[t])), RATES[t]);
            second.step(Map.of("w", Nd4j.createFromArray(GRADIENTS[t])), RATES[t]);
        }
        assertArrayEquals(straight.toFloatVector(), resumed.toFloatVector(), 0f);
        assertEquals(uninterrupted.steps(), second.steps());
    }

    @Test
    void stateOfOtherParametersIsRefused() {
        AdamW adamW = new AdamW(Map.of("w", Nd4j.createFromArray(START)), AdamW.Settings.torchDefaults());
        AdamW.State wrongShape = new AdamW.State(1, Map.of("w", Nd4j.zeros(2)), Map.of("w", Nd4j.zeros(2)));
        assertThrows(IllegalArgumentException.class, () -> adamW.restore(wrongShape));
        AdamW.State wrongName = new AdamW.State(1, Map.of("v", Nd4j.zeros(4)), Map.of("v", Nd4j.zeros(4)));
        assertThrows(IllegalArgumentException.class, () -> adamW.restore(wrongName));
    }

    @Test
    void lavisGroupsSpareBiasesAndNorms() {
        WeightDecayGroups lavis = WeightDecayGroups.LAVIS;
        assertTrue(lavis.decays("query_tokens", new long[]{1, 32, 768}));
        assertTrue(lavis.decays("qformer.encoder.layer.0.crossattention.attention.key.weight", new long[]{768, 1408}));
        assertTrue(lavis.decays("language_projection.weight", new long[]{2560, 768}));
        assertFalse(lavis.decays("language_projection.bias", new long[]{2560}));
        assertFalse(lavis.decays("qformer.layernorm.weight", new long[]{768}));
        assertFalse(lavis.decays("qformer.encoder.layer.0.output_query.LayerNorm.weight", new long[]{768}));
        assertTrue(WeightDecayGroups.ALL.decays("language_projection.bias", new long[]{2560}));

        Map<String, INDArray> parameters = new LinkedHashMap<>();
        parameters.put("language_projection.weight", Nd4j.ones(2, 2));
        parameters.put("language_projection.bias", Nd4j.ones(2));
        AdamW adamW = new AdamW(parameters, AdamW.Settings.torchDefaults().withWeightDecay(0.05, WeightDecayGroups.LAVIS));
        assertEquals(0.05, adamW.weightDecay("language_projection.weight"));
        assertEquals(0, adamW.weightDecay("language_projection.bias"));
        // with zero gradients only the decay moves a parameter
        adamW.step(Map.of("language_projection.weight", Nd4j.zeros(2, 2), "language_projection.bias", Nd4j.zeros(2)), 0.1);
        assertEquals(1 - 0.1 * 0.05, parameters.get("language_projection.weight").getDouble(0, 0), 1e-7);
        assertEquals(1, parameters.get("language_projection.bias").getDouble(0), 0);
    }

    /** Values of LAVIS's linear_warmup_cosine_lr, worked out by hand. */
    @Test
    void warmupThenCosineAsLavis() {
        LinearWarmupCosineSchedule schedule = new LinearWarmupCosineSchedule(1e-4, 1e-5, 5, 1000, 1e-8);
        assertEquals(1e-8, schedule.valueAt(0, 0), 1e-20);
        assertEquals(1e-8 + (1e-4 - 1e-8) * 0.25, schedule.valueAt(250, 0), 1e-18);
        assertEquals(1e-4, schedule.valueAt(1000, 0), 1e-18);
        assertEquals(1e-4, schedule.valueAt(40_000, 0), 1e-18, "the rest of epoch 0 stays at the initial rate");
        // (1e-4 - 1e-5) * 0.5 * (1 + cos(pi / 5)) + 1e-5, cos(pi / 5) = 0.80901699437...
        assertEquals(9.140576474687264e-05, schedule.valueAt(40_001, 1), 1e-18);
        assertEquals(1.1e-4, schedule.valueAt(0, 2) + schedule.valueAt(0, 3), 1e-18, "symmetric about the middle");
        assertEquals(1e-5, schedule.valueAt(0, 5), 1e-18);
        assertEquals(1e-4, new LinearWarmupCosineSchedule(1e-4, 0, 10, 0, 1e-4).valueAt(0, 0));
    }

    @Test
    void clippingScalesAllGradientsTogetherAsTorch() {
        INDArray a = Nd4j.createFromArray(3f, 0f);
        INDArray b = Nd4j.createFromArray(new float[][]{{0f, 4f}});
        assertEquals(5, GradientClipping.clipGlobalNorm(List.of(a, b), 10), 1e-6);
        assertEquals(3f, a.getFloat(0), 0f, "under the limit: unchanged");
        assertEquals(5, GradientClipping.clipGlobalNorm(List.of(a, b), 1), 1e-6);
        assertEquals(3 / (5 + 1e-6), a.getDouble(0), 1e-7);
        assertEquals(4 / (5 + 1e-6), b.getDouble(0, 1), 1e-7);
    }
    /**
     * The native update (adamw.c, where the library runs) gives the Java loop's bits on every element: random
     * values over many magnitudes, zeros of both signs, a zero second moment (epsilon alone in the denominator),
     * and lengths that end mid-vector.
     */
    @Test
    void nativeUpdateGivesTheJavaLoopsBits() {
        assumeTrue(OptimizerKernels.available(), "the native library did not load here: the Java loop is all there is");
        Random random = new Random(3);
        for (int n : new int[] {1, 7, 16, 17, 100_003}) {
            float[][] arrays = new float[4][n];
            for (float[] array : arrays) {
                for (int i = 0; i < n; i++) {
                    array[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(13) - 9));
                }
            }
            arrays[1][0] = -0f;
            arrays[3][0] = 0f; // v = 0
            if (n > 1) {
                arrays[0][1] = -0f;
                arrays[1][1] = 0f;
                arrays[2][1] = 0f;
            }
            for (int i = 0; i < n; i++) {
                arrays[3][i] = Math.abs(arrays[3][i]); // a second moment is never negative
            }
            FloatBuffer[] loop = direct(arrays);
            FloatBuffer[] ours = direct(arrays);
            float[] settings = {1 - 1e-4f * 0.05f, 0.9f, 0.1f, 0.999f, 0.001f, -1e-3f / 0.1f,
                (float) Math.sqrt(1 - 0.999), 1e-8f};
            update(loop, settings).run(0, n);
            update(ours, settings).runNatively();
            for (int a = 0; a < 4; a++) {
                for (int i = 0; i < n; i++) {
                    assertEquals(Float.floatToRawIntBits(loop[a].get(i)), Float.floatToRawIntBits(ours[a].get(i)),
                            "array " + a + " element " + i + " of " + n);
                }
            }
        }
    }

    /** The global norm over gradients of odd lengths and longer than the native pass's blocks, against float64. */
    @Test
    void globalNormMatchesFloat64() {
        Random random = new Random(5);
        List<INDArray> gradients = new ArrayList<>();
        double exact = 0;
        for (int n : new int[] {1, 15, 65_537, 200_001}) {
            float[] values = new float[n];
            for (int i = 0; i < n; i++) {
                values[i] = (float) (random.nextGaussian() * 1e-3);
                exact += (double) values[i] * values[i];
            }
            gradients.add(Nd4j.createFromArray(values));
        }
        double norm = GradientClipping.globalNorm(gradients);
        assertEquals(Math.sqrt(exact), norm, Math.sqrt(exact) * 1e-12);
        assertEquals(norm, GradientClipping.globalNorm(gradients), 0.0, "the same bits again");
    }

    private static FloatBuffer[] direct(float[][] arrays) {
        FloatBuffer[] buffers = new FloatBuffer[arrays.length];
        for (int a = 0; a < arrays.length; a++) {
            buffers[a] = ByteBuffer.allocateDirect(arrays[a].length * 4).order(ByteOrder.nativeOrder())
                    .asFloatBuffer().put(arrays[a]).flip();
        }
        return buffers;
    }

    private static AdamW.Update update(FloatBuffer[] b, float[] s) {
        return new AdamW.Update(b[0], b[1], b[2], b[3], s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    }
}
