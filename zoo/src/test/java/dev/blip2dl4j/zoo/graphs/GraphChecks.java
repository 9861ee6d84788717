package dev.blip2dl4j.zoo.graphs;

import dev.blip2dl4j.zoo.Fixture;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Comparisons for graph tests that also print the measured difference, so a run shows the margins. */
final class GraphChecks {
    /** A row of a batch against the same input run alone: only float32 reordering may differ. */
    static final double BATCH_TOLERANCE = 1e-5;

    private GraphChecks() {
    }

    static void check(String what, INDArray expected, INDArray actual, double tolerance) {
        if (java.util.Arrays.equals(expected.shape(), actual.shape())) {
            INDArray difference = expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE));
            double diff = difference.amaxNumber().doubleValue();
            System.out.printf("%-70s max abs diff %.3e%n", what, diff);
        }
        Fixture.assertClose(what, expected, actual, tolerance);
    }
}
