package dev.blip2dl4j.diagnostics.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.arrays.ArtifactWeights;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.diagnostics.verify.StorageTolerance;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bench's lines are JSON whatever the locale (a German one writes decimal commas with String.format), and the
 * logits error is exact for float32 against itself and within the per-type tolerance for narrower types.
 */
class StageBenchmarkTest {
    @TempDir
    Path dir;

    @Test
    void linesAreJsonUnderAGermanLocale() throws Exception {
        Path artifact = dir.resolve("opt.b2z");
        Converter.convert(List.of(Fixtures.model("opt")), artifact, Converter.Options.defaults(), ConversionProgress.NONE);
        StringWriter text = new StringWriter();
        Locale previous = Locale.getDefault();
        Locale.setDefault(Locale.GERMANY);
        try {
            StageBenchmark.run(artifact, new StageBenchmark.Options(1, 0, 4, 0, Set.of("qformer", "lm_decode_per_token"),
                    false, false, false, 1, null, null), new PrintWriter(text));
        } finally {
            Locale.setDefault(previous);
        }
        List<String> names = new ArrayList<>();
        for (String line : text.toString().split("\n")) {
            JsonNode json = new ObjectMapper().readTree(line);
            names.add(json.get("name").asText());
            assertTrue(json.get("median_s").isNumber(), line);
        }
        assertEquals(List.of("load_weights", "qformer", "lm_decode_per_token"), names);
    }

    /** {@code --profile} says where the language model's prefill and decode steps spend their time, Flan-T5's too. */
    @Test
    void profilesTheLanguageModelStages() throws Exception {
        Path artifact = dir.resolve("t5.b2z");
        Converter.convert(List.of(Fixtures.model("t5")), artifact, Converter.Options.defaults(), ConversionProgress.NONE);
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream previous = System.err;
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            StageBenchmark.run(artifact, new StageBenchmark.Options(1, 0, 4, 0, Set.of("lm_prefill", "lm_decode_per_token"),
                    true, false, false, 1, null, null), new PrintWriter(new StringWriter()));
        } finally {
            System.setErr(previous);
        }
        String profile = err.toString(StandardCharsets.UTF_8);
        assertTrue(profile.contains("lm_prefill, profiled (eager)"), profile);
        assertTrue(profile.contains("lm_decode_per_token (20 steps), profiled (eager)"), profile);
        assertTrue(profile.contains("sgemm gemv"), profile);
    }

    @Test
    void aFloat32ArtifactAgainstItselfHasNoLogitsError() throws Exception {
        Path artifact = convert("opt", DType.F32);
        JsonNode line = logitsError(artifact, artifact);
        assertEquals(0.0, line.get("relative_rms").asDouble());
        assertEquals(1.0, line.get("top1_agreement").asDouble());
        assertEquals(0.0, line.get("max_abs_diff").asDouble());
        assertEquals(LogitsError.TOKENS, line.get("tokens").asInt());
    }

    /**
     * The relative RMS error stays within the per-type tolerance that verify holds logits to (docs/DESIGN.md "Parity
     * and tolerances"), taken relative to the RMS instead of the largest magnitude: 16 rounding steps of the type
     * (bfloat16 3.1%, int8 6.3%). The fixtures' logits moved by 1.3-1.6 steps of their largest magnitude (OPT).
     */
    @ParameterizedTest
    @CsvSource({"opt, BF16", "opt, I8", "t5, BF16", "t5, I8"})
    void narrowerTypesStayWithinTheirTolerance(String model, DType type) throws Exception {
        Path reference = convert(model, DType.F32);
        JsonNode line = logitsError(convert(model, type), reference);
        double relativeRms = line.get("relative_rms").asDouble();
        double top1 = line.get("top1_agreement").asDouble();
        assertTrue(relativeRms > 0 && relativeRms < new StorageTolerance(type).of(0, 1), line.toString());
        assertTrue(top1 >= 0 && top1 <= 1, line.toString());
        assertTrue(Double.isFinite(line.get("max_abs_diff").asDouble()), line.toString());
    }

    /**
     * What the stage dumps is what it measured: the error recomputed from the two dumped logits is the reported
     * one, the ids are the seeded tokens, and the queries have the language model's width, so that another
     * implementation fed these files measures itself on our inputs.
     */
    @Test
    void theDumpedInputsAndLogitsReproduceTheReportedError() throws Exception {
        Path reference = convert("opt", DType.F32);
        Path dump = dir.resolve("dump");
        JsonNode line = logitsError(convert("opt", DType.I8), reference, dump);
        // in float64, as the stage sums
        INDArray expected = Nd4j.createFromNpyFile(dump.resolve(LogitsError.REFERENCE_LOGITS).toFile())
                .castTo(DataType.DOUBLE);
        INDArray actual = Nd4j.createFromNpyFile(dump.resolve(LogitsError.LOGITS).toFile()).castTo(DataType.DOUBLE);
        assertEquals(LogitsError.TOKENS, expected.size(0));
        double relativeRms = actual.sub(expected).norm2Number().doubleValue() / expected.norm2Number().doubleValue();
        assertEquals(line.get("relative_rms").asDouble(), relativeRms, 1e-6 * relativeRms, line.toString());

        INDArray ids = Nd4j.createFromNpyFile(dump.resolve(LogitsError.IDS).toFile());
        assertEquals(DataType.INT64, ids.dataType());
        Blip2Config config;
        try (ArtifactWeights weights = ArtifactWeights.open(reference)) {
            config = weights.config();
        }
        assertArrayEquals(StageBenchmark.randomIds(config, LogitsError.TOKENS, 0), ids.toLongVector());
        INDArray queries = Nd4j.createFromNpyFile(dump.resolve(LogitsError.QUERIES).toFile());
        assertEquals(config.numQueryTokens(), queries.size(1));
        assertEquals(config.text().vocabSize(), expected.size(1));
    }

    @Test
    void theLogitsErrorNeedsAReferenceOfTheSameModel() throws Exception {
        Path artifact = convert("opt", DType.I8);
        assertThrows(BadInputException.class, () -> logitsError(artifact, null));
        BadInputException other = assertThrows(BadInputException.class,
                () -> logitsError(artifact, convert("t5", DType.F32)));
        assertTrue(other.getMessage().contains("not the same model"), other.getMessage());
    }

    private Path convert(String model, DType type) {
        Path artifact = dir.resolve(model + "-" + type + ".b2z");
        if (!Files.exists(artifact)) {
            Converter.convert(List.of(Fixtures.model(model)), artifact, Converter.Options.defaults().withDtype(type),
                    ConversionProgress.NONE);
        }
        return artifact;
    }

    /** The lm_logits_error line of {@code artifact} against {@code reference}. */
    private static JsonNode logitsError(Path artifact, Path reference) throws Exception {
        return logitsError(artifact, reference, null);
    }

    /** The same, writing the stage's inputs and logits under {@code dump} when not null. */
    private static JsonNode logitsError(Path artifact, Path reference, Path dump) throws Exception {
        StringWriter text = new StringWriter();
        StageBenchmark.run(artifact, new StageBenchmark.Options(1, 0, 4, 0, Set.of(LogitsError.NAME), false, false,
                false, 1, reference, dump), new PrintWriter(text));
        String[] lines = text.toString().split("\n");
        JsonNode line = new ObjectMapper().readTree(lines[lines.length - 1]);
        assertEquals(LogitsError.NAME, line.get("name").asText());
        return line;
    }
}
