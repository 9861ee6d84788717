package dev.blip2dl4j.tensor;

/**
 * Symmetric int8: a group of values (a weight row, or a block of a row) is stored as int8 in [-127, 127] and one
 * float32 scale, value = int8 * scale, the scale the group's largest magnitude over 127. Rounding is to nearest,
 * ties to even, as PyTorch's quantizers round. -128 is never written, so that negation stays in range.
 */
public final class Int8Quantization {
    public static final int LEVELS = 127;

    private Int8Quantization() {
    }

    /**
     * Quantizes {@code count} values from {@code values[offset]} into {@code out[outOffset]} and returns their
     * scale; NaN where a value is not finite (no scale represents it; the caller names the tensor).
     */
    public static float quantize(float[] values, int offset, int count, byte[] out, int outOffset) {
        float max = 0;
        for (int i = 0; i < count; i++) {
            float v = values[offset + i];
            if (!Float.isFinite(v)) {
                return Float.NaN;
            }
            max = Math.max(max, Math.abs(v));
        }
        float scale = max / LEVELS;
        for (int i = 0; i < count; i++) {
            // an all-zero group keeps scale 0 and stores zeros (0 / 0 would be NaN)
            float q = scale == 0 ? 0 : (float) Math.rint(values[offset + i] / scale);
            out[outOffset + i] = (byte) Math.max(-LEVELS, Math.min(LEVELS, q));
        }
        return scale;
    }
}
