package dev.blip2dl4j.compute;

import dev.blip2dl4j.compute.NativeKernels.Isa;

import java.nio.FloatBuffer;

/**
 * The optimizer's passes over the trained parameters, natively ({@code compute/src/main/c/optimizer.c}), at the row
 * passes' instruction-set level. {@link #sumOfSquares}: a gradient's, in double, in an order that does not depend on
 * the threads. {@link #adamw}: one AdamW update of a parameter array in place, each element as {@code m = beta1 m + (1 - beta1) g}, {@code v = beta2 v + (1 - beta2) g g},
 * {@code p = p decay + minusStepSize m / (sqrt(v) / correction2Sqrt + epsilon)}, every operation rounded to float
 * in that order, no fused multiply-adds: the same bits as the Java loop finetune's AdamW falls back to. Both only
 * where the library loaded ({@link #available()}; {@code -Dblip2.compute.path=portable} turns them off).
 */
public final class OptimizerKernels {
    private static final Isa ISA = Products.DISPATCHER.rowIsa();

    private OptimizerKernels() {
    }

    /** Whether the native passes run here. */
    public static boolean available() {
        return ISA != null;
    }

    /**
     * @param p the parameter, updated in place
     * @param g its gradient
     * @param m the first moment, updated in place
     * @param v the second moment, updated in place
     * @throws IllegalArgumentException when an array is not direct or the four differ in length
     * @throws IllegalStateException    when the native update does not run here
     */
    public static void adamw(FloatBuffer p, FloatBuffer g, FloatBuffer m, FloatBuffer v, float decay, float beta1,
                             float oneMinusBeta1, float beta2, float oneMinusBeta2, float minusStepSize,
                             float correction2Sqrt, float epsilon) {
        requireAvailable();
        int n = p.remaining();
        for (FloatBuffer array : new FloatBuffer[] {p, g, m, v}) {
            if (!array.isDirect() || array.remaining() != n) {
                throw new IllegalArgumentException("AdamW's arrays must be direct and of one length: " + n
                        + " parameters, got " + array.remaining() + (array.isDirect() ? "" : " on the heap"));
            }
        }
        NativeKernels.adamw(ISA, p, g, m, v, decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, minusStepSize,
                correction2Sqrt, epsilon);
    }

    /**
     * The sum of the squares of {@code x}'s elements, in double.
     *
     * @throws IllegalArgumentException when x is not direct
     * @throws IllegalStateException    when the native passes do not run here, or found no memory for their sums
     */
    public static double sumOfSquares(FloatBuffer x) {
        requireAvailable();
        if (!x.isDirect()) {
            throw new IllegalArgumentException("a sum of squares needs a direct array, got one on the heap");
        }
        double sum = NativeKernels.sumOfSquares(ISA, x);
        if (sum < 0) {
            throw new IllegalStateException("no memory for the sums of squares of " + x.remaining() + " floats");
        }
        return sum;
    }

    private static void requireAvailable() {
        if (ISA == null) {
            throw new IllegalStateException("the native optimizer passes do not run here (the native library did not"
                    + " load, or -D" + Dispatcher.PROPERTY + "=portable)");
        }
    }
}
