package dev.blip2dl4j.finetune;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One optimizer step of stage two as LAVIS trains: the gradients of several micro-batches averaged
 * (LAVIS divides each micro-batch's loss by the number of them), optionally clipped to a global norm,
 * then one {@link AdamW} update of the model's parameters. The caller owns the loop (epochs, data, the
 * learning-rate schedule, checkpoints); a checkpoint holds the model's {@link StageTwoLoss#parameters()}
 * and the optimizer's {@link AdamW#state()}.
 */
public final class StageTwoTrainer {
    private final StageTwoLoss stageTwo;
    private final AdamW optimizer;
    private final double maxGradientNorm;
    private long lastCollection = System.nanoTime();

    /** @param maxGradientNorm clip the global gradient norm to this; 0 or less: never clip (LAVIS's default) */
    public StageTwoTrainer(StageTwoLoss stageTwo, AdamW.Settings settings, double maxGradientNorm) {
        this.stageTwo = stageTwo;
        this.optimizer = new AdamW(stageTwo.parameters(), settings);
        this.maxGradientNorm = maxGradientNorm;
    }

    public AdamW optimizer() {
        return optimizer;
    }

    /**
     * @param loss         the mean of the micro-batches' losses
     * @param gradientNorm the global norm of the averaged gradients, before clipping
     * @param learningRate the rate the step used
     */
    public record Step(double loss, double gradientNorm, double learningRate) {
    }

    /** Averages the micro-batches' gradients, clips them if asked, and takes one AdamW step at {@code learningRate}. */
    public Step step(List<TrainingBatch> microBatches, double learningRate) {
        StageTwoLoss.LossAndGradients mean = accumulate(microBatches);
        Map<String, INDArray> gradients = mean.gradients();
        double norm = maxGradientNorm > 0 ? GradientClipping.clipGlobalNorm(gradients.values(), maxGradientNorm)
                : GradientClipping.globalNorm(gradients.values());
        optimizer.step(gradients, learningRate);
        gradients.values().forEach(INDArray::close);
        releaseNativeMemory();
        return new Step(mean.loss(), norm, learningRate);
    }

    /**
     * A garbage collection at most once a second. SameDiff's backward leaves arrays whose native memory only
     * the collector frees, and their Java objects are too small for the heap to ever ask for a collection:
     * at full size, gigabytes more resident memory every step, each step paying the first touch of that fresh
     * memory (bench/README.md) until the machine ran out. Collected after each step, memory stays flat and so
     * does the pass's time; on a tiny model, whose steps take milliseconds, once a
     * second costs little.
     */
    private void releaseNativeMemory() {
        if (System.nanoTime() - lastCollection > 1_000_000_000L) {
            System.gc();
            lastCollection = System.nanoTime();
        }
    }

    /** The mean over the micro-batches of their losses and gradients: use them before the model runs again. */
    public StageTwoLoss.LossAndGradients accumulate(List<TrainingBatch> microBatches) {
        if (microBatches.isEmpty()) {
            throw new IllegalArgumentException("a step needs at least one micro-batch");
        }
        if (microBatches.size() == 1) {
            // the caller is done with them before the model runs again: no copy needed (at full size 430 MB)
            return stageTwo.gradients(microBatches.get(0));
        }
        Map<String, INDArray> sum = new LinkedHashMap<>();
        double lossSum = 0;
        for (TrainingBatch batch : microBatches) {
            StageTwoLoss.LossAndGradients result = stageTwo.gradients(batch);
            lossSum += result.loss();
            // copied: the model may hand out the same arrays again on its next run
            result.gradients().forEach((name, g) -> {
                INDArray total = sum.get(name);
                if (total == null) {
                    sum.put(name, g.dup());
                } else {
                    total.addi(g);
                }
            });
        }
        sum.values().forEach(g -> g.divi(microBatches.size()));
        return new StageTwoLoss.LossAndGradients(lossSum / microBatches.size(), sum);
    }
}
