package dev.blip2dl4j.runtime;

import org.apache.commons.math3.special.Erf;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import static dev.blip2dl4j.testing.Closeness.BATCH_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The eager primitives whose correctness the model tests would only show indirectly. */
class EagerLayersTest {

    /** BLIP-2 needs the exact GELU: libnd4j's erf must be erf to float precision, not an approximation. */
    @Test
    void geluIsTheExactErfForm() {
        int n = 24001;
        float[] xs = new float[n];
        for (int i = 0; i < n; i++) {
            xs[i] = -12f + i * 0.001f;
        }
        INDArray x = Nd4j.createFromArray(xs).reshape(1, n);
        EagerLayers.activation("gelu", x, new Workspace());
        float[] got = x.toFloatVector();
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double exact = 0.5 * xs[i] * (1 + Erf.erf(xs[i] / Math.sqrt(2)));
            worst = Math.max(worst, Math.abs(got[i] - exact) / Math.max(1, Math.abs(exact)));
        }
        System.out.printf("eager GELU vs commons-math erf over [-12, 12]: max difference %.3g (relative above 1)%n", worst);
        assertTrue(worst < 1e-6, "GELU differs from 0.5 x (1 + erf(x / sqrt 2)) by " + worst);
    }

    /**
     * T5's backward pieces against central differences of their forward formulas in double: RMSNorm's input
     * gradient (added to what the residual already holds) and each activation's derivative.
     */
    @Test
    void rmsNormAndActivationBackwardsAreTheDerivatives() {
        Nd4j.getRandom().setSeed(7);
        int rows = 3;
        int width = 8;
        double eps = 1e-6;
        double[][] x = Nd4j.randn(DataType.DOUBLE, rows, width).toDoubleMatrix();
        double[] weight = Nd4j.rand(DataType.DOUBLE, width).addi(0.5).toDoubleVector();
        double[][] upstream = Nd4j.randn(DataType.DOUBLE, rows, width).toDoubleMatrix();
        INDArray dx = Nd4j.ones(DataType.FLOAT, rows, width);
        EagerLayers.rmsNormBackward(Nd4j.createFromArray(x).castTo(DataType.FLOAT),
                Nd4j.createFromArray(weight).castTo(DataType.FLOAT), eps,
                Nd4j.createFromArray(upstream).castTo(DataType.FLOAT), dx);
        double h = 1e-5;
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < width; i++) {
                double[] plus = x[r].clone();
                double[] minus = x[r].clone();
                plus[i] += h;
                minus[i] -= h;
                double numeric = (dot(rmsNorm(plus, weight, eps), upstream[r])
                        - dot(rmsNorm(minus, weight, eps), upstream[r])) / (2 * h);
                assertEquals(1 + numeric, dx.getDouble(r, i), 1e-4, "rmsNorm row " + r + " column " + i);
            }
        }
        int n = 2001;
        double[] points = new double[n];
        for (int i = 0; i < n; i++) {
            points[i] = -8 + i * 0.008 + 1e-3; // no point on relu's kink
        }
        for (String name : new String[]{"relu", "gelu", "gelu_new"}) {
            INDArray d = Nd4j.ones(DataType.FLOAT, 1, n);
            EagerLayers.activationBackward(name, d, Nd4j.createFromArray(points).castTo(DataType.FLOAT).reshape(1, n),
                    new Workspace());
            for (int i = 0; i < n; i++) {
                double numeric = (activation(name, points[i] + h) - activation(name, points[i] - h)) / (2 * h);
                assertEquals(numeric, d.getDouble(0, i), 1e-5, name + "'(" + points[i] + ")");
            }
        }
    }

    private static double[] rmsNorm(double[] x, double[] weight, double eps) {
        double squares = 0;
        for (double v : x) {
            squares += v * v;
        }
        double scale = 1 / Math.sqrt(squares / x.length + eps);
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] * scale * weight[i];
        }
        return y;
    }

    private static double dot(double[] a, double[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            sum += a[i] * b[i];
        }
        return sum;
    }

    private static double activation(String name, double x) {
        return switch (name) {
            case "relu" -> Math.max(x, 0);
            case "gelu" -> 0.5 * x * (1 + Erf.erf(x / Math.sqrt(2)));
            default -> 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
        };
    }

    /** One row goes to the matrix-vector path, several to GEMM: both are x W^T + b. */
    @Test
    void linearOfOneRowAndOfManyRowsAgree() {
        Nd4j.getRandom().setSeed(1);
        INDArray weight = Nd4j.randn(DataType.FLOAT, 7, 5);
        INDArray bias = Nd4j.randn(DataType.FLOAT, 7);
        INDArray x = Nd4j.randn(DataType.FLOAT, 3, 5);
        Linear linear = new Linear(weight, bias);
        INDArray expected = x.mmul(weight.transpose()).addiRowVector(bias);

        INDArray many = Nd4j.create(DataType.FLOAT, 3, 7);
        linear.apply(x, many);
        assertClose("rows together", expected, many, BATCH_TOLERANCE);
        for (int r = 0; r < 3; r++) {
            INDArray one = Nd4j.create(DataType.FLOAT, 1, 7);
            linear.apply(x.getRow(r, true).dup(), one);
            assertClose("row " + r + " alone", expected.getRow(r, true), one, BATCH_TOLERANCE);
        }
    }

    @Test
    void cacheGrowsKeepingWhatItHolds() {
        KvCache cache = new KvCache(1, 2, 3, 2);
        // positions as the projections give them: [batch * seq, heads * headDim]
        INDArray first = Nd4j.rand(DataType.FLOAT, 2, 6);
        assertEquals(0, cache.reserve(1, 2));
        cache.store(0, 0, 2, first, first.mul(2));
        cache.advance(2);
        INDArray second = Nd4j.rand(DataType.FLOAT, 1, 6);
        assertEquals(2, cache.reserve(1, 1), "new positions go after the stored ones");
        assertEquals(4, cache.capacity(), "doubled");
        cache.store(0, 2, 1, second, second.mul(2));
        cache.advance(1);

        // [batch, heads, positions, headDim]
        INDArray all = Nd4j.concat(0, first, second).reshape(1, 3, 2, 3).permute(0, 2, 1, 3);
        assertClose("keys", all, positions(cache.keys(0), 3), BATCH_TOLERANCE);
        assertClose("values", all.mul(2), positions(cache.values(0), 3), BATCH_TOLERANCE);
    }

    @Test
    void selectReordersAndRepeatsRows() {
        KvCache cache = new KvCache(2, 1, 2, 4);
        INDArray rows = Nd4j.createFromArray(new float[][]{{1, 2}, {3, 4}, {5, 6}});
        cache.reserve(3, 1);
        for (int layer = 0; layer < 2; layer++) {
            cache.store(layer, 0, 1, rows, rows.neg());
        }
        cache.advance(1);
        cache.select(2, 2, 0);
        for (int layer = 0; layer < 2; layer++) {
            assertArrayEquals(new float[]{5, 6, 5, 6, 1, 2}, positions(cache.keys(layer), 1).dup().data().asFloat());
            assertArrayEquals(new float[]{-5, -6, -5, -6, -1, -2}, positions(cache.values(layer), 1).dup().data().asFloat());
        }
        assertEquals(3, cache.batch());
        assertEquals(1, cache.length());
    }

    /** One query per row over a cache (the decode loop) equals the batched products over the same positions. */
    @Test
    void attentionOfOneQueryEqualsTheBatchedProducts() {
        Nd4j.getRandom().setSeed(3);
        int batch = 2;
        int heads = 3;
        int headDim = 4;
        int capacity = 7;
        int length = 5;
        INDArray keys = Nd4j.randn(DataType.FLOAT, batch, heads, capacity, headDim);
        INDArray values = Nd4j.randn(DataType.FLOAT, batch, heads, capacity, headDim);
        INDArray q = Nd4j.randn(DataType.FLOAT, batch, heads * headDim);
        INDArray padding = Nd4j.createFromArray(new float[][]{{0, 0, 0, 0, 0}, {-1e9f, -1e9f, 0, 0, 0}}).reshape(batch, 1, 1, length);
        INDArray bias = Nd4j.randn(DataType.FLOAT, 1, heads, 1, length);
        for (INDArray additive : new INDArray[]{padding, bias}) {
            INDArray batched = Nd4j.create(DataType.FLOAT, batch, heads * headDim);
            INDArray looped = Nd4j.create(DataType.FLOAT, batch, heads * headDim);
            EagerLayers.attention(q, 1, keys, values, length, additive, batched);
            EagerLayers.attendOne(q, keys, values, length, additive, looped);
            assertClose("one query at a time", batched, looped, BATCH_TOLERANCE);
        }
    }

    private static INDArray positions(INDArray cache, int upTo) {
        return cache.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, upTo), NDArrayIndex.all());
    }

}
