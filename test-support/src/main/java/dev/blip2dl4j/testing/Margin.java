package dev.blip2dl4j.testing;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

/**
 * Closeness checks that remember the largest difference seen, so that a test comparing many steps
 * prints one line with its margin instead of one per comparison.
 */
public final class Margin {
    private final String what;
    private double worst;

    public Margin(String what) {
        this.what = what;
    }

    public void check(String where, INDArray expected, INDArray actual, double tolerance) {
        Fixture.assertClose(what + ", " + where, expected, actual, tolerance);
        if (Arrays.equals(expected.shape(), actual.shape())) {
            worst = Math.max(worst, expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue());
        }
    }

    public void print() {
        System.out.printf("%-75s max abs diff %.3e%n", what, worst);
    }
}
