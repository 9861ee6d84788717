package dev.blip2dl4j.tensor;

import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import org.junit.jupiter.api.Test;

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
}
