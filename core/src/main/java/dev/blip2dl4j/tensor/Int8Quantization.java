package dev.blip2dl4j.tensor;

import java.util.Arrays;

/**
 * Symmetric int8: a group of values (a weight row, or a block of a row) is stored as int8 in [-127, 127] and one
 * float32 scale, value = int8 * scale, the scale the group's largest magnitude over 127. Rounding is to nearest,
 * ties to even, as PyTorch's quantizers round. -128 is never written, so that negation stays in range.
 */
public final class Int8Quantization {
    public static final int LEVELS = 127;
    private static final int INFINITY_BITS = 0x7f800000;
    private static final float ROUNDING = 0x1.8p23f;

    private Int8Quantization() {
    }

    /**
     * Quantizes {@code count} values from {@code values[offset]} into {@code out[outOffset]} and returns their
     * scale; NaN where a value is not finite (no scale represents it; the caller names the tensor).
     */
    public static float quantize(float[] values, int offset, int count, byte[] out, int outOffset) {
        // Java 17 vectorizes none of this with float min/max or a float-to-int step inside one loop (measured:
        // bench/README.md "Conversion"), so each loop holds one kind of work: the largest magnitude as the
        // largest of the sign-cleared bits (a non-negative float orders as its bits do; a NaN or an infinity
        // is larger than every finite value), then the rounding in float, then the clamp in int.
        int maxBits = 0;
        for (int i = 0; i < count; i++) {
            maxBits = Math.max(maxBits, Float.floatToRawIntBits(values[offset + i]) & 0x7fffffff);
        }
        if (maxBits >= INFINITY_BITS) {
            return Float.NaN;
        }
        float scale = Float.intBitsToFloat(maxBits) / LEVELS;
        if (scale == 0) {
            // an all-zero group keeps scale 0 and stores zeros (0 / 0 would be NaN)
            Arrays.fill(out, outOffset, outOffset + count, (byte) 0);
            return scale;
        }
        int[] rounded = new int[count];
        for (int i = 0; i < count; i++) {
            // Math.rint: adding and taking away 1.5 * 2^23 rounds to an integer, ties to even, for |q| < 2^22, and
            // |q| stays near 127 (above it only where a subnormal scale lost precision)
            rounded[i] = (int) ((values[offset + i] / scale + ROUNDING) - ROUNDING);
        }
        for (int i = 0; i < count; i++) {
            out[outOffset + i] = (byte) Math.max(-LEVELS, Math.min(LEVELS, rounded[i]));
        }
        return scale;
    }
}
