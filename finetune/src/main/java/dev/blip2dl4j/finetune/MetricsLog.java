package dev.blip2dl4j.finetune;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.OutputFile;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The run's metrics as JSON lines: first the run's settings ({@code "kind": "settings"}: every setting, the
 * data files' SHA-256, the base model, the first and last step), then one per optimizer step ({@code "kind":
 * "train"}: step, epoch, loss, lr, grad_norm, seconds) and one per validation ({@code "kind": "validation"}:
 * step, epoch, loss, accuracy, exact_match, examples), each with its UTC time ({@code "time"}, ISO 8601),
 * flushed as they come so that a killed run leaves its log. A resumed run keeps the settings lines and the
 * lines up to the checkpoint's step, drops those the killed run wrote after it, which it redoes, and adds a
 * settings line of its own.
 * The file is written in place (a killed run's log is what it logged), after the output policy's check.
 */
public final class MetricsLog implements Finetuner.Listener, AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final FinetuneSettings settings;
    private final Finetuner.Provenance provenance;
    private BufferedWriter out;

    public MetricsLog(OutputFile file, FinetuneSettings settings, Finetuner.Provenance provenance) {
        this.file = file.path();
        this.settings = settings;
        this.provenance = provenance;
    }

    public Path file() {
        return file;
    }

    @Override
    public void started(int firstStep, int totalSteps) {
        try {
            List<String> kept = new ArrayList<>();
            if (firstStep > 0 && Files.exists(file)) {
                for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                    JsonNode m = line.isBlank() ? null : JSON.readTree(line);
                    if (m != null && (m.path("kind").asText().equals("settings")
                            || m.path("step").asInt(Integer.MAX_VALUE) <= firstStep)) {
                        kept.add(line);
                    }
                }
            }
            Files.write(file, kept, StandardCharsets.UTF_8);
            out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the metrics log " + file, e);
        }
        ObjectNode line = JSON.createObjectNode().put("kind", "settings").put("first_step", firstStep)
                .put("total_steps", totalSteps);
        line.set("settings", JSON.valueToTree(settings.all()));
        line.set("data", JSON.valueToTree(provenance.data()));
        line.put("base_model", provenance.baseModel());
        write(line);
    }

    @Override
    public void stepped(Finetuner.StepRecord s) {
        ObjectNode line = JSON.createObjectNode().put("kind", "train").put("step", s.step()).put("epoch", s.epoch())
                .put("loss", s.loss()).put("lr", s.learningRate()).put("grad_norm", s.gradientNorm())
                .put("seconds", s.seconds());
        write(line);
    }

    @Override
    public void validated(Finetuner.ValidationRecord v) {
        ObjectNode line = JSON.createObjectNode().put("kind", "validation").put("step", v.step()).put("epoch", v.epoch())
                .put("loss", v.loss()).put("accuracy", v.evaluation().accuracy())
                .put("exact_match", v.evaluation().exactMatch()).put("examples", v.evaluation().predictions().size());
        write(line);
    }

    private void write(ObjectNode line) {
        line.put("time", Instant.now().toString());
        try {
            out.write(line.toString());
            out.newLine();
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the metrics log " + file, e);
        }
    }

    @Override
    public void close() {
        if (out != null) {
            try {
                out.close();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write the metrics log " + file, e);
            }
        }
    }
}
