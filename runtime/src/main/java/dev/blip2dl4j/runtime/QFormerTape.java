package dev.blip2dl4j.runtime;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;

/**
 * What one forward pass of {@link EagerQFormer} keeps for the backward pass of {@link EagerQFormerBackward}, as
 * copies of the work buffers the forward pass reuses from layer to layer and of the residual rows it updates in
 * place: the image rows the cross-attention read, and per block the values its backward pass reads.
 */
final class QFormerTape implements AutoCloseable {
    /** An attention block's input rows, q k v, the heads' output and the sum before output.LayerNorm. */
    record Attention(INDArray input, INDArray q, INDArray k, INDArray v, INDArray context, INDArray sum) {
    }

    /** The feed-forward block's input rows, pre-activation, GELU output and the sum before its LayerNorm. */
    record FeedForward(INDArray input, INDArray preActivation, INDArray activated, INDArray sum) {
    }

    /** crossAttention is null in layers without one. */
    record Layer(Attention selfAttention, Attention crossAttention, FeedForward feedForward) {
    }

    final List<Layer> layers = new ArrayList<>();
    private final List<INDArray> kept = new ArrayList<>();
    /** {@code [batch * imageLength, encoderHidden]}: what the cross-attention's keys and values were made of. */
    INDArray image;

    void image(INDArray rows) {
        image = copy(rows);
    }

    void layer(Attention selfAttention, Attention crossAttention, FeedForward feedForward) {
        layers.add(new Layer(selfAttention, crossAttention, feedForward));
    }

    /** A copy of {@code x} that lives as long as the tape. */
    INDArray copy(INDArray x) {
        return keep(x.dup('c'));
    }

    /** {@code array}, now freed with the tape. */
    INDArray keep(INDArray array) {
        kept.add(array);
        return array;
    }

    /** Frees what it keeps now: the next step records its own. */
    @Override
    public void close() {
        kept.forEach(INDArray::close);
    }
}
