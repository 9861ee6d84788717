package dev.blip2dl4j.tensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;

/**
 * Converts little-endian floating-point data between F64, F32, F16 and BF16, rounding to nearest-even
 * as PyTorch's {@code .half()} and {@code .bfloat16()} do. Widening (F16 or BF16 to F32) is exact.
 */
public final class FloatConversion {
    private FloatConversion() {
    }

    /**
     * Elements per step of the bulk paths: their int and short arrays stay in the first-level cache, and the
     * loops over them are what the JIT vectorises.
     */
    private static final int CHUNK = 2048;

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
        convert(ByteBuffer.wrap(src, srcOffset, count * from.size()), from, dst, dstOffset, to, count, roundThroughHalf);
    }

    /**
     * As {@link #convert(byte[], int, DType, byte[], int, DType, int, boolean)}, reading from {@code src}'s position
     * (a heap or direct buffer, whose position it advances past the elements read). Between float32 and the 16-bit
     * types, elements go through int and short arrays in chunks, bit for bit what the element-wise path gives
     * (a conversion checkpoint-sized: bench/README.md).
     */
    public static void convert(ByteBuffer src, DType from, byte[] dst, int dstOffset, DType to, int count,
                               boolean roundThroughHalf) {
        ByteBuffer in = src.slice(src.position(), count * from.size()).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer out = ByteBuffer.wrap(dst, dstOffset, count * to.size()).slice().order(ByteOrder.LITTLE_ENDIAN);
        src.position(src.position() + count * from.size());
        if (!roundThroughHalf && from == DType.F32 && (to == DType.BF16 || to == DType.F16)) {
            narrow(in.asIntBuffer(), out.asShortBuffer(), to, count);
            return;
        }
        if (!roundThroughHalf && to == DType.F32 && (from == DType.BF16 || from == DType.F16)) {
            widen(in.asShortBuffer(), out.asIntBuffer(), from, count);
            return;
        }
        int fromSize = from.size();
        int toSize = to.size();
        for (int i = 0; i < count; i++) {
            float value = read(in, i * fromSize, from);
            if (roundThroughHalf) {
                value = halfToFloat(floatToHalf(value));
            }
            write(out, i * toSize, to, value);
        }
    }

    private static void narrow(IntBuffer in, ShortBuffer out, DType to, int count) {
        int[] bits = new int[Math.min(CHUNK, count)];
        short[] narrow = new short[bits.length];
        for (int done = 0; done < count; ) {
            int n = Math.min(bits.length, count - done);
            in.get(bits, 0, n);
            if (to == DType.BF16) {
                // two loops: the JIT vectorises each, but not one that both shifts ints and stores shorts
                for (int i = 0; i < n; i++) {
                    bits[i] = bfloat16Bits(bits[i]);
                }
                for (int i = 0; i < n; i++) {
                    narrow[i] = (short) bits[i];
                }
            } else {
                for (int i = 0; i < n; i++) {
                    narrow[i] = floatToHalf(Float.intBitsToFloat(bits[i]));
                }
            }
            out.put(narrow, 0, n);
            done += n;
        }
    }

    private static void widen(ShortBuffer in, IntBuffer out, DType from, int count) {
        short[] narrow = new short[Math.min(CHUNK, count)];
        int[] bits = new int[narrow.length];
        for (int done = 0; done < count; ) {
            int n = Math.min(narrow.length, count - done);
            in.get(narrow, 0, n);
            if (from == DType.BF16) {
                for (int i = 0; i < n; i++) {
                    bits[i] = narrow[i] << 16;
                }
            } else {
                for (int i = 0; i < n; i++) {
                    bits[i] = Float.floatToRawIntBits(halfToFloat(narrow[i]));
                }
            }
            out.put(bits, 0, n);
            done += n;
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
        return (short) bfloat16Bits(Float.floatToRawIntBits(value));
    }

    /**
     * The bfloat16 bits (in the low 16) of float32 bits: rounds to nearest-even; a NaN keeps its sign and top payload
     * bits and is made quiet. Without branches, so that a loop over many is vectorised: {@code nan} is all ones where
     * the magnitude is above infinity's.
     */
    private static int bfloat16Bits(int bits) {
        int nan = (0x7f800000 - (bits & 0x7fffffff)) >> 31;
        int rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
        int quiet = (bits >>> 16) | 0x40;
        return (rounded & ~nan) | (quiet & nan);
    }
}
