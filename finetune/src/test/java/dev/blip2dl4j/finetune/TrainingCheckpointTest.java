package dev.blip2dl4j.finetune;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.config.Blip2Config;
import org.apache.commons.compress.archivers.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checkpoints are checked on resume, and the previous one is kept for when the latest is damaged. */
class TrainingCheckpointTest {
    private static final List<String> TRAINED = List.of("query_tokens", "language_projection.weight");
    private static final Blip2Config CONFIG = TrainFixture.load("opt").config();

    @TempDir
    Path dir;

    private Path file() {
        return dir.resolve("checkpoint.ckpt");
    }

    /** Writes the checkpoint of {@code step}: every array filled with the step, so a read-back shows which it is. */
    private void write(int step) {
        Map<String, INDArray> parameters = new LinkedHashMap<>();
        Map<String, INDArray> m = new LinkedHashMap<>();
        Map<String, INDArray> v = new LinkedHashMap<>();
        for (String name : TRAINED) {
            parameters.put(name, Nd4j.valueArrayOf(new long[]{64, 32}, (float) step, DataType.FLOAT));
            m.put(name, Nd4j.valueArrayOf(new long[]{64, 32}, step / 10f, DataType.FLOAT));
            v.put(name, Nd4j.valueArrayOf(new long[]{64, 32}, step / 100f, DataType.FLOAT));
        }
        OutputFile out = TrainingCheckpoint.output(file(), List.of(), true, "--overwrite");
        TrainingCheckpoint.write(out, CONFIG, parameters, new AdamW.State(step, m, v),
                TrainingCheckpoint.state(step, 0, step, 7, step, Map.of("lr", 1e-4), Map.of(), "base"));
    }

    private static void flipByte(Path file, long at) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(at);
            int b = f.read();
            f.seek(at);
            f.write(b ^ 0x01);
        }
    }

    private static long dataOffset(Path file, String entry) throws IOException {
        try (ZipFile zip = ZipFile.builder().setPath(file).get()) {
            return zip.getEntry(entry).getDataOffset();
        }
    }

    @Test
    void theLatestIsReadAndThePreviousKept() {
        write(1);
        write(2);
        TrainingCheckpoint.Loaded latest = TrainingCheckpoint.readLatest(file(), TRAINED);
        assertEquals(2, latest.state().step());
        assertNull(latest.skipped());
        assertEquals(2f, latest.parameters().get("query_tokens").getFloat(0));
        assertTrue(Files.exists(TrainingCheckpoint.previous(file())));
    }

    @Test
    void oneFlippedByteInATensorFallsBackToThePreviousCheckpointSaying() throws IOException {
        write(1);
        write(2);
        flipByte(file(), dataOffset(file(), "tensors/language_projection.weight.exp_avg_sq") + 1001);
        TrainingCheckpoint.Loaded loaded = TrainingCheckpoint.readLatest(file(), TRAINED);
        assertEquals(1, loaded.state().step());
        assertEquals(TrainingCheckpoint.previous(file()), loaded.file());
        assertEquals(1f, loaded.parameters().get("language_projection.weight").getFloat(5));
        assertTrue(loaded.skipped().startsWith(file().toString())
                && loaded.skipped().contains("language_projection.weight.exp_avg_sq")
                && loaded.skipped().contains("SHA-256"), loaded.skipped());
    }

    @Test
    void oneFlippedByteInTheTrainerStateIsFoundToo() throws IOException {
        write(1);
        write(2);
        flipByte(file(), dataOffset(file(), TrainingCheckpoint.STATE_FILE) + 20);
        TrainingCheckpoint.Loaded loaded = TrainingCheckpoint.readLatest(file(), TRAINED);
        assertEquals(1, loaded.state().step(), loaded.skipped());
        assertTrue(loaded.skipped().startsWith(file().toString()), loaded.skipped());
    }

    @Test
    void aTruncatedLatestFallsBackToThePreviousCheckpoint() throws IOException {
        write(1);
        write(2);
        try (RandomAccessFile f = new RandomAccessFile(file().toFile(), "rw")) {
            f.setLength(f.length() / 2);
        }
        TrainingCheckpoint.Loaded loaded = TrainingCheckpoint.readLatest(file(), TRAINED);
        assertEquals(1, loaded.state().step());
        assertTrue(loaded.skipped().startsWith(file().toString()), loaded.skipped());
    }

    @Test
    void aMissingLatestFallsBackToThePreviousCheckpoint() throws IOException {
        write(1);
        write(2);
        Files.delete(file());   // as a kill between keeping the previous and renaming the new one leaves it
        assertEquals(1, TrainingCheckpoint.readLatest(file(), TRAINED).state().step());
    }

    @Test
    void aDamagedCheckpointWithoutAUsablePreviousOneIsNeverResumed() throws IOException {
        write(1);
        flipByte(file(), dataOffset(file(), "tensors/query_tokens") + 3);
        BadInputException alone = assertThrows(BadInputException.class,
                () -> TrainingCheckpoint.readLatest(file(), TRAINED));
        assertTrue(alone.getMessage().contains("SHA-256"), alone.getMessage());

        write(2);   // the damaged one becomes the previous one
        flipByte(file(), dataOffset(file(), "tensors/query_tokens.exp_avg") + 3);
        BadInputException both = assertThrows(BadInputException.class,
                () -> TrainingCheckpoint.readLatest(file(), TRAINED));
        assertTrue(both.getMessage().contains(file().toString())
                && both.getMessage().contains(TrainingCheckpoint.previous(file()).toString()), both.getMessage());
    }
}
