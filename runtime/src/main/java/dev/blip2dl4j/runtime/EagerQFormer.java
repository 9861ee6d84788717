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
 * The graphs' {@code QFormer} run eagerly: the learned queries alone (what captioning and the image side of contrast
 * need), through {@code qformer.layernorm} and the post-LN BERT layers, reading the image through
 * cross-attention every {@code cross_attention_frequency} layers; and, for the retrieval model, text after the
 * queries (image-text matching) or text alone (the text side of contrast), as the graphs' {@code QFormer} runs
 * them. Same weights by the same names ({@link QFormerParameters}), same math; tests hold it to the graph's outputs
 * and to transformers' on every fixture. Inference and stage-two training run the same forward pass; in training it
 * also records on a {@link QFormerTape} what {@link EagerQFormerBackward} reads.
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

    /** A feed-forward block: {@code intermediate(_query).dense}, GELU, {@code output(_query).dense}, residual, LayerNorm. */
    record FeedForward(Linear intermediate, Linear output, LayerNorm norm) {
        static FeedForward of(Weights weights, QFormerParameters.FeedForward names, double eps) {
            return new FeedForward(Linear.of(weights, names.intermediateDense()),
                    Linear.of(weights, names.outputDense()), LayerNorm.of(weights, names.outputLayerNorm(), eps));
        }
    }

    /**
     * {@code Blip2QFormerLayer}: crossAttention is null in layers without one; feedForward is the queries'
     * ({@code intermediate_query}), textFeedForward the text's ({@code intermediate}), null where the Q-Former
     * reads no text.
     */
    record Layer(Attention selfAttention, Attention crossAttention, FeedForward feedForward,
                 FeedForward textFeedForward) {
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
                    FeedForward.of(weights, names.queryFeedForward(), eps),
                    config.useQformerTextInput() ? FeedForward.of(weights, names.textFeedForward(), eps) : null));
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
        return forward(imageEmbeds, null, null, keepHiddenStates, null);
    }

    /** The same, recording on {@code tape} (when not null) what a backward pass needs. */
    Output forward(INDArray imageEmbeds, boolean keepHiddenStates, QFormerTape tape) {
        return forward(imageEmbeds, null, null, keepHiddenStates, tape);
    }

    /**
     * Queries and text in one sequence (image-text matching), or the text alone when {@code imageEmbeds} is null (the
     * text side of contrast). The queries read row b of {@code imageEmbeds}; text row b follows them, and every
     * position attends to the queries and to its row's unpadded text. Only the queries cross-attend to the image
     * and take the query feed-forward; the text takes its own.
     *
     * @param textEmbeds    {@code [batch, seq, hidden]}: word plus position embeddings, before {@code
     *                      qformer.layernorm}
     * @param textMask      {@code [batch, seq]}, 1 for a token and 0 for padding; null where no row is padded
     * @return {@code lastHiddenState [batch, queries + seq, hidden]} (queries 0 without an image), no per-layer
     *         states
     */
    public Output forward(INDArray imageEmbeds, INDArray textEmbeds, INDArray textMask) {
        if (!config.useQformerTextInput()) {
            throw new IllegalArgumentException("this Q-Former reads no text: its config has use_qformer_text_input"
                    + " false, so it has no text feed-forward layers (only the retrieval model has them)");
        }
        return forward(imageEmbeds, textEmbeds, textMask, false, null);
    }

    /**
     * The one forward pass. The sequence of each batch row is its queries (none without an image), then its text
     * (none without text), held as rows {@code [batch * length, hidden]}; where both are present, the query rows
     * and the text rows go apart after each self-attention for their own blocks and come back together for the
     * next. The tape records the queries-only pass, the one stage two trains.
     */
    private Output forward(INDArray imageEmbeds, INDArray textEmbeds, INDArray textMask, boolean keepHiddenStates,
                           QFormerTape tape) {
        int batch = (int) (imageEmbeds != null ? imageEmbeds : textEmbeds).size(0);
        int imageLength = imageEmbeds == null ? 0 : (int) imageEmbeds.size(1);
        int queries = imageEmbeds == null ? 0 : (int) queryTokens.size(0);
        int textLength = textEmbeds == null ? 0 : (int) textEmbeds.size(1);
        int length = queries + textLength;
        int width = config.hiddenSize();
        int heads = config.numAttentionHeads();
        long rows = (long) batch * length;
        long queryRows = (long) batch * queries;
        long textRows = (long) batch * textLength;
        long imageRows = (long) batch * imageLength;
        boolean joint = queries > 0 && textLength > 0;
        INDArray image = imageEmbeds == null ? null
                : imageEmbeds.castTo(DataType.FLOAT).reshape('c', imageRows, config.encoderHiddenSize());
        if (tape != null) {
            tape.image(image);
        }
        List<INDArray> hiddenStates = new ArrayList<>();
        try (INDArray q = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray k = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray v = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray context = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray mask = textMask == null ? null : selfAttentionMask(textMask, batch, queries, textLength);
             Part query = queries == 0 ? null : new Part(joint ? queryRows : rows, joint, width,
                     config.intermediateSize(), imageRows);
             Part text = textLength == 0 ? null : new Part(joint ? textRows : rows, joint, width,
                     config.intermediateSize(), 0);
             EagerAttention self = new EagerAttention(heads, config.headDim(), length, length);
             EagerAttention cross = queries == 0 ? null
                     : new EagerAttention(heads, config.headDim(), queries, imageLength)) {
            INDArray hidden = Nd4j.create(DataType.FLOAT, rows, width);
            INDArray sequences = hidden.reshape(batch, length, width);
            if (queries > 0) {
                // the queries are the same for every image: normalise them once, then repeat them per image
                try (INDArray normedQueries = embeddingNorm.apply(queryTokens, queryTokens.ulike())) {
                    for (int b = 0; b < batch; b++) {
                        sequences.get(NDArrayIndex.point(b), NDArrayIndex.interval(0, queries)).assign(normedQueries);
                    }
                }
            }
            if (textLength > 0) {
                INDArray textRowsIn = textEmbeds.castTo(DataType.FLOAT).reshape('c', textRows, width);
                try (INDArray normedText = embeddingNorm.apply(textRowsIn, textRowsIn.ulike())) {
                    sequences.get(NDArrayIndex.all(), NDArrayIndex.interval(queries, length), NDArrayIndex.all())
                            .assign(normedText.reshape(batch, textLength, width));
                }
            }
            keep(hiddenStates, keepHiddenStates, hidden, batch, length);
            for (Layer layer : layers) {
                QFormerTape.Attention selfRecord = attend(layer.selfAttention(), self, mask, hidden, hidden, q, k, v,
                        context, tape);
                INDArray queryHidden = !joint ? (queries > 0 ? hidden : null) : query.take(sequences, 0, queries);
                INDArray textHidden = !joint ? (queries > 0 ? null : hidden) : text.take(sequences, queries, length);
                QFormerTape.Attention crossRecord = null;
                QFormerTape.FeedForward feedForwardRecord = null;
                if (queryHidden != null) {
                    crossRecord = layer.crossAttention() == null ? null : attend(layer.crossAttention(), cross, null,
                            queryHidden, image, query.q, query.imageK, query.imageV, query.context, tape);
                    feedForwardRecord = feedForward(layer.feedForward(), queryHidden, query.inner, query.scratch,
                            tape);
                }
                if (textHidden != null) {
                    feedForward(layer.textFeedForward(), textHidden, text.inner, text.scratch, null);
                }
                if (joint) {
                    query.putBack(sequences, 0, queries);
                    text.putBack(sequences, queries, length);
                }
                if (tape != null) {
                    tape.layer(selfRecord, crossRecord, feedForwardRecord);
                }
                keep(hiddenStates, keepHiddenStates, hidden, batch, length);
            }
            return new Output(sequences, List.copyOf(hiddenStates));
        }
    }

    /**
     * Buffers of one part of the sequence (the query rows or the text rows): the part's own rows where queries and
     * text go apart, the projections and heads' output of its cross-attention, and its feed-forward's.
     */
    private static final class Part implements AutoCloseable {
        final INDArray rows;
        final INDArray q;
        final INDArray context;
        final INDArray imageK;
        final INDArray imageV;
        final INDArray inner;
        final INDArray scratch;

        /** @param apart whether the part has rows of its own (queries and text together); else it works on hidden */
        Part(long rows, boolean apart, int width, int innerWidth, long imageRows) {
            this.rows = apart ? Nd4j.create(DataType.FLOAT, rows, width) : null;
            q = imageRows == 0 ? null : Nd4j.create(DataType.FLOAT, rows, width);
            context = imageRows == 0 ? null : Nd4j.create(DataType.FLOAT, rows, width);
            imageK = imageRows == 0 ? null : Nd4j.create(DataType.FLOAT, imageRows, width);
            imageV = imageRows == 0 ? null : Nd4j.create(DataType.FLOAT, imageRows, width);
            inner = Nd4j.create(DataType.FLOAT, rows, innerWidth);
            scratch = Nd4j.create(DataType.FLOAT, rows, innerWidth);
        }

        /** Positions {@code [from, until)} of every sequence {@code [batch, length, hidden]} into this part's rows. */
        INDArray take(INDArray sequences, int from, int until) {
            rows.reshape(sequences.size(0), until - from, sequences.size(2)).assign(span(sequences, from, until));
            return rows;
        }

        /** This part's rows back into positions {@code [from, until)} of every sequence. */
        void putBack(INDArray sequences, int from, int until) {
            span(sequences, from, until).assign(rows.reshape(sequences.size(0), until - from, sequences.size(2)));
        }

        private static INDArray span(INDArray sequences, int from, int until) {
            return sequences.get(NDArrayIndex.all(), NDArrayIndex.interval(from, until), NDArrayIndex.all());
        }

        @Override
        public void close() {
            for (INDArray a : new INDArray[]{rows, q, context, imageK, imageV, inner, scratch}) {
                if (a != null) {
                    a.close();
                }
            }
        }
    }

    /**
     * The self-attention's additive mask {@code [batch, 1, length, length]}: the graphs' padding mask over the keys,
     * the same for every position, the queries never masked.
     */
    private static INDArray selfAttentionMask(INDArray textMask, int batch, int queries, int textLength) {
        float[][] keep = EagerLayers.maskRows(textMask, batch, textLength);
        int length = queries + textLength;
        float[] additive = new float[batch * length * length];
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < length; i++) {
                for (int t = 0; t < textLength; t++) {
                    additive[(b * length + i) * length + queries + t] = EagerLayers.padding(keep[b][t]);
                }
            }
        }
        return Nd4j.create(additive, new long[]{batch, 1, length, length}, DataType.FLOAT);
    }

    /**
     * One {@code Blip2QFormerAttention} in place on {@code hidden}: each image's queries read its rows of
     * {@code keysValues} (its own rows of hidden, or of the image), then output.dense, the residual and
     * output.LayerNorm. q, k, v and context are buffers for the projections and the heads' output.
     *
     * @return what the tape keeps of it, or null without a tape
     */
    private QFormerTape.Attention attend(Attention layer, EagerAttention attention, INDArray additiveMask,
                                         INDArray hidden, INDArray keysValues, INDArray q, INDArray k, INDArray v,
                                         INDArray context, QFormerTape tape) {
        INDArray input = tape == null ? null : tape.copy(hidden);
        layer.query().apply(hidden, q);
        layer.key().apply(keysValues, k);
        layer.value().apply(keysValues, v);
        double scale = 1 / Math.sqrt(config.headDim());
        if (additiveMask == null) {
            attention.apply(q, k, v, scale, context);
        } else {
            // padded text: the masked attention of the T5 encoder, which takes q already scaled
            int batch = (int) additiveMask.size(0);
            int length = (int) additiveMask.size(3);
            EagerLayers.scale(q, scale);
            EagerLayers.attention(q, length, heads(k, batch, length), heads(v, batch, length), length, additiveMask,
                    context);
        }
        layer.dense().addTo(context, hidden);
        QFormerTape.Attention record = tape == null ? null : new QFormerTape.Attention(input, tape.copy(q),
                tape.copy(k), tape.copy(v), tape.copy(context), tape.copy(hidden));
        layer.norm().apply(hidden, hidden);
        return record;
    }

    /**
     * A feed-forward block in place on {@code hidden}; inner and scratch are buffers of the inner width.
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

    /** Rows {@code [batch * length, heads * headDim]} as {@code [batch, heads, length, headDim]}, a view. */
    private INDArray heads(INDArray rows, int batch, int length) {
        return rows.reshape(batch, length, config.numAttentionHeads(), config.headDim()).permute(0, 2, 1, 3);
    }

    private static void keep(List<INDArray> hiddenStates, boolean keep, INDArray hidden, int batch, int length) {
        if (keep) {
            hiddenStates.add(hidden.reshape(batch, length, hidden.size(1)).dup());
        }
    }
}
