package dev.blip2dl4j.compute;

import dev.blip2dl4j.compute.NativeKernels.Isa;
import org.bytedeco.javacpp.FloatPointer;

/**
 * The per-row passes around a layer's products, each one native pass over a row-major float32 matrix in place
 * ({@code compute/src/main/c/rowkernels.c}): LayerNorm and RMSNorm, a bias added to every row, a bias with GELU's
 * exact erf form or its tanh form (times a gate where asked), a row softmax. They run at the native products'
 * instruction-set level ({@link Dispatcher});
 * where the library did not load (or {@code -Dblip2.compute.path=portable} forces Java loops), {@link #available()}
 * is false and the caller keeps its own loops. An eager model
 * pays one call per pass where an ND4J op chain paid a dispatch per op and a trip through memory per step
 * (docs/DESIGN.md "Compute layer").
 */
public final class RowKernels {
    private static final Isa ISA = Products.DISPATCHER.rowIsa();

    private RowKernels() {
    }

    /** Whether the native passes run here (else the caller's own loops do the work). */
    public static boolean available() {
        return ISA != null;
    }

    /**
     * LayerNorm over each row: {@code out = (x - mean) / sqrt(var + eps) * gain + shift} with the biased
     * variance; out may be x.
     *
     * @param gain  {@code [x.cols()]}
     * @param shift {@code [x.cols()]}
     */
    public static void layerNorm(FloatMatrix x, FloatPointer gain, FloatPointer shift, float eps, FloatMatrix out) {
        layerNorm(level(), x, gain, shift, eps, out);
    }

    static void layerNorm(Isa isa, FloatMatrix x, FloatPointer gain, FloatPointer shift, float eps, FloatMatrix out) {
        sameShape(x, out);
        NativeKernels.norm(isa, x, gain, shift, eps, out);
    }

    /** T5's RMSNorm over each row: {@code out = x / sqrt(mean(x^2) + eps) * gain}; out may be x. */
    public static void rmsNorm(FloatMatrix x, FloatPointer gain, float eps, FloatMatrix out) {
        rmsNorm(level(), x, gain, eps, out);
    }

    static void rmsNorm(Isa isa, FloatMatrix x, FloatPointer gain, float eps, FloatMatrix out) {
        sameShape(x, out);
        NativeKernels.norm(isa, x, gain, null, eps, out);
    }

    /** {@code x += row} on every row (a bias {@code [x.cols()]}). */
    public static void addRow(FloatMatrix x, FloatPointer row) {
        addRow(level(), x, row);
    }

    static void addRow(Isa isa, FloatMatrix x, FloatPointer row) {
        NativeKernels.addRow(isa, x, row);
    }

    /**
     * {@code x = gelu(x + bias) * gate}: {@link Gelu#ERF}'s {@code 0.5 v (1 + erf(v / sqrt 2))} (erf to float32
     * accuracy) or {@link Gelu#TANH}'s {@code 0.5 v (1 + tanh(sqrt(2 / pi) (v + 0.044715 v^3)))}.
     *
     * @param bias     {@code [x.cols()]}, or null
     * @param argument receives {@code x + bias}, GELU's argument (a backward pass's input), or null
     * @param gate     x's shape, or null: a gated feed-forward's second branch
     */
    public static void gelu(Gelu form, FloatMatrix x, FloatPointer bias, FloatMatrix argument, FloatMatrix gate) {
        gelu(level(), form, x, bias, argument, gate);
    }

    static void gelu(Isa isa, Gelu form, FloatMatrix x, FloatPointer bias, FloatMatrix argument, FloatMatrix gate) {
        if (argument != null) {
            sameShape(x, argument);
        }
        if (gate != null) {
            sameShape(x, gate);
        }
        NativeKernels.gelu(isa, form == Gelu.TANH, x, bias, argument, gate);
    }

    /** Each row of x replaced by its softmax, {@code exp(x - max) / sum}. */
    public static void softmax(FloatMatrix x) {
        softmax(level(), x);
    }

    static void softmax(Isa isa, FloatMatrix x) {
        NativeKernels.softmax(isa, x);
    }

    /** GELU's two forms, as transformers names them: {@code gelu} and {@code gelu_new}. */
    public enum Gelu {
        /** {@code 0.5 v (1 + erf(v / sqrt 2))}, the exact form. */
        ERF,
        /** {@code 0.5 v (1 + tanh(sqrt(2 / pi) (v + 0.044715 v^3)))}. */
        TANH
    }

    private static Isa level() {
        if (ISA == null) {
            throw new IllegalStateException("no native row kernels here: " + NativeKernels.problem());
        }
        return ISA;
    }

    private static void sameShape(FloatMatrix x, FloatMatrix out) {
        if (x.rows() != out.rows() || x.cols() != out.cols()) {
            throw new IllegalArgumentException("rows of " + x.rows() + " x " + x.cols() + " into " + out.rows()
                    + " x " + out.cols());
        }
    }
}
