package dev.blip2dl4j.diagnostics.verify;

import dev.blip2dl4j.arrays.ReferenceBundle;
import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import dev.blip2dl4j.zoo.Match;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import dev.blip2dl4j.zoo.image.DecodedImage;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.StreamSupport;

/**
 * The checks of {@link Verifier} that start from the raw inputs, as a user's call does: the image file,
 * the prompt, the captions. Ids must be identical (max abs diff 0); pixel values identical after float32
 * rounding; scores within the activation tolerance.
 */
final class EndToEndChecks {
    private final Blip2 model;
    private final ReferenceBundle bundle;
    private final Path image;
    private final StorageTolerance tolerance;
    private final Consumer<Verifier.Check> record;
    private final Consumer<String> skipped;

    /** @param skipped told what could not be checked and why (no image found, no tokenizer) */
    EndToEndChecks(Blip2 model, ReferenceBundle bundle, Path image, StorageTolerance tolerance,
                   Consumer<Verifier.Check> record, Consumer<String> skipped) {
        this.model = model;
        this.tolerance = tolerance;
        this.bundle = bundle;
        this.record = record;
        this.skipped = skipped;
        this.image = image != null ? image : imageNamedByReference();
    }

    void run() {
        if (image == null) {
            return;
        }
        if (!model.hasTokenizer()) {
            skipped.accept("everything from the raw prompt and captions (the model has no tokenizer)");
            if (bundle.has("pixel_values")) {
                check("pixel_values", bundle.require("pixel_values").shape(),
                        maxDiff(bundle.require("pixel_values"), model.imageProcessor().preprocess(List.of(model.loadImage(image)))), 0);
            }
            return;
        }
        DecodedImage decoded = model.loadImage(image);
        if (bundle.has("pixel_values")) {
            INDArray pixels = model.imageProcessor().preprocess(List.of(decoded));
            check("pixel_values", pixels.shape(), maxDiff(bundle.require("pixel_values"), pixels), 0);
        }
        JsonNode json = bundle.json();
        if (model.config().kind() == ModelKind.CONDITIONAL_GENERATION && json.has("prompt")) {
            String prompt = json.get("prompt").asText();
            if (bundle.has("input_ids")) {
                long[] ids = model.tokenizer().encode(prompt);
                check("input_ids", new long[]{1, ids.length}, idDiff(bundle.require("input_ids").toLongVector(), ids), 0);
            }
            JsonNode generation = json.path("generation");
            for (String search : List.of("greedy", "beam3")) {
                if (generation.has(search)) {
                    generate(decoded, prompt, search, generation.get(search));
                }
            }
        }
        if (model.config().kind() == ModelKind.IMAGE_TEXT_RETRIEVAL && json.has("captions")) {
            match(decoded, json);
        }
    }

    private void generate(DecodedImage decoded, String prompt, String search, JsonNode reference) {
        JsonNode kwargs = reference.path("kwargs");
        GenerationConfig generation = model.generationDefaults()
                .withMaxNewTokens(kwargs.path("max_new_tokens").asInt(10))
                .withBeams(kwargs.path("num_beams").asInt(1), 1);
        boolean greedy = generation.numBeams() == 1;
        Caption.Sequence sequence = model.caption(List.of(decoded), List.of(prompt), generation, greedy ? 5 : 0)
                .get(0).sequences().get(0);
        long[] expected = longs(reference.get("sequences"));
        long[] ids = sequence.ids();
        String name = bundle.has("generate_" + search) ? "generate_" + search : "generation." + search;
        if (!greedy && !tolerance.exact() && idDiff(expected, ids) != 0) {
            // beams are ranked by sums of many scores, each within the type's tolerance: near-ties may swap
            skipped.accept(name + " (in " + tolerance.storage() + " storage the beams ranked differently; the greedy "
                    + "ids and each step's scores are checked)");
            return;
        }
        check(name, new long[]{1, ids.length}, idDiff(expected, ids), 0);
        if (greedy && reference.has("step_top5_ids")) {
            JsonNode topIds = reference.get("step_top5_ids");
            JsonNode topScores = reference.get("step_top5_scores");
            double idsDiff = topIds.size() == sequence.topIds().length ? 0 : Double.POSITIVE_INFINITY;
            double scoreDiff = 0;
            double largest = 0;
            for (int step = 0; step < Math.min(topIds.size(), sequence.topIds().length); step++) {
                for (int k = 0; k < 5; k++) {
                    largest = Math.max(largest, Math.abs(topScores.get(step).get(k).asDouble()));
                }
            }
            double scoreTolerance = tolerance.of(Verifier.ACTIVATION_TOLERANCE, largest);
            for (int step = 0; step < Math.min(topIds.size(), sequence.topIds().length); step++) {
                long[] expectedIds = longs(topIds.get(step));
                for (int k = 0; k < 5; k++) {
                    double referenceScore = topScores.get(step).get(k).asDouble();
                    double diff = Math.abs(referenceScore - sequence.topScores()[step][k]);
                    scoreDiff = Math.max(scoreDiff, diff);
                    // in a narrower storage type, two ids whose scores tie within the tolerance may change places
                    boolean tie = !tolerance.exact() && diff <= scoreTolerance;
                    if (expectedIds[k] != sequence.topIds()[step][k] && !tie) {
                        idsDiff = Math.max(idsDiff, Math.abs(expectedIds[k] - sequence.topIds()[step][k]));
                    }
                }
            }
            check(search + " step top-5 ids", new long[]{topIds.size(), 5}, idsDiff, 0);
            check(search + " step top-5 scores", new long[]{topIds.size(), 5}, scoreDiff, scoreTolerance);
        }
    }

    private void match(DecodedImage decoded, JsonNode json) {
        JsonNode captions = json.get("captions");
        int n = captions.size();
        double itmDiff = 0;
        double itcDiff = 0;
        List<String> texts = new ArrayList<>();
        captions.forEach(caption -> texts.add(caption.asText()));
        // one batch, as a user's several texts about one image: the captions padded and masked
        List<Match> matches = model.match(Collections.nCopies(n, decoded), texts);
        for (int i = 0; i < n; i++) {
            Match m = matches.get(i);
            if (json.has("itm_probabilities_match")) {
                itmDiff = Math.max(itmDiff, Math.abs(m.itmProbability() - json.get("itm_probabilities_match").get(i).asDouble()));
            }
            if (json.has("itc_logits_per_image")) {
                itcDiff = Math.max(itcDiff, Math.abs(m.itcScore() - json.get("itc_logits_per_image").get(0).get(i).asDouble()));
            }
            if (bundle.has("itm_input_ids")) {
                long[] ids = model.tokenizer().encode(captions.get(i).asText());
                long[] row = bundle.require("itm_input_ids").getRow(i).toLongVector();
                check("itm_input_ids (caption " + i + ")", new long[]{1, ids.length},
                        idDiff(Arrays.copyOf(row, ids.length), ids) + (row.length > ids.length && row[ids.length] != 0 ? 1 : 0), 0);
            }
        }
        check("itm_probabilities (from the captions)", new long[]{n}, itmDiff, tolerance.of(Verifier.ACTIVATION_TOLERANCE, 1));
        check("itc_logits_per_image (from the captions)", new long[]{1, n}, itcDiff,
                tolerance.of(Verifier.ACTIVATION_TOLERANCE, largest(json.path("itc_logits_per_image").path(0))));
    }

    /** reference.json's {@code image.file}: "common/merlion.png (in the shared fixtures root)" and the like. */
    private Path imageNamedByReference() {
        JsonNode file = bundle.json().path("image").path("file");
        if (file.isMissingNode()) {
            return null;
        }
        String name = file.asText().replaceFirst("\\s*\\(.*$", "").trim();
        Path parent = bundle.dir().toAbsolutePath().getParent();
        Path path = parent == null ? Path.of(name) : parent.resolve(name);
        if (!Files.isRegularFile(path)) {
            skipped.accept("everything from the image file: reference.json names " + name + ", which is not at "
                    + path + " (give it with --image)");
            return null;
        }
        return path;
    }

    private void check(String name, long[] shape, double diff, double tolerance) {
        record.accept(new Verifier.Check(name, shape, diff, tolerance));
    }

    private static double maxDiff(INDArray expected, INDArray actual) {
        if (!Arrays.equals(expected.shape(), actual.shape())) {
            return Double.POSITIVE_INFINITY;
        }
        return expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    private static double idDiff(long[] expected, long[] actual) {
        if (expected.length != actual.length) {
            return Double.POSITIVE_INFINITY;
        }
        double diff = 0;
        for (int i = 0; i < expected.length; i++) {
            diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
        }
        return diff;
    }

    private static double largest(JsonNode values) {
        return StreamSupport.stream(values.spliterator(), false).mapToDouble(v -> Math.abs(v.asDouble())).max().orElse(0);
    }

    private static long[] longs(JsonNode node) {
        JsonNode row = node.get(0).isArray() ? node.get(0) : node;
        return StreamSupport.stream(row.spliterator(), false).mapToLong(JsonNode::asLong).toArray();
    }
}
