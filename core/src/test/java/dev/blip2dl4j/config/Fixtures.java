package dev.blip2dl4j.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The reference fixtures and the bits of their files these tests read. */
final class Fixtures {
    private Fixtures() {
    }

    /** Surefire passes the repository's fixtures folder; run from the module folder, it is one up. */
    static Path root() {
        String property = System.getProperty("blip2.fixtures");
        Path root = property != null ? Path.of(property) : Path.of("..", "fixtures");
        if (!Files.isDirectory(root)) {
            throw new IllegalStateException("no fixtures at " + root.toAbsolutePath());
        }
        return root;
    }

    static Path model(String name) {
        return root().resolve(name);
    }

    /**
     * Name to shape of every tensor in a safetensors file, read from its header alone: an 8-byte
     * little-endian header length, then {name: {dtype, shape, data_offsets}} and an optional __metadata__.
     */
    static Map<String, long[]> safetensorsShapes(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file)) {
            ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            channel.read(length, 0);
            ByteBuffer header = ByteBuffer.allocate(Math.toIntExact(length.getLong(0)));
            channel.read(header, 8);
            JsonNode root = new ObjectMapper().readTree(new String(header.array(), StandardCharsets.UTF_8));
            Map<String, long[]> shapes = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> entry : root.properties()) {
                if (entry.getKey().equals("__metadata__")) {
                    continue;
                }
                JsonNode shape = entry.getValue().get("shape");
                long[] dims = new long[shape.size()];
                for (int i = 0; i < dims.length; i++) {
                    dims[i] = shape.get(i).asLong();
                }
                shapes.put(entry.getKey(), dims);
            }
            return shapes;
        }
    }

    /** A text resource beside these tests. */
    static String resource(String name) throws IOException {
        try (InputStream in = Fixtures.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource " + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    static List<String> resourceLines(String name) throws IOException {
        return resource(name).lines().filter(line -> !line.isBlank() && !line.startsWith("#")).toList();
    }
}
