package dev.blip2dl4j.convert.torch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Just enough of the safetensors format to compare tensors against (8-byte little-endian header
 * length, a JSON header, the data). The project's real reader lives in the safetensors package.
 */
final class SafetensorsTestReader {

    record Tensor(String dtype, long[] shape, byte[] data) {
    }

    private SafetensorsTestReader() {
    }

    static Map<String, Tensor> read(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        int headerLength = (int) ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        JsonNode header = new ObjectMapper().readTree(new String(all, 8, headerLength, StandardCharsets.UTF_8));
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : header.properties()) {
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            JsonNode info = e.getValue();
            long[] shape = new long[info.get("shape").size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = info.get("shape").get(i).asLong();
            }
            int begin = 8 + headerLength + info.get("data_offsets").get(0).asInt();
            int end = 8 + headerLength + info.get("data_offsets").get(1).asInt();
            tensors.put(e.getKey(), new Tensor(info.get("dtype").asText(), shape, Arrays.copyOfRange(all, begin, end)));
        }
        return tensors;
    }
}
