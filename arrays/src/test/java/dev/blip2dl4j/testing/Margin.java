package dev.blip2dl4j.testing;

import org.nd4j.linalg.api.ndarray.INDArray;

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
        worst = Math.max(worst, Closeness.assertClose(what + ", " + where, expected, actual, tolerance));
    }

    public void print() {
        System.out.printf("%-75s max abs diff %.3e%n", what, worst);
    }
}
