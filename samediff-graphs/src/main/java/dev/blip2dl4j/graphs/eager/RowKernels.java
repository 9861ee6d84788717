package dev.blip2dl4j.graphs.eager;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.FloatBuffer;
import java.util.stream.IntStream;

/**
 * Element-wise work written as plain Java loops over an array's float memory, one row at a time, where ND4J's
 * generic ops cost more than the arithmetic: LayerNorm as ops is a mean, a variance and four broadcasts
 * (measured on ViT-g's [257, 1408]: ~5 ms, against ~0.5 ms here), and every op pays a dispatch that on the
 * Q-Former's small arrays costs more than the arithmetic. The loops are simple enough for the JIT to vectorise.
 *
 * <p>Large arrays are split into two halves run in parallel (the machines this targets have few cores, and
 * ND4J's own ops use them all as well); small ones run on the calling thread, where waking a second one would
 * cost more than it saves.
 */
final class RowKernels {
    /** Below this many elements a kernel runs on one thread. */
    private static final long PARALLEL_FROM = 1 << 16;

    private RowKernels() {
    }

    /** {@code out = (x - mean) / sqrt(var + eps) * weight + bias} per row of {@code x [rows, width]}; out may be x. */
    static void layerNorm(INDArray x, INDArray weight, INDArray bias, double eps, INDArray out) {
        int width = (int) x.size(1);
        FloatBuffer in = floats(x);
        FloatBuffer to = floats(out);
        float[] gain = copy(weight);
        float[] shift = copy(bias);
        forRows(x, (from, until) -> {
            float[] row = new float[width];
            for (int r = from; r < until; r++) {
                in.get(r * width, row);
                double sum = 0;
                for (float value : row) {
                    sum += value;
                }
                float mean = (float) (sum / width);
                double squares = 0;
                for (float value : row) {
                    float centred = value - mean;
                    squares += centred * centred;
                }
                float invStd = (float) (1 / Math.sqrt(squares / width + eps));
                for (int i = 0; i < width; i++) {
                    row[i] = (row[i] - mean) * invStd * gain[i] + shift[i];
                }
                to.put(r * width, row);
            }
        });
    }

    /** {@code x[r, i] += bias[i]}: a bias on row-major activations {@code [rows, width]}. */
    static void addToRows(INDArray x, INDArray bias) {
        int width = (int) x.size(1);
        FloatBuffer data = floats(x);
        float[] add = copy(bias);
        forRows(x, (from, until) -> {
            float[] row = new float[width];
            for (int r = from; r < until; r++) {
                data.get(r * width, row);
                for (int i = 0; i < width; i++) {
                    row[i] += add[i];
                }
                data.put(r * width, row);
            }
        });
    }

    /**
     * The first half of GELU with its linear layer's bias: {@code x += bias} per row (null: none), and
     * {@code scaled = x / sqrt 2}, the argument of erf.
     */
    static void biasAndScale(INDArray x, INDArray bias, INDArray scaled) {
        int width = (int) x.size(1);
        FloatBuffer data = floats(x);
        FloatBuffer to = floats(scaled);
        float[] add = bias == null ? new float[width] : copy(bias);
        float invSqrt2 = (float) (1 / Math.sqrt(2));
        forRows(x, (from, until) -> {
            float[] row = new float[width];
            float[] half = new float[width];
            for (int r = from; r < until; r++) {
                data.get(r * width, row);
                for (int i = 0; i < width; i++) {
                    row[i] += add[i];
                    half[i] = row[i] * invSqrt2;
                }
                data.put(r * width, row);
                to.put(r * width, half);
            }
        });
    }

    /** The second half of GELU: {@code x = 0.5 x (1 + erf)}, with erf = erf(x / sqrt 2) of the same shape. */
    static void geluFromErf(INDArray x, INDArray erf) {
        int width = (int) x.size(1);
        FloatBuffer data = floats(x);
        FloatBuffer from = floats(erf);
        forRows(x, (first, until) -> {
            float[] row = new float[width];
            float[] e = new float[width];
            for (int r = first; r < until; r++) {
                data.get(r * width, row);
                from.get(r * width, e);
                for (int i = 0; i < width; i++) {
                    row[i] = 0.5f * row[i] * (1f + e[i]);
                }
                data.put(r * width, row);
            }
        });
    }

    private interface Rows {
        void run(int from, int until);
    }

    private static void forRows(INDArray x, Rows body) {
        int rows = (int) x.size(0);
        if (x.length() < PARALLEL_FROM) {
            body.run(0, rows);
            return;
        }
        int half = rows / 2;
        IntStream.range(0, 2).parallel().forEach(part -> body.run(part == 0 ? 0 : half, part == 0 ? half : rows));
    }

    /** A parameter vector (a bias, a LayerNorm weight) read into the loop's own array: small, and read once per call. */
    private static float[] copy(INDArray vector) {
        float[] values = new float[(int) vector.length()];
        floats(vector).get(0, values);
        return values;
    }

    /** The array's elements in row-major order, from its first one: only contiguous float arrays qualify. */
    private static FloatBuffer floats(INDArray a) {
        if (a.dataType() != DataType.FLOAT || a.ordering() != 'c' || a.elementWiseStride() != 1) {
            throw new IllegalArgumentException("expected a contiguous row-major float array, got " + a.shapeInfoToString());
        }
        // asNioFloat() starts at the buffer's origin, not at a view's offset (unlike addressPointer(), see Blas)
        return a.data().asNioFloat().position((int) a.offset()).slice();
    }
}
