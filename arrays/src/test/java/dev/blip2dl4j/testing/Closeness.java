package dev.blip2dl4j.testing;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How close computed arrays must be to what they are compared with, and the assertions that say by how much they
 * differ. {@link Margin} keeps the largest difference over many comparisons.
 */
public final class Closeness {
    /** Activations and logits against the reference: fixtures/README.md "Tolerances". */
    public static final double ACTIVATION_TOLERANCE = 1e-4;
    /** A loss against the reference: fixtures/README.md "Tolerances". */
    public static final double LOSS_TOLERANCE = 1e-5;
    /** A row of a batch against the same input run alone: only float32 reordering may differ. */
    public static final double BATCH_TOLERANCE = 1e-5;
    /**
     * An eager execution against its graph (docs/DESIGN.md "Eager runtime and graphs"): the same math in another
     * float32 order.
     */
    public static final double EAGER_TOLERANCE = 1e-5;

    private Closeness() {
    }

    /** The largest difference of two elements, once the shapes are known to agree. */
    public static double maxAbsDiff(String what, INDArray expected, INDArray actual) {
        assertArrayEquals(expected.shape(), actual.shape(), what + " shape");
        return expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    /** Same shape, and every element within {@code tolerance}; the message and the result give the worst difference. */
    public static double assertClose(String what, INDArray expected, INDArray actual, double tolerance) {
        double diff = maxAbsDiff(what, expected, actual);
        assertTrue(diff <= tolerance, what + ": max abs diff " + diff + " > " + tolerance);
        return diff;
    }

    /** {@link #assertClose}, printing the difference, so that a run shows the margins. */
    public static void check(String what, INDArray expected, INDArray actual, double tolerance) {
        System.out.printf("%-70s max abs diff %.3e%n", what, assertClose(what, expected, actual, tolerance));
    }

    /**
     * Gradients and AdamW results: every element within {@code 1e-5 + 1e-3 |expected|} (fixtures/README.md
     * "Tolerances"); returns the largest absolute difference.
     */
    public static double assertWithinReference(String what, INDArray expected, INDArray actual) {
        assertArrayEquals(expected.shape(), actual.shape(), what + " shape");
        INDArray e = expected.castTo(DataType.DOUBLE);
        INDArray diff = Transforms.abs(e.sub(actual.castTo(DataType.DOUBLE)), false);
        double worstExcess = diff.sub(Transforms.abs(e, true).muli(1e-3)).maxNumber().doubleValue();
        double maxDiff = diff.maxNumber().doubleValue();
        assertTrue(worstExcess <= 1e-5, what + ": max abs diff " + maxDiff + " exceeds 1e-5 + 1e-3 |ref|");
        return maxDiff;
    }
}
