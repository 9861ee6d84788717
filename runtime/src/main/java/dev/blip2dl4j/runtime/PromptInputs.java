package dev.blip2dl4j.runtime;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;

/**
 * BLIP-2's input to its language model in the 2023 hub layout: the projected Q-Former queries in front of the
 * prompt's token embeddings, and an attention mask with as many ones in front of the prompt's (the queries are
 * always attended). Generation and training assemble it here alike; the graphs' {@code Blip2Graph} builds the same
 * in SameDiff.
 */
public final class PromptInputs {
    private PromptInputs() {
    }

    /**
     * @param projected {@code [batch, queries, width]}: the projected queries
     * @param table     the token embedding {@code [vocab, width]}
     * @param ids       one row of token ids per sequence, all of one length
     * @return a new array {@code [batch, queries + length, width]}
     */
    public static INDArray embeddings(INDArray projected, INDArray table, long[][] ids) {
        int batch = (int) projected.size(0);
        int queries = (int) projected.size(1);
        int width = (int) projected.size(2);
        int length = ids.length == 0 ? 0 : ids[0].length;
        if (ids.length != batch || Arrays.stream(ids).anyMatch(row -> row.length != length)) {
            throw new IllegalArgumentException(batch + " rows of queries need as many rows of ids, all of one length; got "
                    + Arrays.stream(ids).map(row -> String.valueOf(row.length)).toList());
        }
        int seq = queries + length;
        INDArray embeds = Nd4j.createUninitialized(DataType.FLOAT, batch, seq, width);
        embeds.get(NDArrayIndex.all(), NDArrayIndex.interval(0, queries), NDArrayIndex.all()).assign(projected);
        INDArray rows = embeds.reshape(batch * seq, width);
        for (int b = 0; b < batch && length > 0; b++) {
            int[] tokens = Arrays.stream(ids[b]).mapToInt(Math::toIntExact).toArray();
            EagerLayers.gatherRows(table, tokens, rows.get(NDArrayIndex.interval((long) b * seq + queries,
                    (long) (b + 1) * seq), NDArrayIndex.all()), false);
        }
        return embeds;
    }

    /** {@code [batch, queries + length]}, float: ones for the queries, then {@code promptMask [batch, length]}. */
    public static INDArray attentionMask(int queries, INDArray promptMask) {
        long length = promptMask.size(1);
        INDArray mask = Nd4j.ones(DataType.FLOAT, promptMask.size(0), queries + length);
        if (length > 0) {
            mask.get(NDArrayIndex.all(), NDArrayIndex.interval(queries, queries + length))
                    .assign(promptMask.castTo(DataType.FLOAT));
        }
        return mask;
    }
}
