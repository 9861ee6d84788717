package dev.blip2dl4j.runtime;

import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.QFormerConfig;
import dev.blip2dl4j.config.QFormerParameters;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.List;

/**
 * The query path of the graphs' {@code QFormer} (what captioning and the image side of contrast need), run eagerly:
 * the learned queries alone, through {@code qformer.layernorm} and the post-LN BERT layers, reading the image through
 * cross-attention every {@code cross_attention_frequency} layers. Same weights by the same names
 * ({@link QFormerParameters}), same math; tests hold it to the graph's outputs on every fixture. Paths with text
 * stay on the graph. Inference and stage-two training run the same forward pass; in training it also records on a
 * {@link QFormerTape} what {@link EagerQFormerBackward} reads.
 */
public final class EagerQFormer {

    /**
     * @param lastHiddenState {@code [batch, queries, hidden]}
     * @param hiddenStates    {@code qformer.layernorm} of the queries, then every layer's output, each
     *                        {@code [batch, queries, hidden]}; empty unless asked for
     */
    public record Output(INDArray lastHiddenState, List<INDArray> hiddenStates) {
    }

    /** {@code Blip2QFormerAttention}: query, key, value, then output.dense, the residual and output.LayerNorm. */
    record Attention(Linear query, Linear key, Linear value, Linear dense, LayerNorm norm) {
        static Attention of(Weights weights, QFormerParameters.Attention names, double eps) {
            return new Attention(Linear.of(weights, names.query()), Linear.of(weights, names.key()),
                    Linear.of(weights, names.value()), Linear.of(weights, names.outputDense()),
                    LayerNorm.of(weights, names.outputLayerNorm(), eps));
        }
    }

    /** The query FFN: {@code intermediate_query.dense}, GELU, {@code output_query.dense}, residual, LayerNorm. */
    record FeedForward(Linear intermediate, Linear output, LayerNorm norm) {
        static FeedForward of(Weights weights, QFormerParameters.FeedForward names, double eps) {
            return new FeedForward(Linear.of(weights, names.intermediateDense()),
                    Linear.of(weights, names.outputDense()), LayerNorm.of(weights, names.outputLayerNorm(), eps));
        }
    }

    /** {@code Blip2QFormerLayer} as the queries use it; crossAttention is null in layers without one. */
    record Layer(Attention selfAttention, Attention crossAttention, FeedForward feedForward) {
    }

    private final QFormerConfig config;
    private final INDArray queryTokensParameter;
    private final INDArray queryTokens;
    private final LayerNorm embeddingNorm;
    private final List<Layer> layers = new ArrayList<>();

    /** Binds every parameter now, so that a missing one fails here rather than mid-image. */
    public EagerQFormer(QFormerConfig config, Weights weights) {
        config.requireSupported();
        this.config = config;
        double eps = config.layerNormEps();
        queryTokensParameter = weights.get(Blip2Parameters.queryTokens());
        queryTokens = queryTokensParameter.reshape(queryTokensParameter.size(1), queryTokensParameter.size(2));
        embeddingNorm = LayerNorm.of(weights, QFormerParameters.layerNorm(), eps);
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            QFormerParameters.Layer names = QFormerParameters.layer(i);
            layers.add(new Layer(Attention.of(weights, names.selfAttention(), eps),
                    config.hasCrossAttention(i) ? Attention.of(weights, names.crossAttention(), eps) : null,
                    FeedForward.of(weights, names.queryFeedForward(), eps)));
        }
    }

    QFormerConfig config() {
        return config;
    }

    /** {@code query_tokens} as {@code [queries, hidden]}. */
    INDArray queryTokens() {
        return queryTokens;
    }

    /** {@code query_tokens} as the weights gave it, {@code [1, queries, hidden]}. */
    INDArray queryTokensParameter() {
        return queryTokensParameter;
    }

    LayerNorm embeddingNorm() {
        return embeddingNorm;
    }

    List<Layer> layers() {
        return layers;
    }

    /** The queries reading {@code imageEmbeds [batch, imageSeq, encoderHidden]}, without the per-layer states. */
    public Output forward(INDArray imageEmbeds) {
        return forward(imageEmbeds, false);
    }

    public Output forward(INDArray imageEmbeds, boolean keepHiddenStates) {
        return forward(imageEmbeds, keepHiddenStates, null);
    }

    /** The same, recording on {@code tape} (when not null) what a backward pass needs. */
    Output forward(INDArray imageEmbeds, boolean keepHiddenStates, QFormerTape tape) {
        int batch = (int) imageEmbeds.size(0);
        int imageLength = (int) imageEmbeds.size(1);
        int queries = (int) queryTokens.size(0);
        int width = config.hiddenSize();
        int heads = config.numAttentionHeads();
        long rows = (long) batch * queries;
        long imageRows = (long) batch * imageLength;
        INDArray image = imageEmbeds.castTo(DataType.FLOAT).reshape('c', imageRows, config.encoderHiddenSize());
        if (tape != null) {
            tape.image(image);
        }
        List<INDArray> hiddenStates = new ArrayList<>();
        try (INDArray q = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray k = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray v = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray imageK = Nd4j.create(DataType.FLOAT, imageRows, width);
             INDArray imageV = Nd4j.create(DataType.FLOAT, imageRows, width);
             INDArray context = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray inner = Nd4j.create(DataType.FLOAT, rows, config.intermediateSize());
             INDArray scratch = Nd4j.create(DataType.FLOAT, rows, config.intermediateSize());
             EagerAttention self = new EagerAttention(heads, config.headDim(), queries, queries);
             EagerAttention cross = new EagerAttention(heads, config.headDim(), queries, imageLength)) {
            // the queries are the same for every image: normalise them once, then repeat them per image
            INDArray hidden = Nd4j.create(DataType.FLOAT, rows, width);
            try (INDArray normedQueries = embeddingNorm.apply(queryTokens, queryTokens.ulike())) {
                for (int b = 0; b < batch; b++) {
                    hidden.reshape(batch, queries, width).get(NDArrayIndex.point(b)).assign(normedQueries);
                }
            }
            keep(hiddenStates, keepHiddenStates, hidden, batch, queries);
            for (Layer layer : layers) {
                QFormerTape.Attention selfRecord = attend(layer.selfAttention(), self, hidden, hidden, q, k, v, context,
                        tape);
                QFormerTape.Attention crossRecord = layer.crossAttention() == null ? null
                        : attend(layer.crossAttention(), cross, hidden, image, q, imageK, imageV, context, tape);
                QFormerTape.FeedForward feedForwardRecord = feedForward(layer.feedForward(), hidden, inner, scratch,
                        tape);
                if (tape != null) {
                    tape.layer(selfRecord, crossRecord, feedForwardRecord);
                }
                keep(hiddenStates, keepHiddenStates, hidden, batch, queries);
            }
            return new Output(hidden.reshape(batch, queries, width), List.copyOf(hiddenStates));
        }
    }

    /**
     * One {@code Blip2QFormerAttention} in place on {@code hidden}: each image's queries read its rows of
     * {@code keysValues} (its own rows of hidden, or of the image), then output.dense, the residual and
     * output.LayerNorm. q, k, v and context are buffers for the projections and the heads' output.
     *
     * @return what the tape keeps of it, or null without a tape
     */
    private QFormerTape.Attention attend(Attention layer, EagerAttention attention, INDArray hidden,
                                         INDArray keysValues, INDArray q, INDArray k, INDArray v, INDArray context,
                                         QFormerTape tape) {
        INDArray input = tape == null ? null : tape.copy(hidden);
        layer.query().apply(hidden, q);
        layer.key().apply(keysValues, k);
        layer.value().apply(keysValues, v);
        attention.apply(q, k, v, 1 / Math.sqrt(config.headDim()), context);
        layer.dense().addTo(context, hidden);
        QFormerTape.Attention record = tape == null ? null : new QFormerTape.Attention(input, tape.copy(q),
                tape.copy(k), tape.copy(v), tape.copy(context), tape.copy(hidden));
        layer.norm().apply(hidden, hidden);
        return record;
    }

    /**
     * The query FFN in place on {@code hidden}; inner and scratch are buffers of the inner width.
     *
     * @return what the tape keeps of it, or null without a tape
     */
    private static QFormerTape.FeedForward feedForward(FeedForward ffn, INDArray hidden, INDArray inner,
                                                       INDArray scratch, QFormerTape tape) {
        INDArray input = tape == null ? null : tape.copy(hidden);
        INDArray preActivation = tape == null ? null : tape.keep(inner.ulike());
        ffn.output().addTo(ffn.intermediate().applyGelu(hidden, inner, scratch, preActivation), hidden);
        QFormerTape.FeedForward record = tape == null ? null
                : new QFormerTape.FeedForward(input, preActivation, tape.copy(inner), tape.copy(hidden));
        ffn.norm().apply(hidden, hidden);
        return record;
    }

    private static void keep(List<INDArray> hiddenStates, boolean keep, INDArray hidden, int batch, int queries) {
        if (keep) {
            hiddenStates.add(hidden.reshape(batch, queries, hidden.size(1)).dup());
        }
    }
}
