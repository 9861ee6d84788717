package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.model.T5PositionBuckets;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * T5's relative position bias: each (query, key) pair looks up a learned per-head bias by the bucket
 * of {@code key - query}. Buckets are exact for small distances and logarithmic up to
 * {@code relative_attention_max_distance}; the encoder distinguishes left from right (bidirectional),
 * the decoder only looks back.
 *
 * <p>The bucket depends only on the distance, and every distance of at least max_distance falls in the
 * last bucket, so the graph clamps the distance to {@code [-max_distance, max_distance]} and looks the
 * bucket up in a table computed here once: sequence lengths stay graph dimensions, and the bucket
 * arithmetic is done in Java exactly as transformers does it in float32 (the log-spaced boundaries at
 * 16, 32, 64 land on integers, where a different rounding would change the bucket).
 */
public final class T5RelativePositions {
    private T5RelativePositions() {
    }

    /**
     * The bias {@code [1, heads, queries, keys]} for the stack's first block, whose table is the parameter
     * {@code table [buckets, heads]}; frozen (gathered).
     */
    public static SDVariable bias(Layers nn, T5Config config, String table, SDVariable queries,
                                  SDVariable keys, boolean bidirectional) {
        int maxDistance = config.relativeAttentionMaxDistance();
        SDVariable distance = nn.sd().expandDims(nn.arange(keys), 0).sub(nn.sd().expandDims(nn.arange(queries), 1));
        SDVariable tableIndex = nn.sd().math().clipByValue(distance, -maxDistance, maxDistance)
                .add(maxDistance).castTo(DataType.INT);
        // per-distance rows first, then rows by distance: M2.1's gather aborts the JVM for a rank-1
        // table with rank-2 indices (the bucket table looked up directly by [queries, keys])
        SDVariable byDistance = nn.sd().gather(nn.param(table),
                nn.constant(Nd4j.createFromArray(T5PositionBuckets.table(bidirectional, config.relativeAttentionNumBuckets(), maxDistance))), 0);
        SDVariable values = nn.sd().gather(byDistance, tableIndex, 0);
        return nn.sd().expandDims(values.permute(2, 0, 1), 0);
    }
}
