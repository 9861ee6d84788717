package dev.blip2dl4j.runtime;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * What one training forward pass of {@link EagerT5} (the encoder, then the teacher-forced decoder) keeps for the
 * backward pass of {@link EagerT5Loss}, as copies of the work buffers the forward pass reuses from block to block:
 * per block the residual stream in front of each norm, the attention projections, the feed-forward's argument of
 * the activation and its gate; the final norms' inputs; the attention biases (relative position plus padding or
 * causal mask) as the forward pass added them; the cross-attention keys and values of the encoder output.
 */
final class T5Tape implements AutoCloseable {
    /** One block's records, rows {@code [batch * seq, width]}; the cross-attention's only in the decoder's. */
    static final class Block {
        INDArray input;
        INDArray q;
        INDArray k;
        INDArray v;
        INDArray crossInput;
        INDArray crossQ;
        INDArray crossKeys;
        INDArray crossValues;
        INDArray feedForwardInput;
        INDArray preActivation;
        INDArray gate;

        void projections(INDArray queries, INDArray keys, INDArray values) {
            q = queries.dup();
            k = keys.dup();
            v = values.dup();
        }

        /** The keys and values are the forward pass's own arrays, handed over. */
        void crossProjections(INDArray queries, INDArray keys, INDArray values) {
            crossQ = queries.dup();
            crossKeys = keys;
            crossValues = values;
        }

        private Stream<INDArray> arrays() {
            return Stream.of(input, q, k, v, crossInput, crossQ, crossKeys, crossValues, feedForwardInput,
                    preActivation, gate);
        }
    }

    final Block[] encoder;
    final Block[] decoder;
    /** {@code [batch, heads, seq, seq]}. */
    INDArray encoderBias;
    /** {@code [1, heads, decoderSeq, decoderSeq]}. */
    INDArray decoderBias;
    /** {@code [batch, 1, 1, encoderSeq]}. */
    INDArray crossMask;
    INDArray encoderFinalInput;
    INDArray decoderFinalInput;

    T5Tape(int encoderBlocks, int decoderBlocks) {
        encoder = Stream.generate(Block::new).limit(encoderBlocks).toArray(Block[]::new);
        decoder = Stream.generate(Block::new).limit(decoderBlocks).toArray(Block[]::new);
    }

    /** Frees the records now: the next step records its own. */
    @Override
    public void close() {
        Stream.concat(Stream.of(encoder, decoder).flatMap(Arrays::stream).flatMap(Block::arrays),
                        Stream.of(encoderBias, decoderBias, crossMask, encoderFinalInput, decoderFinalInput))
                .filter(Objects::nonNull).forEach(INDArray::close);
    }
}
