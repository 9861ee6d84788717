package dev.blip2dl4j.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Converts little-endian floating-point data between F64, F32, F16 and BF16, rounding to nearest-even
 * as PyTorch's {@code .half()} and {@code .bfloat16()} do. Widening (F16 or BF16 to F32) is exact.
 */
public final class FloatConversion {
    private FloatConversion() {
    }

    /**
     * Converts {@code count} elements.
     *
     * @param roundThroughHalf first round every value to float16 and back: LAVIS stores the EVA ViT's
     *                         linear layers in fp16 ({@code vit_precision: fp16}), so the reference
     *                         weights are the fp16-rounded values
     */
    public static void convert(byte[] src, int srcOffset, DType from, byte[] dst, int dstOffset, DType to,
                               int count, boolean roundThroughHalf) {
        if (from == to && !roundThroughHalf) {
            System.arraycopy(src, srcOffset, dst, dstOffset, count * from.size()); // bit for bit, NaNs included
            return;
        }
        ByteBuffer in = ByteBuffer.wrap(src).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer out = ByteBuffer.wrap(dst).order(ByteOrder.LITTLE_ENDIAN);
        int fromSize = from.size();
        int toSize = to.size();
        for (int i = 0; i < count; i++) {
            float value = read(in, srcOffset + i * fromSize, from);
            if (roundThroughHalf) {
                value = halfToFloat(floatToHalf(value));
            }
            write(out, dstOffset + i * toSize, to, value);
        }
    }

    private static float read(ByteBuffer in, int at, DType type) {
        return switch (type) {
            case F32 -> in.getFloat(at);
            case F16 -> halfToFloat(in.getShort(at));
            case BF16 -> Float.intBitsToFloat((in.getShort(at) & 0xffff) << 16);
            case F64 -> (float) in.getDouble(at);
            default -> throw new IllegalArgumentException(type + " is not a floating-point type");
        };
    }

    private static void write(ByteBuffer out, int at, DType type, float value) {
        switch (type) {
            case F32 -> out.putFloat(at, value);
            case F16 -> out.putShort(at, floatToHalf(value));
            case BF16 -> out.putShort(at, floatToBfloat16(value));
            case F64 -> out.putDouble(at, value);
            default -> throw new IllegalArgumentException(type + " is not a floating-point type");
        }
    }

    public static float halfToFloat(short half) {
        int h = half & 0xffff;
        int sign = (h & 0x8000) << 16;
        int exponent = (h >>> 10) & 0x1f;
        int mantissa = h & 0x3ff;
        if (exponent == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
        }
        if (exponent == 0) {
            // subnormal (or zero): mantissa * 2^-24, exact in float
            float magnitude = mantissa * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
    }

    public static short floatToHalf(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int exponent = (bits >>> 23) & 0xff;
        int mantissa = bits & 0x7fffff;
        if (exponent == 0xff) {
            // infinity stays infinity; NaN stays a (quiet) NaN
            return (short) (sign | 0x7c00 | (mantissa != 0 ? 0x200 | (mantissa >>> 13) : 0));
        }
        int halfExponent = exponent - 112;
        if (halfExponent >= 0x1f) {
            return (short) (sign | 0x7c00);
        }
        if (halfExponent <= 0) {
            if (halfExponent < -10) {
                return (short) sign;
            }
            // subnormal half: shift the implicit-one mantissa into place, rounding to nearest-even
            int full = mantissa | 0x800000;
            int shift = 14 - halfExponent;
            int rounded = full >>> shift;
            int remainder = full & ((1 << shift) - 1);
            int halfway = 1 << (shift - 1);
            if (remainder > halfway || (remainder == halfway && (rounded & 1) != 0)) {
                rounded++;
            }
            return (short) (sign | rounded);
        }
        int rounded = (halfExponent << 10) | (mantissa >>> 13);
        int remainder = mantissa & 0x1fff;
        if (remainder > 0x1000 || (remainder == 0x1000 && (rounded & 1) != 0)) {
            rounded++; // may carry into the exponent, and up to infinity: both correct
        }
        return (short) (sign | rounded);
    }

    public static short floatToBfloat16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int roundingBias = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }
}
