package dev.blip2dl4j.model;

/**
 * T5's relative position buckets: each (query, key) pair of an attention looks up a learned per-head bias by the
 * bucket of {@code key - query}. Buckets are exact for small distances and logarithmic up to
 * {@code relative_attention_max_distance}; the encoder distinguishes left from right (bidirectional), the decoder
 * only looks back. Both runtimes take their buckets from here; the arithmetic is done exactly as transformers does
 * it in float32 (the log-spaced boundaries at 16, 32, 64 land on integers, where a different rounding would change
 * the bucket).
 */
public final class T5PositionBuckets {
    private T5PositionBuckets() {
    }

    /** Buckets of the distances {@code -maxDistance..maxDistance}, at index {@code distance + maxDistance}. */
    public static int[] table(boolean bidirectional, int numBuckets, int maxDistance) {
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
