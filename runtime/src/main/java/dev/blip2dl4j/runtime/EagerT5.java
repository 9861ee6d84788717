package dev.blip2dl4j.runtime;

import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.config.T5Parameters;
import dev.blip2dl4j.model.AttentionMask;
import dev.blip2dl4j.model.T5PositionBuckets;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;

/**
 * The T5 encoder-decoder of the graphs' {@code T5}, executed eagerly over its weights in place, for generation:
 * {@link #prefill} runs the encoder once over the inputs embeds, projects every decoder layer's
 * cross-attention keys and values of its output once, and runs the first decoder step from
 * decoder_start_token_id; {@link #step} then runs one decoder token per row against the
 * self-attention cache. Same weights by the same names, same math in the same order as the graph;
 * tests hold the two to 1e-5 of each other. Training runs the encoder and then {@link #teacherForced} the decoder
 * over whole label sequences, recording a {@link T5Tape} for {@link EagerT5Loss}'s backward pass.
 *
 * <p>The decoder's relative position bias for a step is the bucket of each cached key's distance back
 * to the new position (the step index), looked up in the first block's table as the graph does.
 *
 * <p>Work buffers are kept between calls: one thread at a time.
 */
public final class EagerT5 {
    record Attention(Linear q, Linear k, Linear v, Linear o) {
        static Attention of(Weights weights, T5Parameters.Attention names) {
            return new Attention(Linear.of(weights, names.q()), Linear.of(weights, names.k()),
                    Linear.of(weights, names.v()), Linear.of(weights, names.o()));
        }
    }

    /** {@code wo(act(wi_0 x) * wi_1 x)} when gated ({@code wi1} set), else {@code wo(act(wi x))} (in {@code wi0}). */
    record FeedForward(Linear wi0, Linear wi1, Linear wo) {
        static FeedForward of(Weights weights, T5Parameters.FeedForward names, boolean gated) {
            return gated
                    ? new FeedForward(Linear.of(weights, names.wi0()), Linear.of(weights, names.wi1()), Linear.of(weights, names.wo()))
                    : new FeedForward(Linear.of(weights, names.wi()), null, Linear.of(weights, names.wo()));
        }
    }

    record EncoderBlock(INDArray attentionNorm, Attention attention, INDArray feedForwardNorm, FeedForward feedForward) {
    }

    record DecoderBlock(INDArray selfNorm, Attention self, INDArray crossNorm, Attention cross,
                                INDArray feedForwardNorm, FeedForward feedForward) {
    }

    private final T5Config config;
    private final int decoderStart;
    private final INDArray shared;
    private final EncoderBlock[] encoder;
    private final INDArray encoderFinalNorm;
    private final float[][] encoderBiasTable;
    private final DecoderBlock[] decoder;
    private final INDArray decoderFinalNorm;
    private final float[][] decoderBiasTable;
    private final Linear head;
    private final Workspace work = new Workspace();

    public EagerT5(T5Config config, Weights weights) {
        decoderStart = config.requireDecoderStartTokenId();
        this.config = config;
        shared = weights.get(T5Parameters.shared());
        boolean gated = config.isGatedAct();
        T5Parameters.Stack encoderNames = T5Parameters.encoder();
        encoder = new EncoderBlock[config.numLayers()];
        for (int i = 0; i < encoder.length; i++) {
            T5Parameters.Block block = encoderNames.block(i);
            encoder[i] = new EncoderBlock(weights.get(block.selfAttentionNorm()), Attention.of(weights, block.selfAttention()),
                    weights.get(block.feedForwardNorm()), FeedForward.of(weights, block.feedForward(), gated));
        }
        encoderFinalNorm = weights.get(encoderNames.finalLayerNorm());
        encoderBiasTable = weights.get(encoderNames.relativeAttentionBias()).toFloatMatrix();
        T5Parameters.Stack decoderNames = T5Parameters.decoder();
        decoder = new DecoderBlock[config.numDecoderLayers()];
        for (int i = 0; i < decoder.length; i++) {
            T5Parameters.Block block = decoderNames.block(i);
            decoder[i] = new DecoderBlock(weights.get(block.selfAttentionNorm()), Attention.of(weights, block.selfAttention()),
                    weights.get(block.crossAttentionNorm()), Attention.of(weights, block.crossAttention()),
                    weights.get(block.feedForwardNorm()), FeedForward.of(weights, block.feedForward(), gated));
        }
        decoderFinalNorm = weights.get(decoderNames.finalLayerNorm());
        decoderBiasTable = weights.get(decoderNames.relativeAttentionBias()).toFloatMatrix();
        head = config.tieWordEmbeddings() ? new Linear(shared, null) : Linear.of(weights, T5Parameters.lmHead());
    }

    public T5Config config() {
        return config;
    }

    INDArray shared() {
        return shared;
    }

    EncoderBlock encoderBlock(int index) {
        return encoder[index];
    }

    INDArray encoderFinalNorm() {
        return encoderFinalNorm;
    }

    DecoderBlock decoderBlock(int index) {
        return decoder[index];
    }

    INDArray decoderFinalNorm() {
        return decoderFinalNorm;
    }

    Linear head() {
        return head;
    }

    /**
     * What the lm_head's input is multiplied by: {@code d_model^-0.5} for a head tied to the embedding table, whose
     * scale T5 sets for inputs, not outputs; else 1.
     */
    double headScale() {
        return config.tieWordEmbeddings() ? Math.pow(config.dModel(), -0.5) : 1.0;
    }

    /** An empty cache with room for {@code capacity} decoder positions; it grows past that. */
    public T5Cache newCache(int capacity) {
        return new T5Cache(new KvCache(config.numDecoderLayers(), config.numHeads(), config.dKv(), capacity));
    }

    /**
     * Encodes the input and runs the first decoder step, from decoder_start_token_id.
     *
     * @param inputsEmbeds  {@code [batch, seq, d_model]}: the projected queries, then the prompt's token embeddings
     * @param attentionMask {@code [batch, seq]}, 1 = attend, 0 = padding, any numeric type
     * @return the first step's logits {@code [batch, vocab]}
     */
    public INDArray prefill(T5Cache cache, INDArray inputsEmbeds, INDArray attentionMask) {
        if (cache.isEncoded()) {
            throw new IllegalStateException("prefill starts a sequence, but the cache already holds an encoded input");
        }
        if (inputsEmbeds.rank() != 3 || inputsEmbeds.size(2) != config.dModel()) {
            throw new IllegalArgumentException("inputs embeds of shape " + Arrays.toString(inputsEmbeds.shape())
                    + " where [batch, seq, " + config.dModel() + "] is expected");
        }
        int batch = (int) inputsEmbeds.size(0);
        int seq = (int) inputsEmbeds.size(1);
        float[][] mask = EagerLayers.maskRows(attentionMask, batch, seq);
        INDArray encoded = encode(inputsEmbeds.reshape('c', (long) batch * seq, config.dModel()), batch, seq, mask, null);

        INDArray[] keys = new INDArray[decoder.length];
        INDArray[] values = new INDArray[decoder.length];
        for (int i = 0; i < decoder.length; i++) {
            keys[i] = projectHeads(decoder[i].cross().k(), encoded, batch, seq);
            values[i] = projectHeads(decoder[i].cross().v(), encoded, batch, seq);
        }
        cache.encoded(encoded.reshape(batch, seq, config.dModel()), keys, values, crossMask(mask));

        long[] start = new long[batch];
        Arrays.fill(start, decoderStart);
        return step(cache, Nd4j.createFromArray(start));
    }

    /**
     * Runs one decoder token per row.
     *
     * @param tokenIds {@code [batch]}, integers: the previous step's choices
     * @return the new position's logits {@code [batch, vocab]}
     */
    public INDArray step(T5Cache cache, INDArray tokenIds) {
        if (!cache.isEncoded()) {
            throw new IllegalStateException("step continues a sequence: prefill the cache first");
        }
        int[] ids = tokenIds.toIntVector();
        int batch = ids.length;
        KvCache self = cache.self();
        int at = self.reserve(batch, 1);
        int d = config.dModel();
        int inner = config.innerDim();

        INDArray x = work.get("x", batch, d);
        EagerLayers.gatherRows(shared, ids, x, false);
        INDArray selfBias = decoderBias(at, 1);
        INDArray normed = work.get("normed", batch, d);
        INDArray attended = work.get("attended", batch, d);
        INDArray q = work.get("q", batch, inner);
        INDArray k = work.get("k", batch, inner);
        INDArray v = work.get("v", batch, inner);
        INDArray context = work.get("context", batch, inner);
        for (int i = 0; i < decoder.length; i++) {
            DecoderBlock block = decoder[i];
            rmsNorm(x, block.selfNorm(), normed);
            block.self().q().apply(normed, q);
            block.self().k().apply(normed, k);
            block.self().v().apply(normed, v);
            self.store(i, at, 1, k, v);
            EagerLayers.attendOne(q, self.keys(i), self.values(i), at + 1, selfBias, context);
            block.self().o().apply(context, attended);
            EagerLayers.add(x, attended);

            rmsNorm(x, block.crossNorm(), normed);
            block.cross().q().apply(normed, q);
            INDArray crossKeys = cache.crossKeys(i);
            EagerLayers.attendOne(q, crossKeys, cache.crossValues(i), (int) crossKeys.size(2), cache.crossMask(), context);
            block.cross().o().apply(context, attended);
            EagerLayers.add(x, attended);

            feedForwardBlock(block.feedForwardNorm(), block.feedForward(), x, normed, attended, null);
        }
        self.advance(1);

        rmsNorm(x, decoderFinalNorm, normed);
        if (config.tieWordEmbeddings()) {
            EagerLayers.scale(normed, headScale());
        }
        INDArray logits = Nd4j.createUninitialized(DataType.FLOAT, batch, config.vocabSize());
        head.apply(normed, logits);
        return logits;
    }

    /**
     * The encoder over {@code embeds [batch * seq, d_model]}: a new array {@code [batch * seq, d_model]}; records on
     * {@code tape} when not null.
     */
    INDArray encode(INDArray embeds, int batch, int seq, float[][] mask, T5Tape tape) {
        long rows = (long) batch * seq;
        int d = config.dModel();
        INDArray x = work.get("x", rows, d);
        x.assign(embeds);
        INDArray bias = encoderBias(mask);
        INDArray normed = work.get("normed", rows, d);
        INDArray attended = work.get("attended", rows, d);
        if (tape != null) {
            tape.encoderBias = bias;
        }
        // each head's products on BLAS over the projections' column blocks: no head split or merge copies
        try (EagerAttention attention = new EagerAttention(config.numHeads(), config.dKv(), seq, seq)) {
            for (int i = 0; i < encoder.length; i++) {
                EncoderBlock block = encoder[i];
                T5Tape.Block record = tape == null ? null : tape.encoder[i];
                selfAttentionBlock(block.attentionNorm(), block.attention(), x, attention, bias, record);
                feedForwardBlock(block.feedForwardNorm(), block.feedForward(), x, normed, attended, record);
            }
        }
        if (tape != null) {
            tape.encoderFinalInput = x.dup();
        }
        INDArray out = Nd4j.create(DataType.FLOAT, rows, d);
        rmsNorm(x, encoderFinalNorm, out);
        return out;
    }

    /**
     * Teacher forcing, training's decoder: every position of {@code decoderIds [batch][seq]} at once (causal), over
     * {@code encoded [batch * encoderSeq, d_model]} ({@link #encode}) under the encoder's padding {@code mask}.
     * Returns the decoder's last hidden state after its final norm, {@code [batch * seq, d_model]}, in a work buffer
     * valid until the next call; records on {@code tape} when not null.
     */
    INDArray teacherForced(INDArray encoded, float[][] mask, long[][] decoderIds, T5Tape tape) {
        int batch = mask.length;
        int encoderSeq = mask[0].length;
        int seq = decoderIds[0].length;
        long rows = (long) batch * seq;
        int d = config.dModel();
        int inner = config.innerDim();
        INDArray x = work.get("x", rows, d);
        EagerLayers.gatherRows(shared, Arrays.stream(decoderIds).flatMapToLong(Arrays::stream)
                .mapToInt(Math::toIntExact).toArray(), x, false);
        INDArray selfBias = decoderBias(0, seq);
        INDArray crossMask = crossMask(mask);
        if (tape != null) {
            tape.decoderBias = selfBias;
            tape.crossMask = crossMask;
        }
        INDArray normed = work.get("normed", rows, d);
        INDArray attended = work.get("attended", rows, d);
        INDArray q = work.get("q", rows, inner);
        INDArray context = work.get("context", rows, inner);
        EagerAttention selfHeads = new EagerAttention(config.numHeads(), config.dKv(), seq, seq);
        for (int i = 0; i < decoder.length; i++) {
            DecoderBlock block = decoder[i];
            T5Tape.Block record = tape == null ? null : tape.decoder[i];
            selfAttentionBlock(block.selfNorm(), block.self(), x, selfHeads, selfBias, record);
            if (record != null) {
                record.crossInput = x.dup();
            }
            rmsNorm(x, block.crossNorm(), normed);
            block.cross().q().apply(normed, q);
            INDArray crossKeys = Nd4j.create(DataType.FLOAT, encoded.size(0), inner);
            INDArray crossValues = Nd4j.create(DataType.FLOAT, encoded.size(0), inner);
            block.cross().k().apply(encoded, crossKeys);
            block.cross().v().apply(encoded, crossValues);
            EagerLayers.attention(q, seq, heads(crossKeys, batch, encoderSeq), heads(crossValues, batch, encoderSeq),
                    encoderSeq, crossMask, context);
            if (record != null) {
                record.crossProjections(q, crossKeys, crossValues);
            } else {
                crossKeys.close();
                crossValues.close();
            }
            block.cross().o().apply(context, attended);
            EagerLayers.add(x, attended);

            feedForwardBlock(block.feedForwardNorm(), block.feedForward(), x, normed, attended, record);
        }
        selfHeads.close();
        if (tape != null) {
            tape.decoderFinalInput = x.dup();
        } else {
            selfBias.close();
            crossMask.close();
        }
        rmsNorm(x, decoderFinalNorm, normed);
        return normed;
    }

    /**
     * {@code x += o(attention(rmsNorm(x)))} over {@code x [batch * seq, d_model]}, every row attending to its own
     * sequence under the additive {@code bias}, each head's products on BLAS over the projections' column blocks.
     */
    private void selfAttentionBlock(INDArray norm, Attention attention, INDArray x, EagerAttention heads,
                                    INDArray bias, T5Tape.Block record) {
        long rows = x.size(0);
        int inner = config.innerDim();
        INDArray normed = work.get("normed", rows, config.dModel());
        INDArray attended = work.get("attended", rows, config.dModel());
        INDArray q = work.get("q", rows, inner);
        INDArray k = work.get("k", rows, inner);
        INDArray v = work.get("v", rows, inner);
        INDArray context = work.get("context", rows, inner);
        if (record != null) {
            record.input = x.dup();
        }
        rmsNorm(x, norm, normed);
        attention.q().apply(normed, q);
        attention.k().apply(normed, k);
        attention.v().apply(normed, v);
        if (record != null) {
            record.projections(q, k, v);
        }
        heads.apply(q, k, v, 1.0, bias, context); // T5 does not scale its scores
        attention.o().apply(context, attended);
        EagerLayers.add(x, attended);
    }

    /** {@code x += ff(rmsNorm(x))}, with the two buffers it needs. */
    private void feedForwardBlock(INDArray norm, FeedForward ff, INDArray x, INDArray normed, INDArray out,
                                  T5Tape.Block record) {
        if (record != null) {
            record.feedForwardInput = x.dup();
        }
        rmsNorm(x, norm, normed);
        feedForward(ff, normed, out, record);
        EagerLayers.add(x, out);
    }

    private void feedForward(FeedForward ff, INDArray x, INDArray out, T5Tape.Block record) {
        INDArray hidden = work.get("hidden", x.size(0), config.dFf());
        ff.wi0().apply(x, hidden);
        if (record != null) {
            record.preActivation = hidden.dup();
        }
        INDArray gate = null;
        if (ff.wi1() != null) {
            gate = work.get("gate", x.size(0), config.dFf());
            ff.wi1().apply(x, gate);
            if (record != null) {
                record.gate = gate.dup();
            }
        }
        EagerLayers.activation(config.denseActFn(), hidden, gate, work);
        ff.wo().apply(hidden, out);
    }

    private void rmsNorm(INDArray x, INDArray weight, INDArray out) {
        EagerLayers.rmsNorm(x, weight, config.layerNormEpsilon(), out);
    }

    /** {@code [batch * seq, heads * d_kv]} rows seen as {@code [batch, heads, seq, d_kv]} (a view). */
    private INDArray heads(INDArray x, int batch, int seq) {
        return x.reshape(batch, seq, config.numHeads(), config.dKv()).permute(0, 2, 1, 3);
    }

    /** {@code linear(x)} for {@code x [batch * seq, d_model]}, as a new array {@code [batch, heads, seq, d_kv]}. */
    private INDArray projectHeads(Linear linear, INDArray x, int batch, int seq) {
        INDArray projected = Nd4j.create(DataType.FLOAT, x.size(0), config.innerDim());
        linear.apply(x, projected);
        INDArray heads = heads(projected, batch, seq).dup('c');
        projected.close();
        return heads;
    }

    /** The encoder's relative position bias plus its key padding, {@code [batch, heads, seq, seq]}, as the graph sums them. */
    private INDArray encoderBias(float[][] mask) {
        int batch = mask.length;
        int seq = mask[0].length;
        int heads = config.numHeads();
        float[] values = new float[batch * heads * seq * seq];
        for (int i = 0; i < seq; i++) {
            for (int j = 0; j < seq; j++) {
                float[] byHead = encoderBiasTable[bucket(j - i, true)];
                for (int b = 0; b < batch; b++) {
                    for (int h = 0; h < heads; h++) {
                        values[((b * heads + h) * seq + i) * seq + j] = byHead[h] + EagerLayers.padding(mask[b][j]);
                    }
                }
            }
        }
        return Nd4j.create(values, new long[]{batch, heads, seq, seq}, DataType.FLOAT);
    }

    /**
     * The decoder's relative position bias of positions {@code first .. first + queries - 1} over keys
     * {@code 0 .. first + queries - 1}, plus the causal mask as the graph adds it, {@code [1, heads, queries, keys]}.
     */
    private INDArray decoderBias(int first, int queries) {
        int heads = config.numHeads();
        int keys = first + queries;
        float[] values = new float[heads * queries * keys];
        for (int i = 0; i < queries; i++) {
            for (int j = 0; j < keys; j++) {
                float[] byHead = decoderBiasTable[bucket(j - (first + i), false)];
                float causal = j > first + i ? (float) AttentionMask.MASKED : 0f;
                for (int h = 0; h < heads; h++) {
                    values[(h * queries + i) * keys + j] = byHead[h] + causal;
                }
            }
        }
        return Nd4j.create(values, new long[]{1, heads, queries, keys}, DataType.FLOAT);
    }

    /** The encoder's padding as cross-attention adds it, {@code [batch, 1, 1, encoderSeq]}. */
    private static INDArray crossMask(float[][] mask) {
        int batch = mask.length;
        int seq = mask[0].length;
        float[] padding = new float[batch * seq];
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < seq; j++) {
                padding[b * seq + j] = EagerLayers.padding(mask[b][j]);
            }
        }
        return Nd4j.create(padding, new long[]{batch, 1, 1, seq}, DataType.FLOAT);
    }

    private int bucket(int distance, boolean bidirectional) {
        return T5PositionBuckets.bucket(distance, bidirectional, config.relativeAttentionNumBuckets(),
                config.relativeAttentionMaxDistance());
    }
}
