package dev.blip2dl4j.diagnostics.verify;

import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.arrays.ReferenceBundle;
import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Match;
import dev.blip2dl4j.zoo.image.DecodedImage;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The retrieval fixture converted to each narrower type matches and gives image features within that type's
 * tolerance ({@link StorageTolerance}, as {@code blip2 verify} holds it) of transformers' float32 outputs.
 */
class RetrievalInStorageTypesTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16", "I8"})
    void matchesAndGivesFeaturesWithinTheTypesTolerance(DType type) {
        Path fixture = Fixtures.root().resolve("blip2-tiny-itm");
        Path artifact = dir.resolve("itm-" + type + ".b2z");
        Converter.convert(List.of(fixture), artifact,
                Converter.Options.defaults().withStorage(StoragePolicy.of(type)), ConversionProgress.NONE);
        ReferenceBundle reference = ReferenceBundle.open(fixture);
        JsonNode json = reference.json();
        try (Blip2 blip2 = Blip2.load(artifact)) {
            StorageTolerance tolerance = StorageTolerance.of(blip2.config(), blip2.weights());
            assertEquals(type, tolerance.storage(), "the image encoder's products are stored as " + type);
            DecodedImage image = blip2.loadImage(Fixtures.root().resolve("common/merlion.png"));
            List<Match> matches = blip2.match(List.of(image, image),
                    List.of(json.get("captions").get(0).asText(), json.get("captions").get(1).asText()));
            double itcLargest = Math.max(Math.abs(json.get("itc_logits_per_image").get(0).get(0).asDouble()),
                    Math.abs(json.get("itc_logits_per_image").get(0).get(1).asDouble()));
            for (int i = 0; i < 2; i++) {
                within(type + " itm probability " + i, json.get("itm_probabilities_match").get(i).asDouble(),
                        matches.get(i).itmProbability(), tolerance.of(Verifier.ACTIVATION_TOLERANCE, 1));
                within(type + " itc score " + i, json.get("itc_logits_per_image").get(0).get(i).asDouble(),
                        matches.get(i).itcScore(), tolerance.of(Verifier.ACTIVATION_TOLERANCE, itcLargest));
            }
            INDArray expected = reference.require("qformer_query_last_hidden_state");
            INDArray features = blip2.imageFeatures(List.of(image));
            double largest = expected.amaxNumber().doubleValue();
            within(type + " image features", 0, features.sub(expected).amaxNumber().doubleValue(),
                    tolerance.of(Verifier.ACTIVATION_TOLERANCE, largest));
        }
    }

    private static void within(String what, double expected, double actual, double tolerance) {
        double diff = Math.abs(expected - actual);
        System.out.printf(Locale.ROOT, "%-40s diff %.3e, tolerance %.3e%n", what, diff, tolerance);
        assertTrue(diff <= tolerance, what + ": " + actual + " against " + expected + ", more than " + tolerance);
    }
}
