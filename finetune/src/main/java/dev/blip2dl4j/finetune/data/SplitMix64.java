package dev.blip2dl4j.finetune.data;

/**
 * The random numbers of training (data order, augmentation, splits): SplitMix64 (Steele, Lea and Flood,
 * 2014; the generator behind {@link java.util.SplittableRandom}), chosen because its whole state is one
 * {@code long} that a checkpoint can save and resume can restore, which {@code SplittableRandom} does not
 * expose.
 */
public final class SplitMix64 {
    private static final long GOLDEN_GAMMA = 0x9e3779b97f4a7c15L;
    private long state;

    public SplitMix64(long state) {
        this.state = state;
    }

    /** A generator for one purpose of one seed (an epoch's order, say), independent of the others. */
    public static SplitMix64 derived(long seed, long purpose) {
        return new SplitMix64(mix(seed ^ mix(purpose + GOLDEN_GAMMA)));
    }

    /** Everything a checkpoint needs to continue the sequence. */
    public long state() {
        return state;
    }

    public long nextLong() {
        state += GOLDEN_GAMMA;
        return mix(state);
    }

    /** Uniform in [0, 1), 53 bits. */
    public double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    /** Uniform in [0, bound), without modulo bias (63-bit draws; the last, incomplete block is redrawn). */
    public int nextInt(int bound) {
        if (bound <= 0) {
            throw new IllegalArgumentException("bound must be positive, not " + bound);
        }
        for (; ; ) {
            long u = nextLong() >>> 1;
            long r = u % bound;
            if (u - r + (bound - 1) >= 0) {
                return (int) r;
            }
        }
    }

    /** A uniformly random order of 0 .. n-1 (Fisher-Yates). */
    public static int[] permutation(int n, SplitMix64 random) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        return order;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
