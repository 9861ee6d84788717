package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `blip2 verify` on the fixtures: every output the build computes is within tolerance, from every source. */
class VerifyTest {
    @TempDir
    Path dir;

    @Test
    void optArtifactPassesEveryOutput() {
        Path fixture = Fixtures.root().resolve("blip2-tiny-opt");
        Path artifact = dir.resolve("opt.b2z");
        assertEquals(0, CliRun.of("convert", fixture.toString(), "-o", artifact.toString(), "--quiet").exitCode());
        CliRun run = CliRun.of("verify", "--model", artifact.toString(), "--reference", fixture.toString());
        assertEquals(0, run.exitCode(), run.toString());
        for (String output : new String[]{"vision_hidden_states", "vision_pooler_output", "qformer_hidden_states",
                "language_projection", "lm_inputs_embeds", "lm_hidden_states", "logits", "greedy step top-5 scores"}) {
            assertTrue(run.out().matches("(?s).*\\n" + output + " +\\[[0-9, ]+\\] +[0-9.e+-]+ +1e-04 +PASS\\n.*"),
                    output + " missing or failed:\n" + run.out());
        }
        // from the image file and the prompt string: identical pixel values, ids, generated ids
        for (String output : new String[]{"pixel_values", "input_ids", "generate_greedy", "generate_beam3",
                "greedy step top-5 ids"}) {
            assertTrue(run.out().matches("(?s).*\\n" + output + " +\\[[0-9, ]+\\] +0\\.000e\\+00 +exact +PASS\\n.*"),
                    output + " missing or failed:\n" + run.out());
        }
        for (String output : new String[]{"train_step loss", "train_step gradients \\|d\\|/\\(1\\+100\\|ref\\|\\)",
                "train_step AdamW step \\|d\\|/\\(1\\+100\\|ref\\|\\)", "train_step loss after the step"}) {
            assertTrue(run.out().matches("(?s).*\\n" + output + " +\\[[0-9, ]*\\] +[0-9.e+-]+ +1e-05 +PASS\\n.*"),
                    output + " missing or failed:\n" + run.out());
        }
        assertTrue(run.out().contains("19 outputs compared, 0 failed"), run.out());
        assertTrue(!run.out().contains("grad__") && !run.out().contains("Added differentiated op"), run.out());
    }

    @Test
    void t5CheckpointFolderIsVerifiedWithoutConverting() {
        Path fixture = Fixtures.root().resolve("blip2-tiny-t5");
        CliRun run = CliRun.of("verify", "--model", fixture.toString(), "--reference", fixture.toString());
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(run.out().contains("22 outputs compared, 0 failed"), run.out());
        assertTrue(run.out().contains("loss_logits"), run.out());
    }

    @Test
    void retrievalThroughLavisWithDump() throws IOException {
        Path fixture = Fixtures.root().resolve("blip2-tiny-itm");
        Path dump = dir.resolve("dump");
        CliRun run = CliRun.of("verify", "--model", fixture.resolve("lavis/blip2_itm_tiny.pth").toString(),
                "--config", fixture.resolve("config.json").toString(), "--reference", fixture.toString(),
                "--dump", dump.toString());
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(run.out().contains("11 outputs compared, 0 failed"), run.out()); // a bare .pth: no tokenizer
        assertTrue(run.out().contains("the model has no tokenizer"), run.out());
        INDArray dumped = Nd4j.createFromNpyFile(new File(dump.resolve("reference/itm_logits.npy").toString()));
        INDArray reference = Nd4j.createFromNpyFile(new File(fixture.resolve("reference/itm_logits.npy").toString()));
        assertTrue(dumped.equalsWithEps(reference, 1e-4), dumped + " vs " + reference);
        try (Stream<Path> files = Files.list(dump.resolve("reference"))) {
            assertEquals(10, files.count());
        }
    }

    @Test
    void aWrongReferenceFailsWithExitCodeFour() throws IOException {
        Path fixture = Fixtures.root().resolve("blip2-tiny-itm");
        Path bundle = dir.resolve("bundle");
        Files.createDirectories(bundle.resolve("reference"));
        Files.copy(fixture.resolve("reference.json"), bundle.resolve("reference.json"));
        try (Stream<Path> files = Files.list(fixture.resolve("reference"))) {
            for (Path f : files.toList()) {
                Files.copy(f, bundle.resolve("reference").resolve(f.getFileName()));
            }
        }
        INDArray logits = Nd4j.createFromNpyFile(new File(bundle.resolve("reference/itm_logits.npy").toString()));
        Nd4j.writeAsNumpy(logits.add(0.01), new File(bundle.resolve("reference/itm_logits.npy").toString()));
        CliRun run = CliRun.of("verify", "--model", fixture.toString(), "--reference", bundle.toString());
        assertEquals(4, run.exitCode(), run.toString());
        assertTrue(run.out().matches("(?s).*\\nitm_logits +\\[2, 2\\] +1\\.0[0-9]*e-02 +1e-04 +FAIL\\n.*"), run.out());
        assertTrue(run.out().contains("10 outputs compared, 1 failed"), run.out());
        assertTrue(run.out().contains("give it with --image"), run.out());
    }

    @Test
    void notABundle() {
        CliRun run = CliRun.of("verify", "--model", Fixtures.root().resolve("blip2-tiny-itm").toString(),
                "--reference", dir.toString());
        assertEquals(3, run.exitCode(), run.toString());
        assertTrue(run.err().contains("is not a reference bundle"), run.err());
    }
}
