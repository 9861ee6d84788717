package dev.blip2dl4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;

@Command(name = "inspect", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"List an artifact's tensors (dtype, shape, SHA-256 of the bytes as stored) and its manifest.",
                "Every tensor is hashed from the file and checked against the manifest; a mismatch means the "
                        + "artifact is damaged (exit code 3)."})
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
            Map<String, String> hashes = hashAll(a, m.tensors());
            List<String> damaged = m.tensors().stream().filter(t -> !t.sha256().equals(hashes.get(t.name())))
                    .map(Manifest.Tensor::name).toList();
            if (json) {
                out.println(json(a, m, hashes));
            } else {
                table(out, a, m, hashes);
            }
            out.flush();
            if (!damaged.isEmpty()) {
                throw new BadInputException(artifact, damaged.size() + " tensors do not match the SHA-256 in the "
                        + "manifest, so the artifact is damaged: " + String.join(", ", damaged.subList(0, Math.min(5, damaged.size())))
                        + (damaged.size() > 5 ? " ..." : ""));
            }
        }
        return 0;
    }

    /** SHA-256 of every tensor's stored bytes, read through the mapping, tensors hashed in parallel. */
    private static Map<String, String> hashAll(Artifact a, List<Manifest.Tensor> tensors) {
        Map<String, String> hashes = new ConcurrentHashMap<>();
        tensors.parallelStream().forEach(t -> {
            ByteBuffer bytes = a.map(t.name());
            MessageDigest digest = Sha256.newDigest();
            digest.update(bytes);
            hashes.put(t.name(), Sha256.hex(digest));
        });
        return hashes;
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
        out.printf("  source (%s):%n", m.source().format());
        m.source().files().forEach(f -> out.printf("    %s  %,d bytes  sha256 %s%n", f.name(), f.size(), f.sha256()));
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
