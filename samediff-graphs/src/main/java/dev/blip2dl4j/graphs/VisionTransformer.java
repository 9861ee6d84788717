package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.VisionConfig;
import dev.blip2dl4j.config.VisionParameters;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;

/**
 * BLIP-2's image encoder, EVA ViT-g as transformers' {@code Blip2VisionModel} has it: patch embedding,
 * class token and learned positions, then pre-LN blocks (fused qkv attention, exact-GELU MLP), then
 * {@code post_layernorm}. Parameters are bound by the names {@link VisionParameters} gives.
 *
 * <p>Inside the encoder the activations are {@code [batch * tokens, hidden]} rows (see {@link Layers});
 * what leaves it is {@code [batch, tokens, hidden]}. The batch is a graph dimension; the number of
 * tokens is fixed by the config's image size.
 */
public final class VisionTransformer {

    private VisionTransformer() {
    }

    /**
     * @param lastHiddenState {@code [batch, tokens, hidden]}, after {@code post_layernorm}
     * @param pooledOutput    {@code [batch, hidden]}: {@code post_layernorm} applied once more to the class
     *                        token row of lastHiddenState, as transformers does
     * @param hiddenStates    {@code [batch, tokens, hidden]} each: the embeddings, then the output of every
     *                        layer, all before {@code post_layernorm} (transformers' {@code hidden_states})
     */
    public record Output(SDVariable lastHiddenState, SDVariable pooledOutput, List<SDVariable> hiddenStates) {
    }

    /** The encoder over {@code pixelValues [batch, 3, imageSize, imageSize]}. */
    public static Output build(Layers nn, VisionConfig config, SDVariable pixelValues) {
        config.requireSupported();
        SameDiff sd = nn.sd();
        int tokens = config.numPositions();
        int width = config.hiddenSize();
        double eps = config.layerNormEps();
        SDVariable tokenCount = nn.constant(Nd4j.scalar((long) tokens));

        SDVariable hidden = embeddings(nn, config, pixelValues);
        List<SDVariable> hiddenStates = new ArrayList<>();
        hiddenStates.add(sd.reshape(hidden, -1, tokens, width));
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            hidden = encoderLayer(nn, config, VisionParameters.layer(i), hidden, tokenCount);
            hiddenStates.add(sd.reshape(hidden, -1, tokens, width));
        }

        SDVariable lastHiddenState = sd.reshape(nn.layerNorm(hidden, VisionParameters.postLayerNorm(), eps),
                -1, tokens, width);
        SDVariable classToken = lastHiddenState.get(SDIndex.all(), SDIndex.point(0), SDIndex.all());
        SDVariable pooledOutput = nn.layerNorm(classToken, VisionParameters.postLayerNorm(), eps);
        return new Output(lastHiddenState, pooledOutput, List.copyOf(hiddenStates));
    }

    /**
     * {@code Blip2VisionEmbeddings}: every patch through the patch convolution, the class token in front,
     * the position embeddings added; as {@code [batch * tokens, hidden]} rows.
     */
    private static SDVariable embeddings(Layers nn, VisionConfig config, SDVariable pixelValues) {
        SameDiff sd = nn.sd();
        int patch = config.patchSize();
        int grid = config.patchesPerSide();
        int width = config.hiddenSize();
        long patchValues = 3L * patch * patch;

        SDVariable pixels = pixelValues;
        if (config.imageSize() % patch != 0) {
            // the convolution's stride never reaches the right and bottom remainder
            SDIndex covered = SDIndex.interval(0, grid * patch);
            pixels = pixels.get(SDIndex.all(), SDIndex.all(), covered, covered);
        }
        // A convolution whose stride is its kernel is one GEMM over non-overlapping patches: cut the image
        // into rows of (channel, y, x), the order in which the [hidden, 3, P, P] kernel flattens to
        // [hidden, 3*P*P]. Patches run row by row, as the convolution's output flattens.
        SDVariable patches = sd.reshape(pixels, -1, 3, grid, patch, grid, patch).permute(0, 2, 4, 1, 3, 5);
        patches = sd.reshape(patches, -1, patchValues);
        SDVariable kernel = sd.reshape(nn.param(VisionParameters.patchEmbeddingWeight()), width, patchValues);
        SDVariable patchEmbeds = sd.mmul(patches, kernel, false, true, false)
                .add(nn.param(VisionParameters.patchEmbeddingBias()));
        patchEmbeds = sd.reshape(patchEmbeds, -1, (long) grid * grid, width);

        SDVariable classEmbeds = sd.tile(nn.param(VisionParameters.classEmbedding()),
                nn.shape(nn.size(pixelValues, 0), 1, 1));
        SDVariable embeddings = sd.concat(1, classEmbeds, patchEmbeds)
                .add(nn.param(VisionParameters.positionEmbedding()));
        return sd.reshape(embeddings, -1, width);
    }

    /** {@code Blip2EncoderLayer}: pre-LN attention and MLP, each added to its input. */
    private static SDVariable encoderLayer(Layers nn, VisionConfig config, VisionParameters.Layer layer,
                                           SDVariable hidden, SDVariable tokens) {
        double eps = config.layerNormEps();
        SDVariable attended = attention(nn, config, layer, nn.layerNorm(hidden, layer.layerNorm1(), eps), tokens);
        hidden = hidden.add(attended);
        SDVariable mlp = nn.linear(nn.gelu(nn.linear(nn.layerNorm(hidden, layer.layerNorm2(), eps), layer.fc1())),
                layer.fc2());
        return hidden.add(mlp);
    }

    /**
     * {@code Blip2Attention}: one fused qkv projection whose output columns are (q | k | v), each split
     * into heads; scores scaled by head_dim^-0.5; no mask, every token sees every other.
     */
    private static SDVariable attention(Layers nn, VisionConfig config, VisionParameters.Layer layer, SDVariable x,
                                        SDVariable tokens) {
        int heads = config.numAttentionHeads();
        int headDim = config.headDim();
        SDVariable[] qkv = nn.sd().split(nn.linear(x, layer.qkv()), 3, 1);
        SDVariable context = nn.attention(
                nn.splitHeads(qkv[0], tokens, heads, headDim),
                nn.splitHeads(qkv[1], tokens, heads, headDim),
                nn.splitHeads(qkv[2], tokens, heads, headDim),
                null, Math.pow(headDim, -0.5));
        return nn.linear(nn.mergeHeads(context, heads, headDim), layer.projection());
    }
}
