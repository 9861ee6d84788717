package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's captioning command and its siblings, through the command line. */
class CaptionVqaMatchTest {
    @TempDir
    Path dir;

    private static final String MERLION = Fixtures.root().resolve("common/merlion.png").toString();

    @Test
    void vqaGivesTransformersGreedyIdsAsJson() throws IOException {
        Path model = Fixtures.root().resolve("blip2-tiny-opt");
        CliRun run = CliRun.of("vqa", "--model", model.toString(), "-q", "which city is this?", MERLION,
                "--max-new-tokens", "10", "--json");
        assertEquals(0, run.exitCode(), run.toString());
        JsonNode result = new ObjectMapper().readTree(run.out()).get(0);
        JsonNode reference = new ObjectMapper().readTree(model.resolve("reference.json").toFile());
        assertEquals("Question: which city is this? Answer:", result.get("prompt").asText());
        assertEquals(reference.get("generation").get("greedy").get("sequences").toString(),
                result.get("sequences").get(0).get("ids").toString());
        assertEquals(reference.get("generation").get("greedy").get("text").asText(), result.get("text").asText());
        assertTrue(result.get("timings_ms").get("generateMs").asLong() >= 0);
    }

    @Test
    void vqaTemplatesTakeTheQuestionAtTheirBracesAndRefuseOtherPlaceholders() throws IOException {
        String model = Fixtures.root().resolve("blip2-tiny-opt").toString();
        for (String template : new String[]{"Question: {} Answer:", "100% sure: {}"}) {
            CliRun run = CliRun.of("vqa", "--model", model, "-q", "which city?", MERLION, "--template", template,
                    "--max-new-tokens", "2", "--json");
            assertEquals(0, run.exitCode(), run.toString());
            assertEquals(template.replace("{}", "which city?"),
                    new ObjectMapper().readTree(run.out()).get(0).get("prompt").asText());
        }
        for (String template : new String[]{"Q: %s %s", "%d", "100% %s", "Q: {question}", "Q: {} {}", "no place"}) {
            CliRun run = CliRun.of("vqa", "--model", model, "-q", "which city?", MERLION, "--template", template);
            assertEquals(3, run.exitCode(), run.toString());
            assertTrue(run.err().startsWith("error: the prompt template '" + template + "'"), run.toString());
            assertTrue(run.out().isEmpty(), run.toString());
        }
    }

    @Test
    void captionsAFolderAndReportsTheBadImageWithoutStoppingTheOthers() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("album"));
        Files.copy(Path.of(MERLION), folder.resolve("a.png"));
        byte[] jpeg = Files.readAllBytes(Fixtures.root().resolve("images-pil/images/rgb_q90.jpg"));
        Files.write(folder.resolve("b.jpg"), Arrays.copyOf(jpeg, jpeg.length / 2)); // truncated
        Files.copy(Fixtures.root().resolve("images-pil/images/rgb_100x80.png"), folder.resolve("c.png"));
        CliRun run = CliRun.of("caption", "--model", Fixtures.root().resolve("blip2-tiny-t5").toString(),
                folder.toString(), "--max-new-tokens", "4", "--num-beams", "2", "--num-return-sequences", "2");
        assertEquals(3, run.exitCode(), run.toString());
        assertTrue(run.out().contains(folder.resolve("a.png") + ": "), run.out());
        assertTrue(run.out().contains(folder.resolve("c.png") + ": "), run.out());
        assertTrue(run.out().contains("  2. "), "second sequence listed: " + run.out());
        assertTrue(run.err().contains(folder.resolve("b.jpg").toString()) && run.err().contains("truncated"), run.err());
    }

    @Test
    void globPatternsAndBatches() {
        String pattern = Fixtures.root().resolve("images-pil/images").toString() + "/rgb_*.png";
        CliRun run = CliRun.of("caption", "--model", Fixtures.root().resolve("blip2-tiny-opt").toString(), pattern,
                "--max-new-tokens", "3", "--batch-size", "2", "--prompt", "a photo of");
        assertEquals(0, run.exitCode(), run.toString());
        assertEquals(4, run.out().lines().count(), run.out()); // rgb_100x80, rgb_1023x301, rgb_224x224, rgb_640x480
    }

    @Test
    void matchScoresEveryTextAgainstEveryImage() throws IOException {
        CliRun run = CliRun.of("match", "--model", Fixtures.root().resolve("blip2-tiny-itm").toString(),
                "-t", "a merlion fountain spouting water in a city", "-t", "a dog sitting on the beach", MERLION, "--json");
        assertEquals(0, run.exitCode(), run.toString());
        JsonNode results = new ObjectMapper().readTree(run.out());
        assertEquals(2, results.size());
        assertEquals(0.7073943, results.get(0).get("itm_probability").asDouble(), 1e-4);
        assertEquals(-0.1157113, results.get(1).get("itc_score").asDouble(), 1e-4);
    }

    @Test
    void theWrongKindOfModelSaysSo() {
        CliRun run = CliRun.of("match", "--model", Fixtures.root().resolve("blip2-tiny-opt").toString(), "-t", "x", MERLION);
        assertEquals(3, run.exitCode(), run.toString());
        assertTrue(run.err().contains("cannot match images and texts"), run.err());
    }
}
