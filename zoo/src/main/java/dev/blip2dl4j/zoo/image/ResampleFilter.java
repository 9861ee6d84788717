package dev.blip2dl4j.zoo.image;

import java.util.function.DoubleUnaryOperator;

/**
 * Pillow's resampling filters under the numbers transformers' {@code PILImageResampling} (and so a
 * {@code preprocessor_config.json}'s {@code resample}) uses. Each convolution filter is Pillow's kernel
 * (Resample.c) over its support; NEAREST is no convolution but a pixel pick ({@link PillowResize}).
 * The kernels evaluate in double precision exactly as Pillow's C does, since the fixed-point weights
 * are rounded from them.
 */
public enum ResampleFilter {
    NEAREST(0, 0, x -> 0),
    LANCZOS(1, 3, ResampleFilter::lanczos),
    BILINEAR(2, 1, ResampleFilter::bilinear),
    BICUBIC(3, 2, ResampleFilter::bicubic),
    BOX(4, 0.5, ResampleFilter::box),
    HAMMING(5, 1, ResampleFilter::hamming);

    private final int pillowCode;
    private final double support;
    private final DoubleUnaryOperator kernel;

    ResampleFilter(int pillowCode, double support, DoubleUnaryOperator kernel) {
        this.pillowCode = pillowCode;
        this.support = support;
        this.kernel = kernel;
    }

    public int pillowCode() {
        return pillowCode;
    }

    double support() {
        return support;
    }

    double weight(double x) {
        return kernel.applyAsDouble(x);
    }

    /** The filter Pillow numbers {@code code}; null when there is none. */
    public static ResampleFilter ofPillowCode(int code) {
        for (ResampleFilter f : values()) {
            if (f.pillowCode == code) return f;
        }
        return null;
    }

    private static double box(double x) {
        return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
    }

    private static double bilinear(double x) {
        x = Math.abs(x);
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    /** Keys' cubic convolution with a = -0.5, written in Pillow's factored form to round the same. */
    private static double bicubic(double x) {
        final double a = -0.5;
        x = Math.abs(x);
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    private static double hamming(double x) {
        x = Math.abs(x);
        if (x == 0.0) return 1.0;
        if (x >= 1.0) return 0.0;
        x = x * Math.PI;
        // Pillow's constants are C floats (0.54f, 0.46f), widened to double
        return Math.sin(x) / x * (0.54f + 0.46f * Math.cos(x));
    }

    private static double lanczos(double x) {
        return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
    }

    private static double sinc(double x) {
        if (x == 0.0) return 1.0;
        x = x * Math.PI;
        return Math.sin(x) / x;
    }
}
