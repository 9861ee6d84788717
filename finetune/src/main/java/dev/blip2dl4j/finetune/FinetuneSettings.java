package dev.blip2dl4j.finetune;

import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.finetune.data.QuestionCleaner;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * How a fine-tuning run trains. The defaults are LAVIS's stage-two settings (projects/blip2/train/
 * pretrain_stage2.yaml): AdamW at 1e-4 with weight decay 0.05 (not for biases and norms), warmup from 1e-6
 * over 2000 iterations, then a cosine over the epochs down to 1e-5, 10 epochs, seed 42; LAVIS's
 * {@code blip2_image_train} augmentation and {@code blip_question} cleaning (50 words).
 *
 * @param epochs             passes over the training data
 * @param maxSteps           stop after this many optimizer steps, if fewer than the epochs take; 0: no limit
 * @param batchSize          examples per micro-batch
 * @param accumulation       micro-batches whose gradients make one optimizer step
 * @param learningRate       the peak rate (LAVIS's {@code init_lr})
 * @param minLearningRate    where the cosine ends
 * @param warmupSteps        micro-batches of linear warmup in the first epoch (LAVIS counts iterations)
 * @param warmupStartRate    the rate warmup starts from
 * @param weightDecay        AdamW's decoupled decay
 * @param decayGroups        which parameters decay
 * @param maxGradientNorm    clip the global gradient norm to this; 0: never
 * @param seed               data order, augmentation and the validation split follow from it
 * @param augment            random resized crop and flip of training images
 * @param template           the prompt template with {@code {}}; null: the model's ({@code blip2 vqa}'s)
 * @param maxQuestionWords   questions are cut to this many words
 * @param checkpointEvery    optimizer steps between checkpoints (one is also written at the end)
 * @param evaluateEvery      optimizer steps between validations; 0: after every epoch
 * @param evalBeams          beams of the validation's generation
 * @param evalMaxNewTokens   new tokens at most in the validation's generation
 */
public record FinetuneSettings(int epochs, int maxSteps, int batchSize, int accumulation, double learningRate, double minLearningRate,
                               int warmupSteps, double warmupStartRate, double weightDecay, WeightDecayGroups decayGroups,
                               double maxGradientNorm, long seed, boolean augment, String template, int maxQuestionWords,
                               int checkpointEvery, int evaluateEvery, int evalBeams, int evalMaxNewTokens) {
    public FinetuneSettings {
        if (epochs < 1 || maxSteps < 0 || batchSize < 1 || accumulation < 1 || checkpointEvery < 1 || evaluateEvery < 0
                || warmupSteps < 0 || evalBeams < 1 || evalMaxNewTokens < 1 || maxQuestionWords < 1) {
            throw new IllegalArgumentException("epochs, batch size, accumulation, checkpoint interval, beams, new tokens "
                    + "and question words must be at least 1; warmup, step limit and validation interval at least 0");
        }
        if (!(learningRate > 0 && minLearningRate >= 0 && warmupStartRate >= 0 && weightDecay >= 0)) {
            throw new IllegalArgumentException("learning rates must be positive and weight decay not negative");
        }
    }

    public static FinetuneSettings lavisDefaults() {
        return new FinetuneSettings(10, 0, 4, 1, 1e-4, 1e-5, 2000, 1e-6, 0.05, WeightDecayGroups.LAVIS, 0, 42, true,
                null, QuestionCleaner.DEFAULT_MAX_WORDS, 500, 0, 5, 10);
    }

    AdamW.Settings adamW() {
        return AdamW.Settings.torchDefaults().withWeightDecay(weightDecay, decayGroups);
    }

    /**
     * What decides the trained weights, by name: a checkpoint records it and resume requires it unchanged
     * (how often to checkpoint and validate, and how validation generates, do not matter to the weights).
     */
    public Map<String, Object> training() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("epochs", epochs);
        m.put("max_steps", maxSteps);
        m.put("batch_size", batchSize);
        m.put("accumulation", accumulation);
        m.put("lr", learningRate);
        m.put("min_lr", minLearningRate);
        m.put("warmup_steps", warmupSteps);
        m.put("warmup_lr", warmupStartRate);
        m.put("weight_decay", weightDecay);
        m.put("decay", decayGroups.name().toLowerCase(Locale.ROOT));
        m.put("max_grad_norm", maxGradientNorm);
        m.put("seed", seed);
        m.put("augment", augment);
        m.put("template", template);
        m.put("max_question_words", maxQuestionWords);
        return m;
    }

    /** Every setting by name: {@link #training()} and how the run checkpoints and validates (the metrics log's first line). */
    public Map<String, Object> all() {
        Map<String, Object> m = training();
        m.put("checkpoint_every", checkpointEvery);
        m.put("eval_every", evaluateEvery);
        m.put("eval_beams", evalBeams);
        m.put("eval_max_new_tokens", evalMaxNewTokens);
        return m;
    }

    /** The command-line option that sets each setting of {@link #all()}, for messages. */
    private static final Map<String, String> OPTIONS = Map.ofEntries(Map.entry("epochs", "--epochs"),
            Map.entry("max_steps", "--max-steps"), Map.entry("batch_size", "--batch-size"),
            Map.entry("accumulation", "--grad-accum"), Map.entry("lr", "--lr"), Map.entry("min_lr", "--min-lr"),
            Map.entry("warmup_steps", "--warmup"), Map.entry("warmup_lr", "--warmup-lr"),
            Map.entry("weight_decay", "--weight-decay"), Map.entry("decay", "--decay-all"),
            Map.entry("max_grad_norm", "--clip"), Map.entry("seed", "--seed"), Map.entry("augment", "--no-augment"),
            Map.entry("template", "--template"), Map.entry("max_question_words", "--max-question-words"),
            Map.entry("checkpoint_every", "--checkpoint-every"), Map.entry("eval_every", "--eval-every"),
            Map.entry("eval_beams", "--eval-beams"), Map.entry("eval_max_new_tokens", "--eval-max-new-tokens"));

    /**
     * What differs between settings recorded in a checkpoint and this run's, one entry per setting:
     * "--lr: 1e-05 in the checkpoint, 2e-05 now" (empty when they agree).
     *
     * @param recorded and {@code now}: {@link #training()} as JSON, so that numbers compare by value
     */
    public static List<String> differences(JsonNode recorded, JsonNode now) {
        Set<String> names = new LinkedHashSet<>();
        recorded.fieldNames().forEachRemaining(names::add);
        now.fieldNames().forEachRemaining(names::add);
        List<String> differences = new ArrayList<>();
        for (String name : names) {
            JsonNode before = recorded.path(name);
            JsonNode after = now.path(name);
            boolean same = before.isNumber() && after.isNumber() ? before.decimalValue().compareTo(after.decimalValue()) == 0
                    : before.equals(after);
            if (!same) {
                differences.add(OPTIONS.getOrDefault(name, name) + ": " + shown(name, before) + " in the checkpoint, "
                        + shown(name, after) + " now");
            }
        }
        return differences;
    }

    private static String shown(String name, JsonNode value) {
        if (value.isMissingNode()) {
            return "not set";
        }
        if (name.equals("augment") && value.isBoolean()) {
            return value.asBoolean() ? "not given" : "given";
        }
        if (value.isNull()) {
            return "the default";
        }
        if (value.isFloatingPointNumber()) {
            // as a rate is typed: 1e-5, 0.05
            String text = Double.toString(value.asDouble()).replace("E", "e").replace(".0e", "e");
            return text.endsWith(".0") ? text.substring(0, text.length() - 2) : text;
        }
        return value.isTextual() ? "'" + value.asText() + "'" : value.toString();
    }
}
