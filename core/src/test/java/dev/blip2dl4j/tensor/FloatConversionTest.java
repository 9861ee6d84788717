package dev.blip2dl4j.tensor;

import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FloatConversionTest {

    @Test
    void everyHalfSurvivesTheRoundTripThroughFloat() {
        for (int h = 0; h < 0x10000; h++) {
            float f = FloatConversion.halfToFloat((short) h);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(FloatConversion.halfToFloat(FloatConversion.floatToHalf(f))));
            } else {
                assertEquals((short) h, FloatConversion.floatToHalf(f), "half 0x" + Integer.toHexString(h));
            }
        }
    }

    @Test
    void floatToHalfRoundsToTheNearestHalfTiesToEven() {
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 200_000; i++) {
            // values across the whole half range, subnormals included
            float f = (float) ((random.nextDouble() * 2 - 1) * Math.pow(2, random.nextInt(-26, 17)));
            short h = FloatConversion.floatToHalf(f);
            double chosen = FloatConversion.halfToFloat(h);
            if (Double.isInfinite(chosen)) {
                // past the halfway point between the largest half (65504) and 2^16
                assertTrue(Math.abs(f) >= 65520f, f + " overflowed");
                continue;
            }
            double error = Math.abs(chosen - f);
            for (int neighbour : new int[]{(h & 0xffff) - 1, (h & 0xffff) + 1}) {
                float other = FloatConversion.halfToFloat((short) neighbour);
                if (Float.isFinite(other) && Math.signum(other) * Math.signum(chosen) >= 0) {
                    double otherError = Math.abs(other - f);
                    assertTrue(error < otherError || (error == otherError && (h & 1) == 0),
                            f + " -> " + chosen + " but " + other + " is nearer (or even)");
                }
            }
        }
    }

    @Test
    void halfOverflowAndSpecialValues() {
        assertEquals((short) 0x7c00, FloatConversion.floatToHalf(65520f)); // rounds up to infinity
        assertEquals((short) 0x7bff, FloatConversion.floatToHalf(65519f));
        assertEquals((short) 0xfc00, FloatConversion.floatToHalf(Float.NEGATIVE_INFINITY));
        assertEquals((short) 0x8000, FloatConversion.floatToHalf(-0f));
        assertEquals((short) 0x0001, FloatConversion.floatToHalf(0x1p-24f));
        assertEquals((short) 0x0000, FloatConversion.floatToHalf(0x1p-25f)); // tie to even: zero
    }

    @Test
    void bfloat16RoundsToNearestEven() {
        assertEquals((short) 0x3f80, FloatConversion.floatToBfloat16(1f));
        assertEquals((short) 0x3f80, FloatConversion.floatToBfloat16(Float.intBitsToFloat(0x3f808000))); // tie, even
        assertEquals((short) 0x3f82, FloatConversion.floatToBfloat16(Float.intBitsToFloat(0x3f818000))); // tie, odd -> up
        assertEquals((short) 0x3f81, FloatConversion.floatToBfloat16(Float.intBitsToFloat(0x3f808001)));
        assertTrue(Float.isNaN(Float.intBitsToFloat(FloatConversion.floatToBfloat16(Float.NaN) << 16)));
    }

    @Test
    void convertsBuffersBetweenTypes() {
        byte[] f32 = new byte[8];
        java.nio.ByteBuffer.wrap(f32).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2.25f);
        byte[] f16 = new byte[4];
        FloatConversion.convert(f32, 0, DType.F32, f16, 0, DType.F16, 2, false);
        byte[] back = new byte[8];
        FloatConversion.convert(f16, 0, DType.F16, back, 0, DType.F32, 2, false);
        assertEquals(java.util.Arrays.toString(f32), java.util.Arrays.toString(back));
    }

    /** Bit patterns where conversions differ: zeros, subnormals, ties, the largest finite values, infinities, NaNs. */
    private static final int[] SPECIAL_FLOATS = {0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00400000,
            0x3f808000, 0x3f818000, 0x3f808001, 0xbf817fff, 0x7f7fffff, 0x7f7f8000, 0xff7f8000, 0x7f800000, 0xff800000,
            0x7fc00000, 0xffc00000, 0x7f800001, 0xff80ffff, 0x7fbfffff, 0x33800000, 0x33000000, 0x387fe000, 0x477ff000,
            0x477fefff, 0x38800000};

    /**
     * The bulk paths (float32 to and from the 16-bit types, in chunks through int and short arrays) against the
     * element-wise definitions, on every special value and on lengths around the chunk size, from heap and direct
     * buffers at an offset.
     */
    @Test
    void bulkConversionIsTheElementWiseOneBitForBit() {
        SplittableRandom random = new SplittableRandom(11);
        for (int count : new int[]{1, 3, 7, 2047, 2048, 2049, 5000}) {
            int[] bits = new int[count];
            for (int i = 0; i < count; i++) {
                bits[i] = random.nextInt(3) == 0 ? SPECIAL_FLOATS[random.nextInt(SPECIAL_FLOATS.length)] : random.nextInt();
            }
            for (DType to : new DType[]{DType.BF16, DType.F16}) {
                for (boolean direct : new boolean[]{false, true}) {
                    ByteBuffer src = buffer(direct, 3 + count * 4);
                    src.position(3);
                    for (int b : bits) {
                        src.putInt(b);
                    }
                    src.position(3);
                    byte[] out = new byte[5 + count * 2];
                    FloatConversion.convert(src, DType.F32, out, 5, to, count, false);
                    assertEquals(3 + count * 4, src.position());
                    ByteBuffer stored = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
                    for (int i = 0; i < count; i++) {
                        float f = Float.intBitsToFloat(bits[i]);
                        short expected = to == DType.BF16 ? FloatConversion.floatToBfloat16(f) : FloatConversion.floatToHalf(f);
                        assertEquals(expected, stored.getShort(5 + 2 * i), to + " of 0x" + Integer.toHexString(bits[i]));
                    }
                    byte[] back = new byte[count * 4];
                    FloatConversion.convert(out, 5, to, back, 0, DType.F32, count, false);
                    ByteBuffer widened = ByteBuffer.wrap(back).order(ByteOrder.LITTLE_ENDIAN);
                    for (int i = 0; i < count; i++) {
                        short half = stored.getShort(5 + 2 * i);
                        float expected = to == DType.BF16 ? Float.intBitsToFloat((half & 0xffff) << 16)
                                : FloatConversion.halfToFloat(half);
                        assertEquals(Float.floatToRawIntBits(expected), widened.getInt(4 * i), to + " 0x"
                                + Integer.toHexString(half & 0xffff) + " widened");
                    }
                }
            }
        }
    }

    /** The branch-free rounding against the plain rule (NaN apart, add the bias and truncate) over the bit space. */
    @Test
    void bfloat16IsThePlainRuleOverTheBitSpace() {
        for (int high = 0; high < 0x10000; high++) {
            for (int low : new int[]{0, 1, 0x7fff, 0x8000, 0x8001, 0xffff, high * 0x9e37 & 0xffff}) {
                int bits = high << 16 | low;
                float f = Float.intBitsToFloat(bits);
                short plain = Float.isNaN(f) ? (short) ((bits >>> 16) | 0x40)
                        : (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
                assertEquals(plain, FloatConversion.floatToBfloat16(f), "0x" + Integer.toHexString(bits));
            }
        }
    }

    @Test
    void bfloat16KeepsTheSignAndPayloadOfNaNsAndMakesThemQuiet() {
        assertEquals((short) 0x7fc0, FloatConversion.floatToBfloat16(Float.intBitsToFloat(0x7f800001)));
        assertEquals((short) 0xffc0, FloatConversion.floatToBfloat16(Float.intBitsToFloat(0xff80ffff)));
        assertEquals((short) 0x7fff, FloatConversion.floatToBfloat16(Float.intBitsToFloat(0x7fffffff)));
        assertEquals((short) 0x7f80, FloatConversion.floatToBfloat16(Float.POSITIVE_INFINITY));
        assertEquals((short) 0x7f80, FloatConversion.floatToBfloat16(Float.intBitsToFloat(0x7f7f8000))); // tie, odd: up
        assertEquals((short) 0x8000, FloatConversion.floatToBfloat16(-0f));
        assertEquals((short) 0x0000, FloatConversion.floatToBfloat16(Float.intBitsToFloat(0x00008000))); // tie, even
        assertEquals((short) 0x0001, FloatConversion.floatToBfloat16(Float.intBitsToFloat(0x00008001)));
    }

    private static ByteBuffer buffer(boolean direct, int size) {
        return (direct ? ByteBuffer.allocateDirect(size) : ByteBuffer.allocate(size)).order(ByteOrder.LITTLE_ENDIAN);
    }
}
