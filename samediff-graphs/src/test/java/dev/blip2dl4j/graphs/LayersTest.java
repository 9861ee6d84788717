package dev.blip2dl4j.graphs;

import dev.blip2dl4j.model.AttentionMask;
import dev.blip2dl4j.arrays.Weights;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class LayersTest {
    private static Weights weights(Map<String, INDArray> map) {
        return new Weights() {
            @Override
            public INDArray get(String name) {
                return map.get(name);
            }

            @Override
            public boolean contains(String name) {
                return map.containsKey(name);
            }
        };
    }

    @Test
    void linearLayerNormGeluAndAttentionAgainstPlainJava() {
        Nd4j.getRandom().setSeed(1);
        Map<String, INDArray> w = new HashMap<>();
        w.put("fc.weight", Nd4j.rand(DataType.FLOAT, 6, 4));
        w.put("fc.bias", Nd4j.rand(DataType.FLOAT, 6));
        w.put("ln.weight", Nd4j.rand(DataType.FLOAT, 6));
        w.put("ln.bias", Nd4j.rand(DataType.FLOAT, 6));
        SameDiff sd = SameDiff.create();
        Layers nn = new Layers(sd, weights(w));
        SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 4);
        SDVariable seq = sd.placeHolder("seq", DataType.LONG);
        SDVariable y = nn.gelu(nn.layerNorm(nn.linear(x, "fc"), "ln", 1e-6));
        SDVariable heads = nn.splitHeads(y, seq, 2, 3);
        SDVariable out = nn.mergeHeads(nn.attention(heads, heads, heads, null, 0.5), 2, 3);
        out.rename("out");

        INDArray input = Nd4j.rand(DataType.FLOAT, 2 * 5, 4); // batch 2, sequence 5
        Map<String, INDArray> result = sd.output(Map.of("x", input, "seq", Nd4j.scalar(5L)), "out");
        INDArray got = result.get("out");
        assertArrayEquals(new long[]{10, 6}, got.shape());

        float[][] ref = reference(input.toFloatMatrix(), w);
        for (int r = 0; r < 10; r++) {
            for (int c = 0; c < 6; c++) {
                assertEquals(ref[r][c], got.getFloat(r, c), 1e-5, "row " + r + " col " + c);
            }
        }
    }

    @Test
    void masksFollowTheSequenceLengthAndTheAttentionMask() {
        SameDiff sd = SameDiff.create();
        Layers nn = new Layers(sd, weights(Map.of()));
        SDVariable mask = sd.placeHolder("mask", DataType.INT64, -1, -1);
        // causal + padding: the sum stays finite where both mask
        SDVariable combined = nn.causalMask(nn.size(mask, 1)).add(nn.paddingMask(mask));
        combined.rename("combined");
        INDArray got = sd.output(Map.of("mask", Nd4j.createFromArray(new long[][]{{1, 1, 1}, {0, 1, 0}})), "combined")
                .get("combined");
        assertArrayEquals(new long[]{2, 1, 3, 3}, got.shape());
        double m = AttentionMask.MASKED;
        double[][][] expected = {
                {{0, m, m}, {0, 0, m}, {0, 0, 0}},
                {{m, m, 2 * m}, {m, 0, 2 * m}, {m, 0, m}}};
        for (int b = 0; b < 2; b++) {
            for (int q = 0; q < 3; q++) {
                for (int k = 0; k < 3; k++) {
                    assertEquals(expected[b][q][k], got.getDouble(b, 0, q, k), 0, "batch " + b + " query " + q + " key " + k);
                }
            }
        }
    }

    @Test
    void activationsByTransformersName() {
        SameDiff sd = SameDiff.create();
        Layers nn = new Layers(sd, weights(Map.of()));
        SDVariable x = sd.constant(Nd4j.createFromArray(-1.5f, 0.5f, 2f));
        assertArrayEquals(new float[]{0, 0.5f, 2}, nn.activation("relu", x).eval().toFloatVector(), 0);
        assertEquals(nn.gelu(x).eval(), nn.activation("gelu", x).eval());
        assertEquals(nn.geluTanh(x).eval(), nn.activation("gelu_new", x).eval());
        assertThrows(IllegalArgumentException.class, () -> nn.activation("swiglu", x));
    }

    private static float[][] reference(float[][] x, Map<String, INDArray> w) {
        float[][] fc = w.get("fc.weight").toFloatMatrix();
        float[] b = w.get("fc.bias").toFloatVector();
        float[] g = w.get("ln.weight").toFloatVector();
        float[] beta = w.get("ln.bias").toFloatVector();
        double[][] h = new double[x.length][6];
        for (int r = 0; r < x.length; r++) {
            double mean = 0;
            for (int o = 0; o < 6; o++) {
                double s = b[o];
                for (int i = 0; i < 4; i++) {
                    s += x[r][i] * fc[o][i];
                }
                h[r][o] = s;
                mean += s / 6;
            }
            double var = 0;
            for (int o = 0; o < 6; o++) {
                var += (h[r][o] - mean) * (h[r][o] - mean) / 6;
            }
            for (int o = 0; o < 6; o++) {
                double n = (h[r][o] - mean) / Math.sqrt(var + 1e-6) * g[o] + beta[o];
                h[r][o] = 0.5 * n * (1 + org.apache.commons.math3.special.Erf.erf(n / Math.sqrt(2)));
            }
        }
        float[][] out = new float[x.length][6];
        for (int batch = 0; batch < 2; batch++) {
            for (int head = 0; head < 2; head++) {
                for (int t = 0; t < 5; t++) {
                    double[] scores = new double[5];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int u = 0; u < 5; u++) {
                        double s = 0;
                        for (int d = 0; d < 3; d++) {
                            s += h[batch * 5 + t][head * 3 + d] * h[batch * 5 + u][head * 3 + d];
                        }
                        scores[u] = s * 0.5;
                        max = Math.max(max, scores[u]);
                    }
                    double sum = 0;
                    for (int u = 0; u < 5; u++) {
                        scores[u] = Math.exp(scores[u] - max);
                        sum += scores[u];
                    }
                    for (int d = 0; d < 3; d++) {
                        double s = 0;
                        for (int u = 0; u < 5; u++) {
                            s += scores[u] / sum * h[batch * 5 + u][head * 3 + d];
                        }
                        out[batch * 5 + t][head * 3 + d] = (float) s;
                    }
                }
            }
        }
        return out;
    }
}
