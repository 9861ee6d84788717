package dev.blip2dl4j.diagnostics.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bench's lines are JSON whatever the locale: a German one writes decimal commas with String.format. */
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
                    false, false, false, 1), new PrintWriter(text));
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
}
