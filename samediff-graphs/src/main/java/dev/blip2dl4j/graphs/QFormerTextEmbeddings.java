package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.Blip2Parameters;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The Q-Former's text embeddings (transformers' {@code Blip2TextEmbeddings}): word plus absolute position
 * embeddings, nothing else. They belong to the retrieval model ({@code embeddings.*}), not to the Q-Former,
 * and carry no LayerNorm of their own: the Q-Former's {@code qformer.layernorm} normalises them together
 * with the queries.
 */
public final class QFormerTextEmbeddings {
    private QFormerTextEmbeddings() {
    }

    /** {@code inputIds [batch, seq]} (integer ids) to {@code [batch, seq, hidden]}, positions counted from 0. */
    public static SDVariable build(Layers nn, SDVariable inputIds) {
        SameDiff sd = nn.sd();
        // gather is forward-only in M2.1: fine, the retrieval heads only run inference
        SDVariable words = sd.gather(nn.param(Blip2Parameters.textWordEmbeddings()), inputIds, 0);
        SDVariable positionIds = sd.range(nn.constant(Nd4j.scalar(0L)), nn.size(inputIds, 1),
                nn.constant(Nd4j.scalar(1L)), DataType.INT64);
        SDVariable positions = sd.gather(nn.param(Blip2Parameters.textPositionEmbeddings()), positionIds, 0);
        return words.add(positions);
    }
}
