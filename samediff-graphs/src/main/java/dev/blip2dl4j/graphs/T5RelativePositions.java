package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.T5Config;
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
     * The bias {@code [1, heads, queries, keys]} for the stack's first block, whose table is
     * {@code <attentionPrefix>.relative_attention_bias.weight [buckets, heads]}; frozen (gathered).
     */
    public static SDVariable bias(Layers nn, T5Config config, String attentionPrefix, SDVariable queries,
                                  SDVariable keys, boolean bidirectional) {
        int maxDistance = config.relativeAttentionMaxDistance();
        SDVariable distance = nn.sd().expandDims(nn.arange(keys), 0).sub(nn.sd().expandDims(nn.arange(queries), 1));
        SDVariable tableIndex = nn.sd().math().clipByValue(distance, -maxDistance, maxDistance)
                .add(maxDistance).castTo(DataType.INT);
        // per-distance rows first, then rows by distance: M2.1's gather aborts the JVM for a rank-1
        // table with rank-2 indices (the bucket table looked up directly by [queries, keys])
        SDVariable byDistance = nn.sd().gather(nn.param(attentionPrefix + ".relative_attention_bias.weight"),
                nn.constant(Nd4j.createFromArray(bucketTable(bidirectional, config.relativeAttentionNumBuckets(), maxDistance))), 0);
        SDVariable values = nn.sd().gather(byDistance, tableIndex, 0);
        return nn.sd().expandDims(values.permute(2, 0, 1), 0);
    }

    /** Buckets of the distances {@code -maxDistance..maxDistance}, at index {@code distance + maxDistance}. */
    static int[] bucketTable(boolean bidirectional, int numBuckets, int maxDistance) {
        int[] table = new int[2 * maxDistance + 1];
        for (int d = -maxDistance; d <= maxDistance; d++) {
            table[d + maxDistance] = bucket(d, bidirectional, numBuckets, maxDistance);
        }
        return table;
    }

    /** transformers' {@code T5Attention._relative_position_bucket} for one distance {@code key - query}. */
    public static int bucket(int relativePosition, boolean bidirectional, int numBuckets, int maxDistance) {
        int bucket = 0;
        int distance;
        if (bidirectional) {
            numBuckets /= 2;
            if (relativePosition > 0) {
                bucket += numBuckets;
            }
            distance = Math.abs(relativePosition);
        } else {
            distance = -Math.min(relativePosition, 0);
        }
        int maxExact = numBuckets / 2;
        if (distance < maxExact) {
            return bucket + distance;
        }
        // float32 throughout, as the PyTorch original: log(d / maxExact) / log(maxDistance / maxExact)
        // with the divisor a Python double rounded to float, times the log buckets, truncated
        float ratio = (float) distance / (float) maxExact;
        float scaled = (float) Math.log(ratio) / (float) Math.log((double) maxDistance / maxExact);
        int large = maxExact + (int) (scaled * (float) (numBuckets - maxExact));
        return bucket + Math.min(large, numBuckets - 1);
    }
}
