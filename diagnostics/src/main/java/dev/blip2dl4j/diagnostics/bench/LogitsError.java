package dev.blip2dl4j.diagnostics.bench;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.arrays.ArtifactWeights;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.runtime.PromptInputs;
import dev.blip2dl4j.zoo.generate.Generator;
import dev.blip2dl4j.zoo.generate.ImageEncoder;
import dev.blip2dl4j.zoo.generate.LanguageModel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The {@code lm_logits_error} stage: how far an artifact's language model (stored in a narrower type) is from a
 * float32 reference's, teacher-forced over {@value #TOKENS} fixed tokens after the projected queries of one image,
 * as generation runs it (the prompt's first token through {@link LanguageModel#start}, the rest one cached step
 * each), which gives one row of logits per token. Both language models read the reference's projected queries, so
 * that the error is the language model's alone, as the peer's {@code --lm-int8} quantizes its language model only.
 *
 * <p>With a dump folder it also writes what it fed and got as {@code .npy}, so that another implementation
 * (bench/int8_quality_peer.py) can measure its own error on the very same inputs instead of re-deriving our
 * seeding: {@value #QUERIES} ([1, queries, hidden] float32), {@value #IDS} ([tokens] int64), and the logits
 * ([tokens, vocab] float32) of the reference ({@value #REFERENCE_LOGITS}) and of the artifact ({@value #LOGITS}).
 */
final class LogitsError {
    static final String NAME = "lm_logits_error";
    static final int TOKENS = 32;
    static final String QUERIES = "projected_queries.npy";
    static final String IDS = "token_ids.npy";
    static final String REFERENCE_LOGITS = "reference_logits.npy";
    static final String LOGITS = "logits.npy";

    /**
     * @param relativeRms   ||a - b|| / ||b|| over all positions' logits, {@code b} the reference's
     * @param top1Agreement the fraction of positions whose argmax is the reference's
     * @param maxAbsDiff    the largest |a - b|
     */
    record Result(double relativeRms, double top1Agreement, double maxAbsDiff) {
    }

    private LogitsError() {
    }

    /**
     * {@code weights} (of {@code config}) against the float32 artifact {@code reference}, on the image {@code pixels};
     * {@code dump}, when not null, is the folder that receives the inputs and both models' logits.
     */
    static Result measure(Blip2Config config, Weights weights, Path reference, INDArray pixels, long seed, Path dump) {
        long[] tokens = StageBenchmark.randomIds(config, TOKENS, seed);
        float[][] expected;
        INDArray projected;
        try (ArtifactWeights ref = ArtifactWeights.open(reference)) {
            if (!ref.config().equals(config)) {
                throw new BadInputException(reference, "is not the same model as the benchmarked artifact "
                        + "(their configs differ), so it cannot be its reference");
            }
            ImageEncoder encoder = new ImageEncoder(config, ref);
            projected = encoder.project(encoder.queries(encoder.imageEmbeds(pixels)));
            expected = teacherForced(LanguageModel.of(config, ref), projected, tokens);
        }
        float[][] actual = teacherForced(LanguageModel.of(config, weights), projected, tokens);
        if (dump != null) {
            write(dump, QUERIES, projected.castTo(DataType.FLOAT));
            write(dump, IDS, Nd4j.createFromArray(tokens));
            write(dump, REFERENCE_LOGITS, Nd4j.createFromArray(expected));
            write(dump, LOGITS, Nd4j.createFromArray(actual));
        }
        return compare(actual, expected);
    }

    private static void write(Path folder, String name, INDArray array) {
        Path file = folder.resolve(name);
        try {
            Files.createDirectories(folder);
            Nd4j.writeAsNumpy(array, new File(file.toString()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }

    /** The logits after each of {@code tokens}, the first given as the prompt after {@code projected}. */
    private static float[][] teacherForced(LanguageModel lm, INDArray projected, long[] tokens) {
        INDArray embeds = lm.inputsEmbeds(projected, new long[][]{{tokens[0]}});
        INDArray mask = PromptInputs.attentionMask((int) projected.size(1), Nd4j.ones(DataType.FLOAT, 1, 1));
        LanguageModel.Started started = lm.start(embeds, mask, (int) embeds.size(1) + tokens.length);
        float[][] logits = new float[tokens.length][];
        logits[0] = started.logits()[0];
        for (int i = 1; i < tokens.length; i++) {
            logits[i] = started.decoder().step(new long[]{tokens[i]})[0];
        }
        return logits;
    }

    static Result compare(float[][] actual, float[][] expected) {
        double error = 0;
        double norm = 0;
        double max = 0;
        int agree = 0;
        for (int i = 0; i < expected.length; i++) {
            float[] a = actual[i];
            float[] b = expected[i];
            for (int j = 0; j < b.length; j++) {
                double d = (double) a[j] - b[j];
                error += d * d;
                norm += (double) b[j] * b[j];
                max = Math.max(max, Math.abs(d));
            }
            if (Generator.argmax(a) == Generator.argmax(b)) {
                agree++;
            }
        }
        return new Result(Math.sqrt(error / norm), (double) agree / expected.length, max);
    }
}
