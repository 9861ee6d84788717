package dev.blip2dl4j.runtime;

import dev.blip2dl4j.compute.RowKernels;
import dev.blip2dl4j.compute.RowKernels.Gelu;
import dev.blip2dl4j.model.AttentionMask;
import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.lang.ref.Reference;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * The eager counterparts of {@link Layers}' building blocks: the same math in the same order, on
 * arrays, written into buffers the caller owns. Activations are {@code [rows, width]} as in the graphs.
 *
 * <p>Two kinds of work. Products go to BLAS ({@link Linear}, {@link Blas}) and batched attention over a prompt
 * to ND4J. The
 * per-row work around them runs without ND4J ops: norms, biases and GELU on the compute layer's native row kernels
 * ({@link RowKernels}, with the loops here where the library did not load); residuals, ReLU and the attention of
 * one new position over a cache as plain loops over the arrays' native memory. An ND4J op costs a dispatch
 * whatever its size, many times what the loop costs on a row (bench/README.md), and a decode step of a 32-layer
 * model would otherwise pay it ~1500 times.
 * The loops accumulate sums in double, so they differ from the graph only by float rounding. Matrix
 * products go straight to OpenBLAS ({@link Blas}, {@link Linear}).
 */
final class EagerLayers {
    /** Below this many elements a kernel runs on one thread. */
    private static final long PARALLEL_FROM = 1 << 16;

    private EagerLayers() {
    }

    /** LayerNorm over the last axis of {@code x [rows, width]} (biased variance); {@code out} may be {@code x}. */
    static void layerNorm(INDArray x, INDArray weight, INDArray bias, double eps, INDArray out) {
        long started = Blas.started();
        if (RowKernels.available()) {
            RowKernels.layerNorm(Blas.matrix(x), vector(weight), vector(bias), (float) eps, Blas.matrix(out));
            keep(x, weight, bias, out);
        } else {
            layerNormLoop(x, weight, bias, eps, out);
        }
        Blas.timed("layerNorm", x, started);
    }

    private static void layerNormLoop(INDArray x, INDArray weight, INDArray bias, double eps, INDArray out) {
        int width = (int) x.size(1);
        FloatBuffer in = floats(x);
        FloatBuffer to = floats(out);
        float[] gain = copy(weight);
        float[] shift = copy(bias);
        forRows(x, (from, until) -> {
            float[] row = new float[width];
            for (int r = from; r < until; r++) {
                in.get(r * width, row);
                float[] statistics = meanAndInvStd(row, eps);
                float mean = statistics[0];
                float invStd = statistics[1];
                for (int i = 0; i < width; i++) {
                    row[i] = (row[i] - mean) * invStd * gain[i] + shift[i];
                }
                to.put(r * width, row);
            }
        });
    }

    /**
     * The backward pass of {@link #layerNorm}: {@code dx += invStd (g - mean(g) - xhat mean(g xhat))} with
     * {@code g = dOut * weight} and {@code xhat} the normalised {@code x}, row by row, added to {@code dx} (the
     * residual stream's gradient), which must not be {@code dOut}. Where {@code dWeight} and {@code dBias} are
     * given (trained norms), {@code sum(dOut * xhat)} and {@code sum(dOut)} over the rows are added to them.
     */
    static void layerNormBackward(INDArray x, INDArray weight, double eps, INDArray dOut, INDArray dx,
                                  INDArray dWeight, INDArray dBias) {
        int width = (int) x.size(1);
        FloatBuffer in = floats(x);
        FloatBuffer upstream = floats(dOut);
        FloatBuffer to = floats(dx);
        float[] gain = copy(weight);
        double[] weightSums = dWeight == null ? null : new double[width];
        double[] biasSums = dWeight == null ? null : new double[width];
        Rows body = (from, until) -> {
            float[] row = new float[width];
            float[] g = new float[width];
            for (int r = from; r < until; r++) {
                in.get(r * width, row);
                upstream.get(r * width, g);
                float[] statistics = meanAndInvStd(row, eps);
                float mean = statistics[0];
                float invStd = statistics[1];
                double gSum = 0;
                double gxSum = 0;
                for (int i = 0; i < width; i++) {
                    row[i] = (row[i] - mean) * invStd;
                    if (weightSums != null) {
                        weightSums[i] += (double) g[i] * row[i];
                        biasSums[i] += g[i];
                    }
                    g[i] *= gain[i];
                    gSum += g[i];
                    gxSum += (double) g[i] * row[i];
                }
                float gMean = (float) (gSum / width);
                float gxMean = (float) (gxSum / width);
                int at = r * width;
                for (int i = 0; i < width; i++) {
                    to.put(at + i, to.get(at + i) + invStd * (g[i] - gMean - row[i] * gxMean));
                }
            }
        };
        if (weightSums == null) {
            forRows(x, body);
            return;
        }
        // the parameter sums run over all rows: one thread (trained norms are the Q-Former's, a few dozen rows)
        body.run(0, (int) x.size(0));
        addSums(dWeight, weightSums);
        addSums(dBias, biasSums);
    }

    /** A row's mean and {@code 1 / sqrt(variance + eps)} (biased variance, sums in double), as LayerNorm takes them. */
    private static float[] meanAndInvStd(float[] row, double eps) {
        double sum = 0;
        for (float value : row) {
            sum += value;
        }
        float mean = (float) (sum / row.length);
        double squares = 0;
        for (float value : row) {
            float centred = value - mean;
            squares += centred * centred;
        }
        return new float[]{mean, (float) (1 / Math.sqrt(squares / row.length + eps))};
    }

    private static void addSums(INDArray target, double[] sums) {
        FloatBuffer t = floats(target);
        for (int i = 0; i < sums.length; i++) {
            t.put(i, t.get(i) + (float) sums[i]);
        }
    }

    /** T5's RMSNorm over the last axis: no mean subtraction, no bias; {@code out} may be {@code x}. */
    static void rmsNorm(INDArray x, INDArray weight, double eps, INDArray out) {
        long started = Blas.started();
        if (RowKernels.available()) {
            RowKernels.rmsNorm(Blas.matrix(x), vector(weight), (float) eps, Blas.matrix(out));
            keep(x, weight, out);
        } else {
            rmsNormLoop(x, weight, eps, out);
        }
        Blas.timed("rmsNorm", x, started);
    }

    private static void rmsNormLoop(INDArray x, INDArray weight, double eps, INDArray out) {
        FloatBuffer in = floats(x);
        FloatBuffer w = floats(weight);
        FloatBuffer o = floats(out);
        int width = (int) x.size(1);
        for (int base = 0; base < x.length(); base += width) {
            double squares = 0;
            for (int i = 0; i < width; i++) {
                float v = in.get(base + i);
                squares += v * v;
            }
            float scale = (float) (1 / Math.sqrt((float) (squares / width) + eps));
            for (int i = 0; i < width; i++) {
                o.put(base + i, in.get(base + i) * scale * w.get(i));
            }
        }
    }

    /**
     * The backward pass of {@link #rmsNorm}, added to {@code dx} (the residual stream's gradient, not {@code dOut}):
     * with {@code g = dOut * weight} and {@code r = 1 / sqrt(mean(x^2) + eps)}, {@code dx += r g - x r^3 mean(g x)}.
     * The weight is frozen (T5's): no gradient of it.
     */
    static void rmsNormBackward(INDArray x, INDArray weight, double eps, INDArray dOut, INDArray dx) {
        int width = (int) x.size(1);
        FloatBuffer in = floats(x);
        FloatBuffer upstream = floats(dOut);
        FloatBuffer to = floats(dx);
        float[] gain = copy(weight);
        forRows(x, (from, until) -> {
            float[] row = new float[width];
            float[] g = new float[width];
            for (int r = from; r < until; r++) {
                in.get(r * width, row);
                upstream.get(r * width, g);
                double squares = 0;
                double gx = 0;
                for (int i = 0; i < width; i++) {
                    squares += row[i] * row[i];
                    g[i] *= gain[i];
                    gx += (double) g[i] * row[i];
                }
                double scale = 1 / Math.sqrt((float) (squares / width) + eps);
                float a = (float) scale;
                float b = (float) (scale * scale * scale * gx / width);
                int at = r * width;
                for (int i = 0; i < width; i++) {
                    to.put(at + i, to.get(at + i) + a * g[i] - b * row[i]);
                }
            }
        });
    }

    /** {@code x [rows, width] += row [width]} on every row (a bias). */
    static void addToEveryRow(INDArray x, INDArray row) {
        long started = Blas.started();
        if (RowKernels.available()) {
            RowKernels.addRow(Blas.matrix(x), vector(row));
            keep(x, row);
        } else {
            addToEveryRowLoop(x, row);
        }
        Blas.timed("bias", x, started);
    }

    private static void addToEveryRowLoop(INDArray x, INDArray row) {
        int width = (int) x.size(1);
        FloatBuffer data = floats(x);
        float[] add = copy(row);
        forRows(x, (from, until) -> {
            float[] values = new float[width];
            for (int r = from; r < until; r++) {
                data.get(r * width, values);
                for (int i = 0; i < width; i++) {
                    values[i] += add[i];
                }
                data.put(r * width, values);
            }
        });
    }

    /**
     * {@code x = gelu(x + bias) * gate} in GELU's exact erf form {@code 0.5 v (1 + erf(v / sqrt 2))} or its tanh
     * form (bias, gate null: none), GELU's argument {@code x + bias} kept in {@code argument} unless null (for a
     * backward pass): one native pass where the row kernels run, else these loops around ND4J's erf (exact to
     * float precision) or tanh in {@code scratch}, a buffer of x's shape (null where the native pass runs).
     */
    static void gelu(Gelu form, INDArray x, INDArray bias, INDArray argument, INDArray gate, INDArray scratch) {
        long started = Blas.started();
        if (RowKernels.available()) {
            RowKernels.gelu(form, Blas.matrix(x), bias == null ? null : vector(bias),
                    argument == null ? null : Blas.matrix(argument), gate == null ? null : Blas.matrix(gate));
            keep(x, bias, argument, gate);
        } else {
            biasAndScale(x, bias, scratch);
            if (argument != null) {
                argument.assign(x);
            }
            if (form == Gelu.ERF) {
                Nd4j.exec(new Erf(scratch, scratch));
                geluFromErf(x, scratch);
            } else {
                scratch.assign(x).muli(x).muli(x).muli(0.044715).addi(x).muli(Math.sqrt(2 / Math.PI));
                Transforms.tanh(scratch, false);
                x.muli(scratch.addi(1.0)).muli(0.5);
            }
            if (gate != null) {
                multiply(x, gate);
            }
        }
        Blas.timed("gelu", x, started);
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
    private static void geluFromErf(INDArray x, INDArray erf) {
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

    /** {@code x += y}, elementwise (a residual). */
    static void add(INDArray x, INDArray y) {
        FloatBuffer o = floats(x);
        FloatBuffer in = floats(y);
        for (int i = 0; i < x.length(); i++) {
            o.put(i, o.get(i) + in.get(i));
        }
    }

    /** {@code x *= y}, elementwise (a gate). */
    static void multiply(INDArray x, INDArray y) {
        FloatBuffer o = floats(x);
        FloatBuffer in = floats(y);
        for (int i = 0; i < x.length(); i++) {
            o.put(i, o.get(i) * in.get(i));
        }
    }

    /** {@code x *= factor} in float, as the graphs' scalar multiply. */
    static void scale(INDArray x, double factor) {
        FloatBuffer o = floats(x);
        float f = (float) factor;
        for (int i = 0; i < x.length(); i++) {
            o.put(i, o.get(i) * f);
        }
    }

    /**
     * transformers' {@code ACT2FN[name]} applied to {@code x} in place: relu, gelu (the exact erf form),
     * gelu_new (tanh); the GELUs take a scratch buffer of x's shape from {@code work}.
     */
    static void activation(String name, INDArray x, Workspace work) {
        activation(name, x, null, work);
    }

    /**
     * The same times {@code gate} (of x's shape) where not null: T5's gated feed-forward {@code act(wi_0 x) *
     * wi_1 x}, the product in the activation's own pass.
     */
    static void activation(String name, INDArray x, INDArray gate, Workspace work) {
        switch (name) {
            case "relu" -> {
                FloatBuffer o = floats(x);
                FloatBuffer g = gate == null ? null : floats(gate);
                for (int i = 0; i < x.length(); i++) {
                    float relu = Math.max(o.get(i), 0f);
                    o.put(i, g == null ? relu : relu * g.get(i));
                }
            }
            case "gelu", "gelu_new" -> gelu(name.equals("gelu") ? Gelu.ERF : Gelu.TANH, x, null, null, gate,
                    RowKernels.available() ? null : work.get("activation", x.shape()));
            default -> throw new IllegalArgumentException("unsupported activation function \"" + name
                    + "\"; supported: relu, gelu, gelu_new");
        }
    }

    /**
     * The backward pass of {@link #activation}: {@code d *= act'(x)} for the activation's argument {@code x}, as
     * PyTorch differentiates it: relu {@code x > 0}; gelu (erf) {@code 0.5 (1 + erf(x / sqrt 2)) + x phi(x)};
     * gelu_new (tanh) {@code 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 0.044715 x^2)}, {@code t = tanh(c (x +
     * 0.044715 x^3))}, {@code c = sqrt(2 / pi)}. gelu takes a scratch buffer of x's shape from {@code work}.
     */
    static void activationBackward(String name, INDArray d, INDArray x, Workspace work) {
        FloatBuffer g = floats(d);
        FloatBuffer in = floats(x);
        switch (name) {
            case "relu" -> {
                for (int i = 0; i < d.length(); i++) {
                    if (in.get(i) <= 0) {
                        g.put(i, 0f);
                    }
                }
            }
            case "gelu" -> {
                INDArray erf = work.get("activation", x.shape());
                biasAndScale(erf.assign(x), null, erf);
                Nd4j.exec(new Erf(erf, erf));
                FloatBuffer e = floats(erf);
                float density = (float) (1 / Math.sqrt(2 * Math.PI));
                for (int i = 0; i < d.length(); i++) {
                    float v = in.get(i);
                    float derivative = 0.5f * (1 + e.get(i)) + v * (float) Math.exp(-0.5 * v * v) * density;
                    g.put(i, g.get(i) * derivative);
                }
            }
            case "gelu_new" -> {
                double c = Math.sqrt(2 / Math.PI);
                for (int i = 0; i < d.length(); i++) {
                    double v = in.get(i);
                    double t = Math.tanh(c * (v + 0.044715 * v * v * v));
                    double derivative = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v);
                    g.put(i, (float) (g.get(i) * derivative));
                }
            }
            default -> throw new IllegalArgumentException("unsupported activation function \"" + name
                    + "\"; supported: relu, gelu, gelu_new");
        }
    }

    /** Rows {@code rows[i]} of {@code table [n, width]} into row i of {@code out}, or added to it. */
    static void gatherRows(INDArray table, int[] rows, INDArray out, boolean add) {
        FloatBuffer t = floats(table);
        FloatBuffer o = floats(out);
        int width = (int) table.size(1);
        for (int r = 0; r < rows.length; r++) {
            int from = rows[r] * width;
            int to = r * width;
            if (add) {
                for (int i = 0; i < width; i++) {
                    o.put(to + i, o.get(to + i) + t.get(from + i));
                }
            } else {
                o.put(to, t, from, width);
            }
        }
    }

    /**
     * Multi-head attention of many queries, through ND4J's batched products:
     * {@code out [batch * seq, heads * headDim] = softmax(q k^T + additive) v}, heads merged, for the rows
     * {@code q [batch * seq, heads * headDim]} over the first {@code length} positions of {@code keys,
     * values [batch, heads, capacity, headDim]}, with an additive mask broadcastable to
     * {@code [batch, heads, seq, length]}; no scaling (callers scale q).
     */
    static void attention(INDArray q, int seq, INDArray keys, INDArray values, int length, INDArray additive,
                          INDArray out) {
        long batch = keys.size(0);
        int heads = (int) keys.size(1);
        int headDim = (int) keys.size(3);
        INDArray queries = q.reshape(batch, seq, heads, headDim).permute(0, 2, 1, 3);
        INDArray scores = Nd4j.matmul(queries, firstPositions(keys, length), false, true, false);
        scores.addi(additive);
        Nd4j.exec(new SoftMax(scores, scores, 3));
        INDArray context = Nd4j.matmul(scores, firstPositions(values, length), false, false, false);
        out.reshape(batch, seq, heads, headDim).assign(context.permute(0, 2, 1, 3));
        scores.close();
        context.close();
    }

    /**
     * The same for one query per row (a decode step), as a loop over the cache: the batched products
     * would cost more in dispatch than the arithmetic. {@code q, out [batch, heads * headDim]}.
     */
    static void attendOne(INDArray q, INDArray keys, INDArray values, int length, INDArray additive, INDArray out) {
        int batch = (int) keys.size(0);
        int heads = (int) keys.size(1);
        int capacity = (int) keys.size(2);
        int headDim = (int) keys.size(3);
        FloatBuffer qs = floats(q);
        FloatBuffer ks = floats(keys);
        FloatBuffer vs = floats(values);
        FloatBuffer masks = floats(additive);
        FloatBuffer o = floats(out);
        // the additive mask broadcasts over batch and heads where it has size 1
        int maskBatchStride = additive.size(0) == 1 ? 0 : (int) (additive.size(1) * length);
        int maskHeadStride = additive.size(1) == 1 ? 0 : length;

        float[] query = new float[headDim];
        float[] row = new float[headDim];
        double[] context = new double[headDim];
        double[] weights = new double[length];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int at = (b * heads + h) * headDim;
                qs.get(at, query);
                int cached = (b * heads + h) * capacity * headDim;
                int mask = b * maskBatchStride + h * maskHeadStride;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < length; j++) {
                    ks.get(cached + j * headDim, row);
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) {
                        dot += query[d] * row[d];
                    }
                    weights[j] = (float) dot + masks.get(mask + j);
                    max = Math.max(max, weights[j]);
                }
                double sum = 0;
                for (int j = 0; j < length; j++) {
                    weights[j] = Math.exp(weights[j] - max);
                    sum += weights[j];
                }
                Arrays.fill(context, 0);
                for (int j = 0; j < length; j++) {
                    vs.get(cached + j * headDim, row);
                    double p = weights[j] / sum;
                    for (int d = 0; d < headDim; d++) {
                        context[d] += p * row[d];
                    }
                }
                for (int d = 0; d < headDim; d++) {
                    o.put(at + d, (float) context[d]);
                }
            }
        }
    }

    /**
     * The rows of a {@code [batch, seq]} mask as floats (1 = attend, 0 = padding), checked against the
     * batch size and sequence length the caller expects.
     */
    static float[][] maskRows(INDArray attentionMask, long batch, long seq) {
        if (attentionMask.rank() != 2 || attentionMask.size(0) != batch || attentionMask.size(1) != seq) {
            throw new IllegalArgumentException("attention mask of shape " + Arrays.toString(attentionMask.shape())
                    + " where [" + batch + ", " + seq + "] is expected");
        }
        return attentionMask.castTo(DataType.FLOAT).toFloatMatrix();
    }

    /** What the graphs' padding mask adds for a key with mask value {@code m}: {@code (1 - m) * MASKED}. */
    static float padding(float m) {
        return (1 - m) * (float) AttentionMask.MASKED;
    }

    /**
     * The array's elements in row-major order from its first one (a view's offset included), for the loops to
     * index directly: only contiguous float arrays qualify.
     */
    static FloatBuffer floats(INDArray array) {
        if (array.dataType() != DataType.FLOAT || array.ordering() != 'c' || array.elementWiseStride() != 1) {
            throw new IllegalArgumentException("expected a contiguous row-major float array, got "
                    + array.shapeInfoToString());
        }
        // asNioFloat() starts at the buffer's origin, not at a view's offset (unlike addressPointer(), see Blas)
        return array.data().asNioFloat().position((int) array.offset()).slice();
    }

    /** A contiguous float vector's first element (a bias, a norm's weight), for the row kernels. */
    private static FloatPointer vector(INDArray vector) {
        floats(vector); // checks it is contiguous float32
        return new FloatPointer(vector.data().addressPointer());
    }

    /** Keeps the arrays whose memory a native call read or wrote reachable until it returned. */
    private static void keep(INDArray... arrays) {
        Reference.reachabilityFence(arrays);
    }

    /** A parameter vector (a bias, a LayerNorm weight) read into the loop's own array: small, and read once per call. */
    private static float[] copy(INDArray vector) {
        float[] values = new float[(int) vector.length()];
        floats(vector).get(0, values);
        return values;
    }

    private interface Rows {
        void run(int from, int until);
    }

    /**
     * Runs the body over all rows, in two halves in parallel for large arrays (the machines this targets have few
     * cores, and ND4J's ops use them all as well); small ones run on the calling thread, where waking a second one
     * would cost more than it saves.
     */
    private static void forRows(INDArray x, Rows body) {
        int rows = (int) x.size(0);
        if (x.length() < PARALLEL_FROM) {
            body.run(0, rows);
            return;
        }
        int half = rows / 2;
        IntStream.range(0, 2).parallel().forEach(part -> body.run(part == 0 ? 0 : half, part == 0 ? half : rows));
    }

    private static INDArray firstPositions(INDArray cache, int length) {
        return cache.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, length), NDArrayIndex.all());
    }
}
