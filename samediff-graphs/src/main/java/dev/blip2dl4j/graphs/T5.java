package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.config.T5Parameters;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;

/**
 * The T5 encoder-decoder as BLIP-2 runs Flan-T5 (transformers' {@code T5ForConditionalGeneration} under
 * {@code language_model}), over whole sequences: the encoder reads embeddings (the projected Q-Former
 * queries followed by the prompt's token embeddings, concatenated along the sequence as
 * {@link OptDecoder#prependQueries} does, the mask getting ones in front), the decoder reads token ids
 * and attends to the encoder output.
 *
 * <p>What sets T5 apart: RMSNorm without bias, no score scaling (the initialisation absorbs it), a
 * relative position bias computed by each stack's first block and added in every block, attention
 * width {@code num_heads * d_kv} independent of d_model, a gated feed-forward, and its own lm_head
 * (scaled input only when tied to the embedding).
 */
public final class T5 {
    /**
     * @param lastHiddenState {@code [batch, seq, d_model]}, after the final RMSNorm
     * @param hiddenStates    as transformers' {@code output_hidden_states}: the input embeddings, the
     *                        output of blocks 1..n-1, then the final output (= lastHiddenState)
     */
    public record EncoderOutput(SDVariable lastHiddenState, List<SDVariable> hiddenStates) {
    }

    /**
     * @param logits       {@code [batch, decoderSeq, vocab]}
     * @param hiddenStates the decoder's, laid out as the encoder's
     */
    public record DecoderOutput(SDVariable logits, List<SDVariable> hiddenStates) {
        public SDVariable lastHiddenState() {
            return hiddenStates.get(hiddenStates.size() - 1);
        }
    }

    public record Output(EncoderOutput encoder, DecoderOutput decoder) {
        public SDVariable logits() {
            return decoder.logits();
        }
    }

    private T5() {
    }

    /**
     * @param inputsEmbeds     {@code [batch, seq, d_model]}
     * @param attentionMask    {@code [batch, seq]}, 1 = attend, 0 = padding, any numeric type
     * @param decoderInputIds  {@code [batch, decoderSeq]} integer ids, starting with decoder_start_token_id
     */
    public static Output build(Layers nn, T5Config config, SDVariable inputsEmbeds, SDVariable attentionMask,
                               SDVariable decoderInputIds) {
        EncoderOutput encoder = encoder(nn, config, inputsEmbeds, attentionMask);
        return new Output(encoder, decoder(nn, config, decoderInputIds, encoder.lastHiddenState(), attentionMask));
    }

    /** Bidirectional self-attention over the embeddings, key padding masked. */
    public static EncoderOutput encoder(Layers nn, T5Config config, SDVariable inputsEmbeds, SDVariable attentionMask) {
        SameDiff sd = nn.sd();
        T5Parameters.Stack stack = T5Parameters.encoder();
        SDVariable seq = nn.size(inputsEmbeds, 1);
        SDVariable h = sd.reshape(inputsEmbeds, -1, config.dModel());
        SDVariable selfBias = T5RelativePositions.bias(nn, config, stack.relativeAttentionBias(), seq, seq, true)
                .add(nn.paddingMask(attentionMask));

        List<SDVariable> hiddenStates = new ArrayList<>();
        for (int i = 0; i < config.numLayers(); i++) {
            hiddenStates.add(sd.reshape(h, nn.shape(-1, seq, config.dModel())));
            T5Parameters.Block block = stack.block(i);
            h = h.add(selfAttention(nn, config, block.selfAttention(), rmsNorm(nn, config, h, block.selfAttentionNorm()),
                    seq, selfBias));
            h = h.add(feedForward(nn, config, block.feedForward(), rmsNorm(nn, config, h, block.feedForwardNorm())));
        }
        h = rmsNorm(nn, config, h, stack.finalLayerNorm());
        SDVariable last = sd.reshape(h, nn.shape(-1, seq, config.dModel()));
        hiddenStates.add(last);
        return new EncoderOutput(last, hiddenStates);
    }

    /**
     * Causal self-attention over the decoder tokens, then cross-attention to the encoder output
     * (its padding masked), then the feed-forward; the lm_head over the final output.
     *
     * <p>transformers also takes a decoder attention mask; with causal attention it only changes the
     * outputs of padded decoder positions (no real position attends to a later one), which the loss
     * ignores, so it is not an input here.
     */
    public static DecoderOutput decoder(Layers nn, T5Config config, SDVariable decoderInputIds,
                                        SDVariable encoderHiddenStates, SDVariable encoderAttentionMask) {
        SameDiff sd = nn.sd();
        T5Parameters.Stack stack = T5Parameters.decoder();
        SDVariable seq = nn.size(decoderInputIds, 1);
        SDVariable encoderSeq = nn.size(encoderHiddenStates, 1);
        SDVariable encoder = sd.reshape(encoderHiddenStates, -1, config.dModel());
        SDVariable h = sd.reshape(embedTokens(nn, decoderInputIds), -1, config.dModel());
        SDVariable selfBias = T5RelativePositions.bias(nn, config, stack.relativeAttentionBias(), seq, seq, false)
                .add(nn.causalMask(seq));
        SDVariable crossMask = nn.paddingMask(encoderAttentionMask);

        List<SDVariable> hiddenStates = new ArrayList<>();
        for (int i = 0; i < config.numDecoderLayers(); i++) {
            hiddenStates.add(sd.reshape(h, nn.shape(-1, seq, config.dModel())));
            T5Parameters.Block block = stack.block(i);
            h = h.add(selfAttention(nn, config, block.selfAttention(), rmsNorm(nn, config, h, block.selfAttentionNorm()),
                    seq, selfBias));
            h = h.add(attention(nn, config, block.crossAttention(), rmsNorm(nn, config, h, block.crossAttentionNorm()),
                    seq, encoder, encoderSeq, crossMask));
            h = h.add(feedForward(nn, config, block.feedForward(), rmsNorm(nn, config, h, block.feedForwardNorm())));
        }
        h = rmsNorm(nn, config, h, stack.finalLayerNorm());
        hiddenStates.add(sd.reshape(h, nn.shape(-1, seq, config.dModel())));

        SDVariable logits;
        if (config.tieWordEmbeddings()) {
            // a tied head reads the embedding table, whose scale T5 sets for inputs, not outputs
            logits = nn.product(h.mul(Math.pow(config.dModel(), -0.5)), T5Parameters.shared(), null);
        } else {
            logits = nn.linear(h, T5Parameters.lmHead());
        }
        return new DecoderOutput(sd.reshape(logits, nn.shape(-1, seq, config.vocabSize())), hiddenStates);
    }

    /** Token embeddings {@code [batch, seq, d_model]} from the shared table (frozen, gathered). */
    public static SDVariable embedTokens(Layers nn, SDVariable inputIds) {
        return nn.sd().gather(nn.param(T5Parameters.shared()), inputIds, 0);
    }

    /**
     * Teacher forcing's decoder input for {@code labels [batch, seq]} (integers, -100 = ignored):
     * decoder_start_token_id, then the labels shifted right by one, ignored positions read as padding.
     */
    public static INDArray shiftRight(INDArray labels, T5Config config) {
        int start = config.requireDecoderStartTokenId();
        long[][] rows = labels.toLongMatrix();
        long[][] shifted = new long[rows.length][];
        for (int b = 0; b < rows.length; b++) {
            shifted[b] = new long[rows[b].length];
            shifted[b][0] = start;
            for (int t = 1; t < rows[b].length; t++) {
                long label = rows[b][t - 1];
                shifted[b][t] = label == -100 ? config.padTokenId() : label;
            }
        }
        return Nd4j.createFromArray(shifted);
    }

    private static SDVariable rmsNorm(Layers nn, T5Config config, SDVariable x, String weight) {
        return nn.rmsNorm(x, weight, config.layerNormEpsilon());
    }

    private static SDVariable selfAttention(Layers nn, T5Config config, T5Parameters.Attention names, SDVariable x,
                                            SDVariable seq, SDVariable bias) {
        return attention(nn, config, names, x, seq, x, seq, bias);
    }

    /**
     * Unscaled multi-head attention of the rows {@code x} over the rows {@code source}, with the
     * additive {@code bias} (relative positions and masks).
     */
    private static SDVariable attention(Layers nn, T5Config config, T5Parameters.Attention names, SDVariable x,
                                        SDVariable seq, SDVariable source, SDVariable sourceSeq, SDVariable bias) {
        int heads = config.numHeads();
        int dKv = config.dKv();
        SDVariable q = nn.splitHeads(nn.linear(x, names.q()), seq, heads, dKv);
        SDVariable k = nn.splitHeads(nn.linear(source, names.k()), sourceSeq, heads, dKv);
        SDVariable v = nn.splitHeads(nn.linear(source, names.v()), sourceSeq, heads, dKv);
        return nn.linear(nn.mergeHeads(nn.attention(q, k, v, bias, 1.0), heads, dKv), names.o());
    }

    /** {@code wo(act(wi_0 x) * wi_1 x)} when gated, else {@code wo(act(wi x))}. */
    private static SDVariable feedForward(Layers nn, T5Config config, T5Parameters.FeedForward names, SDVariable x) {
        SDVariable inner = config.isGatedAct()
                ? nn.activation(config.denseActFn(), nn.linear(x, names.wi0())).mul(nn.linear(x, names.wi1()))
                : nn.activation(config.denseActFn(), nn.linear(x, names.wi()));
        return nn.linear(inner, names.wo());
    }
}
