package dev.blip2dl4j.graphs;

import dev.blip2dl4j.testing.Fixture;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Comparisons for graph (and eager) tests that also print the measured difference, so a run shows the margins. */
public final class GraphChecks {
    /** A row of a batch against the same input run alone: only float32 reordering may differ. */
    public static final double BATCH_TOLERANCE = 1e-5;
    /**
     * An eager execution against its graph (docs/DESIGN.md "Eager runtime and graphs"): the same math in another
     * float32 order.
     */
    public static final double EAGER_TOLERANCE = 1e-5;

    private GraphChecks() {
    }

    public static void check(String what, INDArray expected, INDArray actual, double tolerance) {
        if (java.util.Arrays.equals(expected.shape(), actual.shape())) {
            INDArray difference = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE));
            double diff = difference.amaxNumber().doubleValue();
            System.out.printf("%-70s max abs diff %.3e%n", what, diff);
        }
        Fixture.assertClose(what, expected, actual, tolerance);
    }
}
