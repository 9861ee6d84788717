package dev.blip2dl4j.runtime;

import dev.blip2dl4j.model.AttentionMask;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.OptParameters;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;

/**
 * The OPT language model of the graphs' {@code OptDecoder}, executed eagerly over its weights in place, with a
 * key/value cache: {@link #prefill} runs the prompt (projected queries + prompt embeddings) and fills
 * the cache, {@link #step} runs one new token per row against it. Same weights by the same names, same
 * math in the same order as the graph; tests hold the two to 1e-5 of each other.
 *
 * <p>Both are one forward pass over {@code n} new positions per row, attending to the cached ones and
 * to themselves (causally): positions come from the running count of the attention mask, so
 * left-padded rows see the same positions as alone, as in the graph. A step of one sequence is one row,
 * which {@link Linear} turns into matrix-vector products: its cost is the weights read once, plus an
 * attention over the positions so far.
 *
 * <p>Work buffers are kept between calls: one thread at a time.
 */
public final class EagerOpt {
    /** Which positions {@link #prefill} returns logits for. */
    public enum Logits {
        /** the last position of each row, {@code [batch, vocab]}: what generation continues from */
        LAST,
        /** every position, {@code [batch, seq, vocab]}: what verification compares */
        ALL
    }

    record Layer(LayerNorm attnNorm, Linear q, Linear k, Linear v, Linear out,
                 LayerNorm mlpNorm, Linear fc1, Linear fc2) {
    }

    private final OptConfig config;
    private final INDArray embedTokens;
    private final INDArray embedPositions;
    private final Linear projectIn;
    private final Linear projectOut;
    private final LayerNorm finalNorm;
    private final Layer[] layers;
    private final Linear head;
    private final Workspace work = new Workspace();

    public EagerOpt(OptConfig config, Weights weights) {
        config.requireSupported();
        this.config = config;
        embedTokens = weights.get(OptParameters.embedTokens());
        embedPositions = weights.get(OptParameters.embedPositions());
        projectIn = config.hasEmbeddingProjections() ? Linear.of(weights, OptParameters.projectIn()) : null;
        projectOut = config.hasEmbeddingProjections() ? Linear.of(weights, OptParameters.projectOut()) : null;
        finalNorm = config.hasFinalLayerNorm() ? norm(weights, OptParameters.finalLayerNorm()) : null;
        layers = new Layer[config.numHiddenLayers()];
        for (int i = 0; i < layers.length; i++) {
            OptParameters.Layer p = OptParameters.layer(i);
            layers[i] = new Layer(norm(weights, p.selfAttnLayerNorm()),
                    Linear.of(weights, p.qProj()), Linear.of(weights, p.kProj()),
                    Linear.of(weights, p.vProj()), Linear.of(weights, p.outProj()),
                    norm(weights, p.finalLayerNorm()), Linear.of(weights, p.fc1()), Linear.of(weights, p.fc2()));
        }
        head = config.tieWordEmbeddings() ? new Linear(embedTokens, null) : Linear.of(weights, OptParameters.lmHead());
    }

    public OptConfig config() {
        return config;
    }

    Layer layer(int index) {
        return layers[index];
    }

    /** The final LayerNorm, or null where the model has none. */
    LayerNorm finalNorm() {
        return finalNorm;
    }

    Linear head() {
        return head;
    }

    INDArray embedTokens() {
        return embedTokens;
    }

    /** An empty cache with room for {@code capacity} positions (prompt and new tokens); it grows past that. */
    public KvCache newCache(int capacity) {
        return new KvCache(config.numHiddenLayers(), config.numAttentionHeads(), config.headDim(), capacity);
    }

    /**
     * Runs the prompt into an empty cache.
     *
     * @param inputsEmbeds  {@code [batch, seq, word_embed_proj_dim]}: the projected queries, then the prompt's token embeddings
     * @param attentionMask {@code [batch, seq]}, 1 = attend, 0 = padding (left padding for generation), any numeric type
     * @return logits {@code [batch, vocab]} of the last position, or {@code [batch, seq, vocab]} of all
     */
    public INDArray prefill(KvCache cache, INDArray inputsEmbeds, INDArray attentionMask, Logits logits) {
        if (cache.length() != 0) {
            throw new IllegalStateException("prefill starts a sequence, but the cache already holds "
                    + cache.length() + " positions");
        }
        if (inputsEmbeds.rank() != 3 || inputsEmbeds.size(2) != config.wordEmbedProjDim()) {
            throw new IllegalArgumentException("inputs embeds of shape " + Arrays.toString(inputsEmbeds.shape())
                    + " where [batch, seq, " + config.wordEmbedProjDim() + "] is expected");
        }
        int batch = (int) inputsEmbeds.size(0);
        int seq = (int) inputsEmbeds.size(1);
        INDArray embeds = inputsEmbeds.reshape('c', (long) batch * seq, config.wordEmbedProjDim());
        return forward(cache, embeds, batch, seq, attentionMask, logits);
    }

    /**
     * Runs one new token per row.
     *
     * @param tokenIds      {@code [batch]}, integers
     * @param attentionMask {@code [batch, cached + 1]}: the mask so far with the new position's value appended
     * @return the new position's logits {@code [batch, vocab]}
     */
    public INDArray step(KvCache cache, INDArray tokenIds, INDArray attentionMask) {
        if (cache.length() == 0) {
            throw new IllegalStateException("step continues a sequence: prefill the cache first");
        }
        int[] ids = tokenIds.toIntVector();
        INDArray embeds = work.get("embeds", ids.length, config.wordEmbedProjDim());
        EagerLayers.gatherRows(embedTokens, ids, embeds, false);
        return forward(cache, embeds, ids.length, 1, attentionMask, Logits.LAST);
    }

    /** {@code embeds [batch * seq, word_embed_proj_dim]}: the new positions of every row. */
    private INDArray forward(KvCache cache, INDArray embeds, int batch, int seq, INDArray attentionMask, Logits logits) {
        INDArray h = lastHiddenState(cache, embeds, batch, seq, attentionMask, null);
        if (logits == Logits.LAST && seq > 1) {
            int[] last = new int[batch];
            for (int b = 0; b < batch; b++) {
                last[b] = b * seq + seq - 1;
            }
            INDArray lastRows = work.get("last", batch, h.size(1));
            EagerLayers.gatherRows(h, last, lastRows, false);
            h = lastRows;
        }
        INDArray out = Nd4j.createUninitialized(DataType.FLOAT, h.size(0), config.vocabSize());
        head.apply(h, out);
        return logits == Logits.ALL ? out.reshape(batch, seq, config.vocabSize()) : out;
    }

    /**
     * The decoder's output before the lm_head, {@code [batch * seq, word_embed_proj_dim]} in a work buffer (valid
     * until the next call), recording on {@code tape} (when not null) what a backward pass needs.
     */
    INDArray lastHiddenState(KvCache cache, INDArray embeds, int batch, int seq, INDArray attentionMask,
                             OptTape tape) {
        int at = cache.reserve(batch, seq);
        float[][] mask = EagerLayers.maskRows(attentionMask, batch, at + seq);
        long rows = (long) batch * seq;
        int hidden = config.hiddenSize();

        INDArray x = work.get("x", rows, hidden);
        if (projectIn != null) {
            projectIn.apply(embeds, x);
        } else {
            x.assign(embeds);
        }
        EagerLayers.gatherRows(embedPositions, positions(mask, at, seq), x, true);
        INDArray additive = additiveMask(mask, at, seq);

        if (tape != null) {
            tape.start(additive);
        }
        for (int i = 0; i < layers.length; i++) {
            decoderLayer(i, layers[i], cache, x, seq, at, additive, tape);
        }
        cache.advance(seq);

        INDArray h = x;
        if (tape != null) {
            tape.finalInput(x);
        }
        if (finalNorm != null) {
            h = work.get("normed", rows, hidden);
            finalNorm.apply(x, h);
        }
        if (projectOut != null) {
            INDArray projected = work.get("projected", rows, config.wordEmbedProjDim());
            projectOut.apply(h, projected);
            h = projected;
        }
        return h;
    }

    /**
     * Rows of the learned position table for the new positions {@code at .. at + seq - 1}, as the graph:
     * (attended positions so far, this one included) times the mask, plus OPT's offset of 2, minus 1;
     * padding reads row 1.
     */
    private static int[] positions(float[][] mask, int at, int seq) {
        int[] rows = new int[mask.length * seq];
        for (int b = 0; b < mask.length; b++) {
            float count = 0;
            for (int t = 0; t < at + seq; t++) {
                count += mask[b][t];
                if (t >= at) {
                    rows[b * seq + t - at] = (int) (count * mask[b][t] + (OptConfig.POSITION_OFFSET - 1));
                }
            }
        }
        return rows;
    }

    /**
     * The graph's causal plus padding mask for queries {@code at .. at + seq - 1} over keys
     * {@code 0 .. at + seq - 1}: {@code [batch, 1, seq, at + seq]}.
     */
    private static INDArray additiveMask(float[][] mask, int at, int seq) {
        int batch = mask.length;
        int keys = at + seq;
        float[] values = new float[batch * seq * keys];
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < seq; i++) {
                for (int j = 0; j < keys; j++) {
                    float causal = j > at + i ? (float) AttentionMask.MASKED : 0f;
                    values[(b * seq + i) * keys + j] = causal + EagerLayers.padding(mask[b][j]);
                }
            }
        }
        return Nd4j.create(values, new long[]{batch, 1, seq, keys}, DataType.FLOAT);
    }

    /** Pre-LN (post-LN when do_layer_norm_before is false): attention, then the MLP, each around a residual. */
    private void decoderLayer(int index, Layer layer, KvCache cache, INDArray x, int seq, int at, INDArray additive,
                              OptTape tape) {
        long rows = x.size(0);
        boolean preLn = config.doLayerNormBefore();
        INDArray normed = work.get("normed", rows, config.hiddenSize());
        INDArray attended = work.get("attended", rows, config.hiddenSize());
        if (tape != null) {
            tape.layerInput(index, x);
        }
        if (preLn) {
            layer.attnNorm().apply(x, normed);
        }
        selfAttention(index, layer, cache, preLn ? normed : x, seq, at, additive, attended, tape);
        EagerLayers.add(x, attended);
        if (tape != null) {
            tape.attentionOutput(index, x);
        }
        if (!preLn) {
            layer.attnNorm().apply(x, x);
        }

        if (preLn) {
            layer.mlpNorm().apply(x, normed);
        }
        INDArray inner = work.get("inner", rows, config.ffnDim());
        INDArray mlp = work.get("mlp", rows, config.hiddenSize());
        layer.fc1().apply(preLn ? normed : x, inner);
        EagerLayers.activation(config.activationFunction(), inner, work);
        if (tape != null) {
            tape.activated(index, inner);
        }
        layer.fc2().apply(inner, mlp);
        EagerLayers.add(x, mlp);
        if (!preLn) {
            layer.mlpNorm().apply(x, x);
        }
    }

    private void selfAttention(int index, Layer layer, KvCache cache, INDArray h, int seq, int at, INDArray additive,
                               INDArray out, OptTape tape) {
        long rows = h.size(0);
        INDArray q = work.get("q", rows, config.hiddenSize());
        INDArray k = work.get("k", rows, config.hiddenSize());
        INDArray v = work.get("v", rows, config.hiddenSize());
        layer.q().apply(h, q);
        // transformers scales q before the product, not the scores: keep its rounding
        EagerLayers.scale(q, Math.pow(config.headDim(), -0.5));
        layer.k().apply(h, k);
        layer.v().apply(h, v);
        cache.store(index, at, seq, k, v);
        if (tape != null) {
            tape.projections(index, q, k, v);
        }

        INDArray merged = work.get("merged", rows, config.hiddenSize());
        if (seq == 1) {
            EagerLayers.attendOne(q, cache.keys(index), cache.values(index), at + 1, additive, merged);
        } else {
            EagerLayers.attention(q, seq, cache.keys(index), cache.values(index), at + seq, additive, merged);
        }
        layer.out().apply(merged, out);
    }

    private static LayerNorm norm(Weights weights, String prefix) {
        return LayerNorm.of(weights, prefix, OptConfig.LAYER_NORM_EPS);
    }
}
