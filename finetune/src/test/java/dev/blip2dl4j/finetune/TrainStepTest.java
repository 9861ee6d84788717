package dev.blip2dl4j.finetune;

import dev.blip2dl4j.convert.safetensors.SafetensorsFile;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import dev.blip2dl4j.testing.Closeness;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One stage-two step on the tiny fixtures against transformers 4.45 + torch AdamW: the loss, every
 * gradient, every parameter after one AdamW step (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.05 on
 * every trained parameter), and the loss after it.
 */
class TrainStepTest {
    static final double LEARNING_RATE = 1e-4;
    static final AdamW.Settings FIXTURE_ADAMW = new AdamW.Settings(0.9, 0.999, 1e-8, 0.05, WeightDecayGroups.ALL);

    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5"})
    void oneStepMatchesTransformers(String model) {
        TrainFixture f = TrainFixture.load(model);
        StageTwoLoss stageTwo = StageTwoLoss.build(f.config(), f.weights());
        Set<String> expectedTrainable = new HashSet<>();
        f.trainStep().get("trainable_parameters").forEach(n -> expectedTrainable.add(n.asText()));
        assertEquals(expectedTrainable, Set.copyOf(stageTwo.trainableNames()));
        TrainingBatch batch = f.batch();
        Map<String, String> before = hashes(f);

        StageTwoLoss.LossAndGradients result = stageTwo.gradients(batch);
        double lossDiff = Math.abs(result.loss() - f.trainStep().get("loss").asDouble());
        assertEquals(f.trainStep().get("loss").asDouble(), result.loss(), Closeness.LOSS_TOLERANCE, "loss");
        Map<String, INDArray> referenceGradients = f.referenceGradients();
        assertEquals(referenceGradients.keySet(), result.gradients().keySet());
        double gradientDiff = 0;
        for (Map.Entry<String, INDArray> reference : referenceGradients.entrySet()) {
            gradientDiff = Math.max(gradientDiff, Closeness.assertWithinReference("gradient of " + reference.getKey(),
                    reference.getValue(), result.gradients().get(reference.getKey())));
        }

        StageTwoTrainer trainer = new StageTwoTrainer(stageTwo, FIXTURE_ADAMW, 0);
        StageTwoTrainer.Step step = trainer.step(List.of(batch), LEARNING_RATE);
        assertEquals(result.loss(), step.loss(), 0, "the step's loss is the loss before it");
        Map<String, INDArray> referenceAfter = f.referenceParametersAfterStep();
        assertEquals(referenceAfter.keySet(), stageTwo.parameters().keySet());
        double parameterDiff = 0;
        double keyBiasDiff = 0;
        for (Map.Entry<String, INDArray> reference : referenceAfter.entrySet()) {
            String name = reference.getKey();
            INDArray ours = stageTwo.parameters().get(name);
            if (hasRoundingNoiseGradient(name)) {
                // a first Adam step moves every element by at most lr (|m^| <= sqrt(v^)), whatever the sign
                keyBiasDiff = Math.max(keyBiasDiff, Closeness.maxAbsDiff(name, reference.getValue(), ours));
                assertTrue(keyBiasDiff <= 2 * LEARNING_RATE, name + " moved by more than one step");
            } else {
                parameterDiff = Math.max(parameterDiff, withinReferenceOrSignNoise("after AdamW " + name,
                        reference.getValue(), ours, referenceGradients.get(name), result.gradients().get(name)));
            }
        }
        double lossAfter = stageTwo.loss(batch);
        double expectedAfter = f.trainStep().get("loss_after_one_adamw_step").asDouble();
        assertEquals(expectedAfter, lossAfter, Closeness.LOSS_TOLERANCE, "loss after one step");
        // frozen weights, and the model's own copies of the trained ones, untouched
        assertEquals(before, hashes(f));

        System.out.printf("%s: loss diff %.2e, max gradient diff %.2e, max parameter diff %.2e (attention key"
                        + " biases %.2e), loss after diff %.2e%n",
                model, lossDiff, gradientDiff, parameterDiff, keyBiasDiff, Math.abs(lossAfter - expectedAfter));
    }

    /**
     * Torch's AdamW step from the reference gradients themselves: the optimizer alone, on every parameter
     * (the attention key biases included).
     */
    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5"})
    void adamWFromReferenceGradientsMatchesTorch(String model) {
        TrainFixture f = TrainFixture.load(model);
        Map<String, INDArray> gradients = f.referenceGradients();
        Map<String, INDArray> parameters = new LinkedHashMap<>();
        gradients.keySet().forEach(name -> parameters.put(name, f.weights().get(name).dup()));
        new AdamW(parameters, FIXTURE_ADAMW).step(gradients, LEARNING_RATE);
        double diff = 0;
        for (Map.Entry<String, INDArray> reference : f.referenceParametersAfterStep().entrySet()) {
            diff = Math.max(diff, Closeness.assertWithinReference("after AdamW " + reference.getKey(),
                    reference.getValue(), parameters.get(reference.getKey())));
        }
        System.out.printf("%s: AdamW from the reference gradients, max parameter diff %.2e%n", model, diff);
    }

    /**
     * {@link Closeness#assertWithinReference}, except for the elements whose gradient has the other sign than the
     * reference's while both are within the gradients' own tolerance of zero ({@code |g| <= 1e-5}): such a sign is
     * the rounding of a sum that cancels, which a float32 GEMM summing in another order (ours, oneDNN's, torch's)
     * may flip, and the first AdamW step, {@code lr g / (|g| + eps)}, then moves the element by nearly lr the other
     * way. Those are held to the step's size (2 lr apart at most), every other element to the fixtures' tolerance;
     * returns the largest difference of the others.
     */
    private static double withinReferenceOrSignNoise(String what, INDArray expected, INDArray actual,
                                                     INDArray referenceGradient, INDArray gradient) {
        double[] e = expected.castTo(DataType.DOUBLE).dup('c').data().asDouble();
        double[] a = actual.castTo(DataType.DOUBLE).dup('c').data().asDouble();
        double[] g = referenceGradient.castTo(DataType.DOUBLE).dup('c').data().asDouble();
        double[] ours = gradient.castTo(DataType.DOUBLE).dup('c').data().asDouble();
        assertEquals(e.length, a.length, what + " size");
        double worst = 0;
        for (int i = 0; i < e.length; i++) {
            double diff = Math.abs(e[i] - a[i]);
            if (Math.signum(g[i]) != Math.signum(ours[i]) && Math.abs(g[i]) <= 1e-5 && Math.abs(ours[i]) <= 1e-5) {
                assertTrue(diff <= 2 * LEARNING_RATE + 1e-5, what + "[" + i + "]: moved " + diff
                        + " from the reference, more than one step of either sign (gradient " + ours[i] + ", reference " + g[i] + ")");
            } else {
                assertTrue(diff <= 1e-5 + 1e-3 * Math.abs(e[i]), what + "[" + i + "]: abs diff " + diff
                        + " exceeds 1e-5 + 1e-3 |ref| (gradient " + g[i] + ")");
                worst = Math.max(worst, diff);
            }
        }
        return worst;
    }

    /**
     * Attention key biases get a gradient that is zero in exact arithmetic: adding q.b_k to every score of a
     * row leaves its softmax unchanged. Torch's values and ours are float32 rounding residue (|g| of 1e-9 to 2e-8 in
     * the fixtures), and a first AdamW step, lr g / (|g| + eps), turns residue into steps of
     * a good fraction of lr with either sign: no implementation reproduces them short of torch's own rounding.
     */
    private static boolean hasRoundingNoiseGradient(String name) {
        return name.endsWith("attention.key.bias");
    }

    /** SHA-256 of every weight of the model, read through the weights the stageTwo was built from. */
    private static Map<String, String> hashes(TrainFixture f) {
        Map<String, String> hashes = new LinkedHashMap<>();
        for (SourceTensor t : SafetensorsFile.open(f.dir().resolve("model.safetensors")).tensors()) {
            hashes.put(t.name(), sha256(f.weights().get(t.name())));
        }
        return hashes;
    }

    private static String sha256(INDArray array) {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            ByteBuffer bytes = array.data().asNio();
            digest.update(bytes.duplicate());
            return HexFormat.of().formatHex(digest.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
