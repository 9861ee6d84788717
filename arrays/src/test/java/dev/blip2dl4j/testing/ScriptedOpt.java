package dev.blip2dl4j.testing;

import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.OptParameters;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Language-model weights for an OPT config whose continuation is known: the next token is a function of the
 * current one ({@code next}), with a margin of 48 in the logits over every other token, so that greedy and beam
 * search follow it exactly. A scripted token that has no successor repeats itself; an unscripted one gives
 * equal logits everywhere. The image and the earlier prompt play no part: the attention writes nothing.
 *
 * <p>How: each scripted token embeds as its own direction of mean 0 and variance 1 (so LayerNorm passes it
 * unchanged); the first layer's MLP recognises it (one unit per token) and turns the residual stream into its
 * successor's direction; the final LayerNorm, scaled by 4, meets the tied embedding, whose row of the successor
 * alone is not orthogonal to it. Positions and every other layer's output are zero.
 */
public final class ScriptedOpt {
    private static final float SCALE = 4;

    private ScriptedOpt() {
    }

    /** The tensors to put over a model's own (every one the script needs; the rest never reach the logits). */
    public static Map<String, INDArray> weights(OptConfig config, Map<Long, Long> next) {
        int width = config.hiddenSize();
        int ffn = config.ffnDim();
        if (config.hasEmbeddingProjections() || !config.enableBias() || !config.layerNormElementwiseAffine()
                || !config.hasFinalLayerNorm() || !config.tieWordEmbeddings()) {
            throw new IllegalArgumentException("a script needs a pre-LN OPT with biases and a tied lm_head");
        }
        Set<Long> tokenSet = new LinkedHashSet<>(next.keySet());
        tokenSet.addAll(next.values());
        List<Long> tokens = new ArrayList<>(tokenSet);
        if (tokens.size() > width - 1 || tokens.size() > ffn) {
            throw new IllegalArgumentException(tokens.size() + " tokens do not fit a script " + width + " wide");
        }
        Map<Long, float[]> direction = new HashMap<>();
        List<double[]> basis = new ArrayList<>();
        for (int k = 0; k < tokens.size(); k++) {
            direction.put(tokens.get(k), zeroMeanUnitVariance(k, width, basis));
        }

        float[][] embed = new float[config.vocabSize()][width];
        direction.forEach((token, d) -> embed[Math.toIntExact(token)] = d.clone());
        float[][] fc1 = new float[ffn][width];
        float[] fc1Bias = new float[ffn];
        float[][] fc2 = new float[width][ffn];
        for (int k = 0; k < tokens.size(); k++) {
            float[] from = direction.get(tokens.get(k));
            float[] to = direction.get(next.getOrDefault(tokens.get(k), tokens.get(k)));
            for (int i = 0; i < width; i++) {
                fc1[k][i] = from[i] / width;            // 1 for its own token, 0 for the others
                fc2[i][k] = 2 * (to[i] - from[i]);      // unit k is 0.5 when on: the stream becomes `to`
            }
            fc1Bias[k] = -0.5f;
        }

        Map<String, INDArray> w = new LinkedHashMap<>();
        w.put(OptParameters.embedTokens(), Nd4j.createFromArray(embed));
        w.put(OptParameters.embedPositions(), Nd4j.zeros(DataType.FLOAT, config.maxPositionEmbeddings() + OptConfig.POSITION_OFFSET, width));
        layerNorm(w, OptParameters.finalLayerNorm(), width, SCALE);
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            OptParameters.Layer p = OptParameters.layer(layer);
            linear(w, p.outProj(), new float[width][width], new float[width]);
            layerNorm(w, p.finalLayerNorm(), width, 1);
            boolean scripted = layer == 0;
            linear(w, p.fc1(), scripted ? fc1 : new float[ffn][width], scripted ? fc1Bias : new float[ffn]);
            linear(w, p.fc2(), scripted ? fc2 : new float[width][ffn], new float[width]);
        }
        return w;
    }

    /** The k-th of orthogonal directions with mean 0, scaled to variance 1 (Gram-Schmidt from the unit vectors). */
    private static float[] zeroMeanUnitVariance(int k, int width, List<double[]> basis) {
        double[] v = new double[width];
        for (int i = 0; i < width; i++) {
            v[i] = (i == k ? 1 : 0) - 1.0 / width;
        }
        for (double[] b : basis) {
            double dot = 0;
            for (int i = 0; i < width; i++) {
                dot += v[i] * b[i];
            }
            for (int i = 0; i < width; i++) {
                v[i] -= dot * b[i];
            }
        }
        double norm = 0;
        for (double x : v) {
            norm += x * x;
        }
        norm = Math.sqrt(norm);
        float[] out = new float[width];
        for (int i = 0; i < width; i++) {
            v[i] /= norm;
            out[i] = (float) (v[i] * Math.sqrt(width));
        }
        basis.add(v);
        return out;
    }

    private static void linear(Map<String, INDArray> w, String prefix, float[][] weight, float[] bias) {
        w.put(prefix + ".weight", Nd4j.createFromArray(weight));
        w.put(prefix + ".bias", Nd4j.createFromArray(bias));
    }

    private static void layerNorm(Map<String, INDArray> w, String prefix, int width, float scale) {
        float[] weight = new float[width];
        Arrays.fill(weight, scale);
        w.put(prefix + ".weight", Nd4j.createFromArray(weight));
        w.put(prefix + ".bias", Nd4j.createFromArray(new float[width]));
    }
}
