package dev.blip2dl4j.zoo.tasks;

import dev.blip2dl4j.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import dev.blip2dl4j.zoo.Match;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import dev.blip2dl4j.zoo.image.DecodedImage;
import dev.blip2dl4j.arrays.ReferenceBundle;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.List;
import java.util.stream.StreamSupport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** From the image file and the prompt string to transformers' generated ids and text. */
class Blip2TasksTest {
    private static final Path MERLION = Fixtures.root().resolve("common/merlion.png");

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"opt, greedy, 1", "opt, beam3, 3", "t5, greedy, 1", "t5, beam3, 3"})
    void generatesTransformersIdsFromTheImageFileAndPrompt(String model, String search, int beams) {
        Path dir = Fixtures.root().resolve("blip2-tiny-" + model);
        JsonNode reference = ReferenceBundle.open(dir).json();
        JsonNode expected = reference.get("generation").get(search);
        try (Blip2 blip2 = Blip2.load(dir)) {
            GenerationConfig generation = blip2.generationDefaults().withMaxNewTokens(10).withBeams(beams, 1);
            Caption caption = blip2.caption(MERLION, reference.get("prompt").asText(), generation);
            assertArrayEquals(longs(expected.get("sequences")), caption.sequences().get(0).ids());
            assertEquals(expected.get("text").asText(), caption.text());
        }
    }

    @Test
    void aBatchOfDifferentPromptLengthsEqualsOneByOne() {
        Path dir = Fixtures.root().resolve("blip2-tiny-opt");
        Path other = Fixtures.root().resolve("images-pil/images/rgb_640x480.png");
        try (Blip2 blip2 = Blip2.load(dir)) {
            GenerationConfig generation = blip2.generationDefaults().withMaxNewTokens(8);
            List<String> prompts = List.of("Question: which city is this? Answer:", "a photo of");
            List<DecodedImage> images = List.of(blip2.loadImage(MERLION), blip2.loadImage(other));
            List<Caption> batch = blip2.caption(images, prompts, generation);
            for (int i = 0; i < 2; i++) {
                Caption alone = blip2.caption(List.of(images.get(i)), List.of(prompts.get(i)), generation).get(0);
                assertArrayEquals(alone.sequences().get(0).ids(), batch.get(i).sequences().get(0).ids(), "row " + i);
            }
        }
    }

    @Test
    void answersInTheLanguageModelsTemplate() {
        try (Blip2 opt = Blip2.load(Fixtures.root().resolve("blip2-tiny-opt"));
             Blip2 t5 = Blip2.load(Fixtures.root().resolve("blip2-tiny-t5"))) {
            assertEquals("Question: which city is this? Answer:", opt.questionPrompt("which city is this?"));
            assertEquals("Question: which city is this? Short answer:", t5.questionPrompt("which city is this?"));
            assertTrue(opt.answer(MERLION, "which city is this?").sequences().get(0).ids().length > 1);
        }
    }

    @Test
    void matchesTheReferenceItmAndItc() {
        Path dir = Fixtures.root().resolve("blip2-tiny-itm");
        JsonNode reference = ReferenceBundle.open(dir).json();
        try (Blip2 blip2 = Blip2.load(dir)) {
            for (int i = 0; i < 2; i++) {
                Match m = blip2.match(MERLION, reference.get("captions").get(i).asText());
                assertEquals(reference.get("itm_probabilities_match").get(i).asDouble(), m.itmProbability(), 1e-4);
                assertEquals(reference.get("itc_logits_per_image").get(0).get(i).asDouble(), m.itcScore(), 1e-4);
            }
            assertThrows(BadInputException.class, () -> blip2.caption(MERLION));
        }
    }

    @Test
    void aBatchOfPairsWithTextsOfDifferentLengthsEqualsOneByOne() {
        Path other = Fixtures.root().resolve("images-pil/images/rgb_640x480.png");
        try (Blip2 blip2 = Blip2.load(Fixtures.root().resolve("blip2-tiny-itm"))) {
            DecodedImage merlion = blip2.loadImage(MERLION);
            DecodedImage rgb = blip2.loadImage(other);
            List<DecodedImage> images = List.of(merlion, rgb, merlion);
            List<String> texts = List.of("a merlion fountain spouting water in a city", "a dog", "a city at night");
            List<Match> batch = blip2.match(images, texts);
            for (int i = 0; i < images.size(); i++) {
                Match alone = blip2.match(List.of(images.get(i)), List.of(texts.get(i))).get(0);
                assertEquals(alone.itmProbability(), batch.get(i).itmProbability(), 1e-5, "row " + i);
                assertEquals(alone.itcScore(), batch.get(i).itcScore(), 1e-5, "row " + i);
            }
            assertThrows(IllegalArgumentException.class, () -> blip2.match(images, texts.subList(0, 2)));
            // the tiny Q-Former has 64 positions
            BadInputException e = assertThrows(BadInputException.class,
                    () -> blip2.match(List.of(merlion), List.of("word ".repeat(80))));
            assertTrue(e.getMessage().contains("a text of 82 tokens: the Q-Former reads at most 64"), e.getMessage());
        }
    }

    @ParameterizedTest
    @CsvSource({"opt, qformer_last_hidden_state", "t5, qformer_last_hidden_state",
            "itm, qformer_query_last_hidden_state"})
    void imageFeaturesAreTheQFormersQueryOutputs(String model, String output) {
        Path dir = Fixtures.root().resolve("blip2-tiny-" + model);
        try (Blip2 blip2 = Blip2.load(dir)) {
            INDArray expected = ReferenceBundle.open(dir).require(output);
            INDArray features = blip2.imageFeatures(MERLION);
            assertArrayEquals(expected.shape(), features.shape());
            assertTrue(features.sub(expected).amaxNumber().doubleValue() <= 1e-4, model);
        }
    }

    @Test
    void aPromptLongerThanTheLanguageModelsPositionsIsRefused() {
        // the tiny OPT has 128 positions: 8 queries + the prompt + new tokens must fit
        try (Blip2 blip2 = Blip2.load(Fixtures.root().resolve("blip2-tiny-opt"))) {
            BadInputException e = assertThrows(BadInputException.class, () -> blip2.caption(MERLION,
                    "word ".repeat(200), blip2.generationDefaults().withMaxNewTokens(5)));
            assertTrue(e.getMessage().contains("more than OPT's 128 positions"), e.getMessage());
        }
    }

    private static long[] longs(JsonNode node) {
        JsonNode row = node.get(0).isArray() ? node.get(0) : node;
        return StreamSupport.stream(row.spliterator(), false).mapToLong(JsonNode::asLong).toArray();
    }
}
