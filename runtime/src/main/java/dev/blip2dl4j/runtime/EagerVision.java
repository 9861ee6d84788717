package dev.blip2dl4j.runtime;

import dev.blip2dl4j.config.VisionConfig;
import dev.blip2dl4j.config.VisionParameters;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.List;

/**
 * The image encoder of the graphs' {@code VisionTransformer}, run eagerly for inference: the same computation over the same
 * weights ({@link VisionParameters}), each linear layer one GEMM into a buffer allocated once per forward pass. Tests
 * hold it to the graph's outputs on every fixture.
 */
public final class EagerVision {

    /**
     * @param lastHiddenState {@code [batch, tokens, hidden]}, after {@code post_layernorm}
     * @param pooledOutput    {@code [batch, hidden]}: {@code post_layernorm} once more on the class token's row
     * @param hiddenStates    the embeddings and every layer's output, before {@code post_layernorm}, each
     *                        {@code [batch, tokens, hidden]}; empty unless asked for
     */
    public record Output(INDArray lastHiddenState, INDArray pooledOutput, List<INDArray> hiddenStates) {
    }

    /** {@code Blip2EncoderLayer}'s parameters. */
    private record Layer(LayerNorm norm1, Linear qkv, Linear projection, LayerNorm norm2, Linear fc1, Linear fc2) {
    }

    private final VisionConfig config;
    private final INDArray patchKernel;
    private final INDArray patchBias;
    private final INDArray classEmbedding;
    private final INDArray positions;
    private final List<Layer> layers = new ArrayList<>();
    private final LayerNorm postLayerNorm;

    /** Binds every parameter now, so that a missing one fails here rather than mid-image. */
    public EagerVision(VisionConfig config, Weights weights) {
        config.requireSupported();
        this.config = config;
        double eps = config.layerNormEps();
        int patch = config.patchSize();
        // [hidden, 3, P, P] flattened to [hidden, 3*P*P]: a view of the contiguous weight, not a copy
        patchKernel = weights.get(VisionParameters.patchEmbeddingWeight())
                .reshape(config.hiddenSize(), 3L * patch * patch);
        patchBias = weights.get(VisionParameters.patchEmbeddingBias());
        classEmbedding = weights.get(VisionParameters.classEmbedding()).reshape(config.hiddenSize());
        positions = weights.get(VisionParameters.positionEmbedding())
                .reshape(config.numPositions(), config.hiddenSize());
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            VisionParameters.Layer names = VisionParameters.layer(i);
            layers.add(new Layer(LayerNorm.of(weights, names.layerNorm1(), eps), Linear.of(weights, names.qkv()),
                    Linear.of(weights, names.projection()), LayerNorm.of(weights, names.layerNorm2(), eps),
                    Linear.of(weights, names.fc1()), Linear.of(weights, names.fc2())));
        }
        postLayerNorm = LayerNorm.of(weights, VisionParameters.postLayerNorm(), eps);
    }

    /** The encoder over {@code pixelValues [batch, 3, imageSize, imageSize]}, without the per-layer states. */
    public Output forward(INDArray pixelValues) {
        return forward(pixelValues, false);
    }

    public Output forward(INDArray pixelValues, boolean keepHiddenStates) {
        int batch = (int) pixelValues.size(0);
        int tokens = config.numPositions();
        int width = config.hiddenSize();
        long rows = (long) batch * tokens;
        List<INDArray> hiddenStates = new ArrayList<>();
        try (INDArray hidden = embeddings(pixelValues);
             INDArray normed = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray qkv = Nd4j.create(DataType.FLOAT, rows, 3L * width);
             INDArray context = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray mlp = Nd4j.create(DataType.FLOAT, rows, config.intermediateSize());
             INDArray scratch = Nd4j.create(DataType.FLOAT, rows, config.intermediateSize());
             EagerAttention attention = new EagerAttention(config.numAttentionHeads(), config.headDim(), tokens, tokens)) {
            if (keepHiddenStates) {
                hiddenStates.add(hidden.reshape(batch, tokens, width).dup());
            }
            double scale = Math.pow(config.headDim(), -0.5);
            for (Layer layer : layers) {
                // pre-LN attention; the fused projection's columns are (q | k | v)
                layer.qkv().apply(layer.norm1().apply(hidden, normed), qkv);
                attention.apply(columns(qkv, 0, width), columns(qkv, 1, width), columns(qkv, 2, width), scale, context);
                layer.projection().addTo(context, hidden);
                // pre-LN MLP
                layer.fc2().addTo(layer.fc1().applyGelu(layer.norm2().apply(hidden, normed), mlp, scratch), hidden);
                if (keepHiddenStates) {
                    hiddenStates.add(hidden.reshape(batch, tokens, width).dup());
                }
            }
            INDArray lastHiddenState = postLayerNorm.apply(hidden, Nd4j.create(DataType.FLOAT, rows, width))
                    .reshape(batch, tokens, width);
            INDArray classTokens = lastHiddenState.get(NDArrayIndex.all(), NDArrayIndex.point(0), NDArrayIndex.all()).dup();
            INDArray pooledOutput = postLayerNorm.apply(classTokens, classTokens);
            return new Output(lastHiddenState, pooledOutput, List.copyOf(hiddenStates));
        }
    }

    /** Part {@code part} of a fused projection's rows, {@code width} columns: a view. */
    private static INDArray columns(INDArray rows, int part, int width) {
        return rows.get(NDArrayIndex.all(), NDArrayIndex.interval((long) part * width, (long) (part + 1) * width));
    }

    /**
     * {@code Blip2VisionEmbeddings} as rows {@code [batch * tokens, hidden]}: the patch convolution as one GEMM
     * over non-overlapping patches (as in the graphs' {@code VisionTransformer}), the class token in front, positions added.
     */
    private INDArray embeddings(INDArray pixelValues) {
        int batch = (int) pixelValues.size(0);
        int patch = config.patchSize();
        int grid = config.patchesPerSide();
        int tokens = config.numPositions();
        int width = config.hiddenSize();
        // the convolution's stride never reaches a right and bottom remainder
        INDArray pixels = pixelValues.get(NDArrayIndex.all(), NDArrayIndex.all(),
                NDArrayIndex.interval(0, grid * patch), NDArrayIndex.interval(0, grid * patch));
        // rows of (channel, y, x) per patch, the order in which the kernel flattens; patches row by row
        try (INDArray patches = Nd4j.create(DataType.FLOAT, (long) batch * grid * grid, 3L * patch * patch);
             INDArray patchEmbeds = Nd4j.create(DataType.FLOAT, (long) batch * grid * grid, width)) {
            patches.reshape(batch, grid, grid, 3, patch, patch)
                    .assign(pixels.reshape(batch, 3, grid, patch, grid, patch).permute(0, 2, 4, 1, 3, 5));
            new Linear(patchKernel, patchBias).apply(patches, patchEmbeds);

            INDArray hidden = Nd4j.create(DataType.FLOAT, (long) batch * tokens, width);
            INDArray perImage = hidden.reshape(batch, tokens, width);
            perImage.get(NDArrayIndex.all(), NDArrayIndex.interval(1, tokens), NDArrayIndex.all())
                    .assign(patchEmbeds.reshape(batch, (long) grid * grid, width));
            for (int b = 0; b < batch; b++) {
                INDArray image = perImage.get(NDArrayIndex.point(b), NDArrayIndex.all(), NDArrayIndex.all());
                image.getRow(0).assign(classEmbedding);
                image.addi(positions);
            }
            return hidden;
        }
    }
}
