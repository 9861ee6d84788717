package dev.blip2dl4j.testing;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class FixtureTest {
    @Test
    void readsReferenceArraysOfBothTypes() {
        Fixture opt = Fixture.load("opt");
        INDArray pixels = opt.ref("pixel_values");
        assertEquals(DataType.FLOAT, pixels.dataType());
        assertArrayEquals(new long[]{1, 3, 32, 32}, pixels.shape());
        INDArray ids = opt.ref("input_ids");
        assertArrayEquals(new long[]{1, 10}, ids.shape());
        assertEquals(2, ids.getLong(0, 0));
        assertEquals(35, ids.getLong(0, 9));
        assertEquals(32, opt.weights().get("query_tokens").size(2));
    }
}
