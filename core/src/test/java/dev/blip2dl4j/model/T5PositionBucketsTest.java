package dev.blip2dl4j.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class T5PositionBucketsTest {
    /**
     * Where the bucket changes, going up from distance -600, for Flan-T5's 32 buckets and max distance
     * 128: printed by transformers' own T5Attention._relative_position_bucket (transformers 5.17,
     * torch 2.11 CPU, float32) over a 601 x 601 grid of key - query distances. The log-spaced
     * boundaries at 16, 32 and 64 are exact powers where float rounding decides the bucket.
     */
    private static final int[][] BIDIRECTIONAL = {{-600, 15}, {-90, 14}, {-63, 13}, {-45, 12}, {-31, 11},
            {-22, 10}, {-15, 9}, {-11, 8}, {-7, 7}, {-6, 6}, {-5, 5}, {-4, 4}, {-3, 3}, {-2, 2}, {-1, 1}, {0, 0},
            {1, 17}, {2, 18}, {3, 19}, {4, 20}, {5, 21}, {6, 22}, {7, 23}, {8, 24}, {12, 25}, {16, 26}, {23, 27},
            {32, 28}, {46, 29}, {64, 30}, {91, 31}};
    private static final int[][] CAUSAL = {{-600, 31}, {-112, 30}, {-98, 29}, {-86, 28}, {-76, 27}, {-66, 26},
            {-58, 25}, {-51, 24}, {-45, 23}, {-39, 22}, {-34, 21}, {-30, 20}, {-26, 19}, {-23, 18}, {-20, 17},
            {-18, 16}, {-15, 15}, {-14, 14}, {-13, 13}, {-12, 12}, {-11, 11}, {-10, 10}, {-9, 9}, {-8, 8}, {-7, 7},
            {-6, 6}, {-5, 5}, {-4, 4}, {-3, 3}, {-2, 2}, {-1, 1}, {0, 0}};

    @Test
    void bucketsMatchTransformers() {
        assertSteps(BIDIRECTIONAL, true);
        assertSteps(CAUSAL, false);
    }

    @Test
    void clampedTableCoversEveryDistance() {
        // the graph clamps distances to +-max_distance: beyond it the bucket must not change
        for (boolean bidirectional : new boolean[]{true, false}) {
            int[] table = T5PositionBuckets.table(bidirectional, 32, 128);
            assertEquals(T5PositionBuckets.bucket(-600, bidirectional, 32, 128), table[0]);
            assertEquals(T5PositionBuckets.bucket(600, bidirectional, 32, 128), table[table.length - 1]);
        }
    }

    private static void assertSteps(int[][] steps, boolean bidirectional) {
        for (int s = 0; s < steps.length; s++) {
            int end = s + 1 < steps.length ? steps[s + 1][0] : 601;
            for (int d = steps[s][0]; d < end; d++) {
                assertEquals(steps[s][1], T5PositionBuckets.bucket(d, bidirectional, 32, 128),
                        (bidirectional ? "bidirectional" : "causal") + " distance " + d);
            }
        }
    }
}
