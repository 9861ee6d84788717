package dev.blip2dl4j.finetune;

import org.nd4j.linalg.schedule.ISchedule;

/**
 * LAVIS's {@code linear_warmup_cosine_lr} (lavis/common/optims.py), the learning rate of BLIP-2's
 * fine-tuning configs. In epoch 0 the rate rises linearly from the warmup start to {@code initLr} over
 * {@code warmupSteps} iterations and then stays there; from epoch 1 on it follows a cosine over epochs,
 * constant within an epoch:
 * <pre>
 * epoch 0:  min(initLr, warmupStartLr + (initLr - warmupStartLr) * iteration / max(warmupSteps, 1))
 * epoch e:  (initLr - minLr) * 0.5 * (1 + cos(pi * e / maxEpoch)) + minLr
 * </pre>
 * An iteration is one micro-batch, as in LAVIS's training loop (which sets the rate before every
 * micro-batch, so an accumulated step uses the rate of its last micro-batch). As a DL4J {@link ISchedule},
 * {@code valueAt(iteration, epoch)}; in epoch 0, where alone the iteration matters, the count since the
 * start of training is the count within the epoch.
 */
public final class LinearWarmupCosineSchedule implements ISchedule {
    private static final long serialVersionUID = 1L;

    private final double initLr;
    private final double minLr;
    private final int maxEpoch;
    private final int warmupSteps;
    private final double warmupStartLr;

    /**
     * @param warmupStartLr where warmup starts; LAVIS's default (a negative {@code warmup_lr}) is
     *                      {@code initLr}, which means no warmup
     */
    public LinearWarmupCosineSchedule(double initLr, double minLr, int maxEpoch, int warmupSteps, double warmupStartLr) {
        if (maxEpoch < 1 || warmupSteps < 0) {
            throw new IllegalArgumentException("need maxEpoch >= 1 and warmupSteps >= 0; got " + maxEpoch + ", " + warmupSteps);
        }
        this.initLr = initLr;
        this.minLr = minLr;
        this.maxEpoch = maxEpoch;
        this.warmupSteps = warmupSteps;
        this.warmupStartLr = warmupStartLr;
    }

    @Override
    public double valueAt(int iteration, int epoch) {
        if (epoch == 0) {
            return Math.min(initLr, warmupStartLr + (initLr - warmupStartLr) * iteration / Math.max(warmupSteps, 1));
        }
        return (initLr - minLr) * 0.5 * (1.0 + Math.cos(Math.PI * epoch / maxEpoch)) + minLr;
    }

    @Override
    public ISchedule clone() {
        return new LinearWarmupCosineSchedule(initLr, minLr, maxEpoch, warmupSteps, warmupStartLr);
    }
}
