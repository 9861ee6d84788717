package dev.blip2dl4j.finetune;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** LAVIS's linear_warmup_cosine_lr: warmup by iteration in epoch 0, then a cosine over epochs down to min-lr. */
class LinearWarmupCosineScheduleTest {
    @Test
    void warmsUpLinearlyThenFollowsTheCosineToTheMinimum() {
        LinearWarmupCosineSchedule s = new LinearWarmupCosineSchedule(1e-4, 1e-5, 4, 100, 1e-6);
        assertEquals(1e-6, s.valueAt(0, 0), 1e-15);
        assertEquals(1e-6 + (1e-4 - 1e-6) * 0.5, s.valueAt(50, 0), 1e-15);
        assertEquals(1e-4, s.valueAt(100, 0), 1e-15);
        assertEquals(1e-4, s.valueAt(5000, 0), 1e-15, "after warmup, the peak for the rest of epoch 0");
        assertEquals((1e-4 - 1e-5) * 0.5 * (1 + Math.cos(Math.PI / 4)) + 1e-5, s.valueAt(0, 1), 1e-15);
        assertEquals((1e-4 - 1e-5) * 0.5 * (1 + Math.cos(Math.PI / 4)) + 1e-5, s.valueAt(77, 1), 1e-15, "constant within an epoch");
        assertEquals(1e-5 + (1e-4 - 1e-5) * 0.5, s.valueAt(0, 2), 1e-15);
        assertEquals(1e-5, s.valueAt(0, 4), 1e-15, "the minimum at the end");
        double previous = Double.MAX_VALUE;
        for (int epoch = 1; epoch <= 4; epoch++) {
            double lr = s.valueAt(0, epoch);
            assertEquals(true, lr < previous && lr >= 1e-5, "decreasing towards min-lr");
            previous = lr;
        }
        assertEquals(1e-4, new LinearWarmupCosineSchedule(1e-4, 0, 3, 0, 1e-4).valueAt(0, 0), 1e-15);
    }
}
