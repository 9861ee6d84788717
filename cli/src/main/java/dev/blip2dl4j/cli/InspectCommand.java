package dev.blip2dl4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.finetune.TrainingCheckpoint;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"List an artifact's tensors (dtype, shape, SHA-256 of the bytes as stored) and its manifest.",
                "Every tensor is hashed from the file and checked against the manifest, every other file against "
                        + "its CRC-32, and the manifest against the model its config.json describes; a mismatch "
                        + "means the artifact is damaged (exit code 3)."})
final class InspectCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "ARTIFACT", description = "A .b2z file.")
    Path artifact;

    @Option(names = "--json", description = "Print JSON instead of a table.")
    boolean json;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        try (Artifact a = Artifact.open(artifact)) {
            Manifest m = a.manifest();
            a.checkFiles();
            if (a.file(TrainingCheckpoint.STATE_FILE).isEmpty()) {
                a.modelConfig(); // a fine-tuning checkpoint holds only part of a model
            }
            Map<String, String> hashes = a.hashes();
            if (json) {
                out.println(json(a, m, hashes));
            } else {
                table(out, a, m, hashes);
            }
            out.flush();
            a.checkHashes(hashes);
        }
        return 0;
    }

    private String json(Artifact a, Manifest m, Map<String, String> hashes) throws IOException {
        ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = mapper.createObjectNode();
        root.put("file", artifact.toString());
        root.put("size", Files.size(artifact));
        ObjectNode manifest = mapper.valueToTree(m);
        manifest.remove("tensors");
        root.set("manifest", manifest);
        ArrayNode files = root.putArray("files");
        a.fileNames().forEach(files::add);
        ArrayNode tensors = root.putArray("tensors");
        for (Manifest.Tensor t : m.tensors()) {
            ObjectNode node = tensors.addObject();
            node.put("name", t.name());
            node.put("dtype", t.dtype());
            ArrayNode shape = node.putArray("shape");
            Arrays.stream(t.shape()).forEach(shape::add);
            node.put("sha256", hashes.get(t.name()));
            node.put("matches_manifest", t.sha256().equals(hashes.get(t.name())));
        }
        return mapper.writeValueAsString(root);
    }

    private void table(PrintWriter out, Artifact a, Manifest m, Map<String, String> hashes) throws IOException {
        out.printf("%s  (%,d bytes)%n", artifact, Files.size(artifact));
        out.printf("  model: %s%s, %s, %d tensors, %,d values%n", m.modelClass(),
                m.languageModel() == null ? "" : " (" + m.languageModel() + ")", m.dtype(), m.tensors().size(),
                m.tensors().stream().mapToLong(Manifest.Tensor::numel).sum());
        out.printf("  written by: %s, format %s v%d%n", m.converter(), m.format(), m.formatVersion());
        if (m.source() != null) { // a fine-tuning checkpoint records none
            out.printf("  source (%s):%n", m.source().format());
            m.source().files().forEach(f -> out.printf("    %s  %,d bytes  sha256 %s%n", f.name(), f.size(), f.sha256()));
        }
        out.printf("  files: %s%n", String.join(", ", a.fileNames()));
        m.notes().forEach(n -> out.println("  note: " + n));
        int width = m.tensors().stream().mapToInt(t -> t.name().length()).max().orElse(10);
        out.printf("%n%-" + width + "s  %-5s  %-18s  %s%n", "tensor", "dtype", "shape", "sha256");
        for (Manifest.Tensor t : m.tensors()) {
            String hash = hashes.get(t.name());
            out.printf("%-" + width + "s  %-5s  %-18s  %s%s%n", t.name(), t.dtype(), Arrays.toString(t.shape()), hash,
                    hash.equals(t.sha256()) ? "" : "  MISMATCH (manifest " + t.sha256() + ")");
        }
    }
}
