package dev.blip2dl4j.tensor;

/** Arithmetic on tensor shapes that a file may have made absurd: exact, or an ArithmeticException. */
public final class Shapes {
    private Shapes() {
    }

    /** The number of elements of {@code shape}; throws ArithmeticException where it does not fit a long. */
    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
