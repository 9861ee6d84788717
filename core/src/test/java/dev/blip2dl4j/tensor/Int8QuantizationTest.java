package dev.blip2dl4j.tensor;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Int8QuantizationTest {
    @Test
    void everyValueWithinHalfAStepOfItsScale() {
        Random random = new Random(7);
        for (int count : new int[]{1, 3, 64, 127, 1000}) {
            float[] values = new float[count + 2];
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) (random.nextGaussian() * 0.02);
            }
            byte[] out = new byte[count + 1];
            float scale = Int8Quantization.quantize(values, 2, count, out, 1);
            float max = 0;
            for (int i = 0; i < count; i++) {
                max = Math.max(max, Math.abs(values[2 + i]));
            }
            assertEquals(max / 127, scale);
            for (int i = 0; i < count; i++) {
                assertTrue(out[1 + i] >= -127, "never -128");
                float error = Math.abs(out[1 + i] * scale - values[2 + i]);
                assertTrue(error <= scale / 2 * 1.0001f, count + ": " + error + " > half of " + scale);
            }
            assertEquals(0, out[0], "nothing written before the offset");
        }
    }

    @Test
    void theLargestMagnitudeIsExactlyPlusOrMinus127() {
        float[] values = {0.5f, -2f, 1f, 0f};
        byte[] out = new byte[4];
        float scale = Int8Quantization.quantize(values, 0, 4, out, 0);
        assertEquals(2f / 127, scale);
        assertEquals(-127, out[1]);
        assertEquals(32, out[0]); // 0.5 / (2/127) = 31.75
        assertEquals(Math.rint(1f / scale), out[2]);
        assertEquals(0, out[3]);
    }

    @Test
    void zerosKeepScaleZeroAndNonFiniteValuesHaveNoScale() {
        byte[] out = new byte[3];
        assertEquals(0f, Int8Quantization.quantize(new float[3], 0, 3, out, 0));
        assertEquals(0, out[0] | out[1] | out[2]);
        assertTrue(Float.isNaN(Int8Quantization.quantize(new float[]{1, Float.NaN}, 0, 2, out, 0)));
        assertTrue(Float.isNaN(Int8Quantization.quantize(new float[]{Float.NEGATIVE_INFINITY}, 0, 1, out, 0)));
    }
}
