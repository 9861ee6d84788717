package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** blip2 random-checkpoint: the plan of a catalogue model without writing it, a small one written and converted. */
class RandomCheckpointCliTest {
    @TempDir
    Path dir;

    @Test
    void plansACatalogueModelAsItsShardsAreRecordedWithoutWritingIt() {
        CliRun run = CliRun.of("random-checkpoint", "--like", "blip2-opt-6.7b", "--dry-run");
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(run.out().startsWith("blip2-opt-6.7b: the pretrain_opt6.7b architecture, shards as the catalogue "
                + "records them\n"), run.out());
        assertTrue(run.out().contains("  model-00004-of-00004.safetensors  23 tensors  2166161408 bytes (2.2 GB)\n"), run.out());
        assertTrue(run.out().endsWith("1248 tensors, 31834609664 bytes (31.8 GB) of float32, FROM_BIN layout\n"), run.out());
        assertTrue(run.err().isEmpty(), run.err());

        // float16 shards are cut at float32's tensors, each half the size, and say so line by line as in the total
        CliRun half = CliRun.of("random-checkpoint", "--like", "blip2-opt-6.7b", "--dry-run", "--dtype", "float16");
        assertTrue(half.out().contains("  model-00004-of-00004.safetensors  23 tensors  1083080704 bytes (1.1 GB)\n"), half.out());
        assertTrue(half.out().endsWith("1248 tensors, 15917304832 bytes (15.9 GB) of float16, FROM_BIN layout\n"), half.out());

        CliRun cut = CliRun.of("random-checkpoint", "--like", "blip2-opt-6.7b", "--dry-run", "--layout", "SAVED");
        assertTrue(cut.err().startsWith("warning: the plan differs from the catalogue's shards: "
                + "model-00004-of-00004.safetensors: 2170000000 bytes recorded"), cut.toString());
    }

    @Test
    void writesASmallModelThatConverts() throws IOException {
        Path out = dir.resolve("random");
        CliRun run = CliRun.of("random-checkpoint", "--config", Fixtures.root().resolve("blip2-tiny-t5/config.json").toString(),
                "--max-shard-size", "500000", "--seed", "5", "--tokenizer", Fixtures.root().resolve("tokenizers/t5").toString(),
                out.toString());
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors.index.json")) && Files.isRegularFile(out.resolve("spiece.model")));
        CliRun converted = CliRun.of("convert", out.toString(), "-o", dir.resolve("random.b2z").toString(), "--quiet",
                "--dtype", "int8");
        assertEquals(0, converted.exitCode(), converted.toString());

        CliRun again = CliRun.of("random-checkpoint", "--config", Fixtures.root().resolve("blip2-tiny-t5/config.json").toString(),
                out.toString());
        assertEquals(3, again.exitCode(), again.toString());
        assertTrue(again.err().contains("already exists"), again.err());
    }

    @Test
    void writesHalfPrecisionShardsAndAnArtifactStraight() throws IOException {
        String config = Fixtures.root().resolve("blip2-tiny-opt/config.json").toString();
        CliRun half = CliRun.of("random-checkpoint", "--config", config, "--dtype", "float16", dir.resolve("half").toString());
        assertEquals(0, half.exitCode(), half.toString());
        assertTrue(half.out().contains(" of float16, SAVED layout\n"), half.out());
        CliRun artifact = CliRun.of("random-checkpoint", "--config", config, "--dtype", "int8", "--vision-dtype", "bfloat16",
                dir.resolve("direct.b2z").toString());
        assertEquals(0, artifact.exitCode(), artifact.toString());
        CliRun inspected = CliRun.of("inspect", dir.resolve("direct.b2z").toString());
        assertEquals(0, inspected.exitCode(), inspected.toString());
        assertTrue(inspected.out().contains("I8") && inspected.out().contains("BF16"), inspected.out());
        CliRun int8Folder = CliRun.of("random-checkpoint", "--config", config, "--dtype", "int8", dir.resolve("i8").toString());
        assertEquals(2, int8Folder.exitCode(), int8Folder.toString());
        assertFalse(Files.exists(dir.resolve("i8")));
    }

    @Test
    void badRequestsAreRefused() {
        assertEquals(2, CliRun.of("random-checkpoint", "--dry-run").exitCode(), "--like or --config is needed");
        CliRun noArchitecture = CliRun.of("random-checkpoint", "--like", "tiny-opt", "--dry-run", "--catalogue",
                Fixtures.root().resolve("hub/catalogue.json").toString());
        assertEquals(3, noArchitecture.exitCode(), noArchitecture.toString());
        assertTrue(noArchitecture.err().contains("gives only a parameter count"), noArchitecture.err());
        CliRun noOut = CliRun.of("random-checkpoint", "--like", "blip2-itm-vit-g");
        assertEquals(3, noOut.exitCode(), noOut.toString());
        assertTrue(noOut.err().contains("give OUT,"), noOut.err());
        assertFalse(noOut.out().contains("wrote"));
    }
}
