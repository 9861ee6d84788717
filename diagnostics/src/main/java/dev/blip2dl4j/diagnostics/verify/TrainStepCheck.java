package dev.blip2dl4j.diagnostics.verify;

import dev.blip2dl4j.arrays.SafetensorsArrays;
import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.finetune.AdamW;
import dev.blip2dl4j.finetune.StageTwoLoss;
import dev.blip2dl4j.finetune.StageTwoTrainer;
import dev.blip2dl4j.finetune.TrainingBatch;
import dev.blip2dl4j.finetune.WeightDecayGroups;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerVision;
import dev.blip2dl4j.arrays.ReferenceBundle;
import dev.blip2dl4j.diagnostics.verify.Verifier;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The training part of {@code blip2 verify}: a bundle's {@code train_step} (reference.json) recomputed, one
 * stage-two step from the bundle's loss example. It lives here, not in zoo's {@link Verifier}, because the
 * training code depends on zoo; the command line adds these checks to the verifier's report.
 *
 * <p>Rows: the loss; every gradient; AdamW's step from the bundle's own gradients (the optimizer alone:
 * attention key biases have a gradient that is zero in exact arithmetic, so their first AdamW step is
 * float32 rounding residue amplified, and only the optimizer can be compared on it); and the loss after our
 * own whole step (gradients and AdamW), which the key biases do not affect. Gradients and parameters are
 * held to the fixtures' {@code 1e-5 + 1e-3 |ref|} per element, shown as the worst
 * {@code |diff| / (1 + 100 |ref|)} against 1e-5.
 */
public final class TrainStepCheck {
    public static final double LOSS_TOLERANCE = 1e-5;
    public static final double SCALED_TOLERANCE = 1e-5;
    private static final long[] SCALAR = new long[0];

    private TrainStepCheck() {
    }

    /** {@code report} with the train-step checks added; as it is when the bundle has no train step. */
    public static Verifier.Report addTo(Verifier.Report report, Blip2Config config, Weights weights, ReferenceBundle bundle) {
        JsonNode step = bundle.json().get("train_step");
        if (step == null || config.kind() != ModelKind.CONDITIONAL_GENERATION) {
            return report;
        }
        List<Verifier.Check> checks = new ArrayList<>(report.checks());
        checks.addAll(run(config, weights, bundle, step));
        // the bundle's per-tensor gradient and AdamW outputs are among the rows' tensors
        List<String> notChecked = report.notChecked().stream()
                .filter(n -> !n.startsWith("grad__") && !n.startsWith("after_adamw__")).toList();
        return new Verifier.Report(checks, notChecked);
    }

    private static List<Verifier.Check> run(Blip2Config config, Weights weights, ReferenceBundle bundle, JsonNode step) {
        JsonNode adamw = step.path("adamw");
        double lr = adamw.path("lr").asDouble();
        AdamW.Settings settings = new AdamW.Settings(adamw.path("betas").path(0).asDouble(),
                adamw.path("betas").path(1).asDouble(), adamw.path("eps").asDouble(),
                adamw.path("weight_decay").asDouble(), WeightDecayGroups.ALL);
        Map<String, INDArray> gradients = references(bundle, step, "all_gradients_file", "grad__");
        Map<String, INDArray> after = references(bundle, step, "all_params_after_step_file", "after_adamw__");

        StageTwoLoss stageTwo = StageTwoLoss.build(config, weights);
        INDArray image = new EagerVision(config.vision(), weights).forward(bundle.require("pixel_values"))
                .lastHiddenState();
        TrainingBatch batch = new TrainingBatch(image, bundle.require("loss_input_ids"),
                bundle.require("loss_attention_mask"), bundle.require("loss_labels"));
        List<Verifier.Check> checks = new ArrayList<>();

        StorageTolerance tolerance = StorageTolerance.of(config, weights);
        double loss = step.path("loss").asDouble();
        double lossAfter = step.path("loss_after_one_adamw_step").asDouble();
        double largestGradient = gradients.values().stream()
                .mapToDouble(g -> g.castTo(DataType.DOUBLE).amaxNumber().doubleValue()).max().orElse(0);
        StageTwoLoss.LossAndGradients ours = stageTwo.gradients(batch);
        checks.add(new Verifier.Check("train_step loss", SCALAR,
                Math.abs(ours.loss() - loss), tolerance.of(LOSS_TOLERANCE, Math.abs(loss))));
        checks.add(new Verifier.Check("train_step gradients |d|/(1+100|ref|)", new long[]{gradients.size()},
                worstScaledDiff(gradients, ours.gradients()), tolerance.ofGradient(SCALED_TOLERANCE, largestGradient)));

        Map<String, INDArray> fromReference = new LinkedHashMap<>();
        after.keySet().forEach(name -> fromReference.put(name, weights.get(name).dup()));
        new AdamW(fromReference, settings).step(gradients, lr);
        checks.add(new Verifier.Check("train_step AdamW step |d|/(1+100|ref|)", new long[]{after.size()},
                worstScaledDiff(after, fromReference), SCALED_TOLERANCE));

        new StageTwoTrainer(stageTwo, settings, 0).step(List.of(batch), lr);
        checks.add(new Verifier.Check("train_step loss after the step", SCALAR,
                Math.abs(stageTwo.loss(batch) - lossAfter), tolerance.of(LOSS_TOLERANCE, Math.abs(lossAfter))));
        return checks;
    }

    /** The bundle's safetensors file of all of them, or else its per-tensor outputs with that prefix. */
    private static Map<String, INDArray> references(ReferenceBundle bundle, JsonNode step, String fileKey, String prefix) {
        if (step.hasNonNull(fileKey)) {
            return SafetensorsArrays.read(bundle.dir().resolve(step.get(fileKey).asText()));
        }
        Map<String, INDArray> arrays = new LinkedHashMap<>();
        for (String name : bundle.names()) {
            if (name.startsWith(prefix)) {
                arrays.put(name.substring(prefix.length()), bundle.require(name));
            }
        }
        if (arrays.isEmpty()) {
            throw new BadInputException(bundle.dir().resolve("reference.json"), "has a train_step but neither \""
                    + fileKey + "\" nor " + prefix + "* outputs");
        }
        return arrays;
    }

    /** The worst {@code |ours - ref| / (1 + 100 |ref|)} over every element of every reference tensor. */
    private static double worstScaledDiff(Map<String, INDArray> references, Map<String, INDArray> ours) {
        double worst = 0;
        for (Map.Entry<String, INDArray> reference : references.entrySet()) {
            INDArray computed = ours.get(reference.getKey());
            if (computed == null || !Arrays.equals(computed.shape(), reference.getValue().shape())) {
                return Double.POSITIVE_INFINITY;
            }
            INDArray ref = reference.getValue().castTo(DataType.DOUBLE);
            INDArray diff = Transforms.abs(ref.sub(computed.castTo(DataType.DOUBLE)), false);
            double scaled = diff.divi(Transforms.abs(ref, true).muli(100).addi(1)).maxNumber().doubleValue();
            worst = Double.isNaN(scaled) ? Double.POSITIVE_INFINITY : Math.max(worst, scaled);
        }
        return worst;
    }
}
