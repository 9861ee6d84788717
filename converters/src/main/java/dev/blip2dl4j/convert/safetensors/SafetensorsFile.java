package dev.blip2dl4j.convert.safetensors;

import dev.blip2dl4j.tensor.Shapes;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import dev.blip2dl4j.convert.tensor.StorageView;
import dev.blip2dl4j.convert.tensor.TensorSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One safetensors file: an 8-byte little-endian header length, a JSON header naming every tensor's
 * dtype, shape and byte range, then the raw data. Only the header is read here; every range is checked
 * against the file's size so that a truncated or corrupt file is reported before any conversion starts.
 */
public final class SafetensorsFile implements TensorSource {
    /** The format's own limit; a larger value means the first bytes are not a safetensors header. */
    private static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;
    /** By offset; an empty tensor before one that starts where it stands. */
    private static final Comparator<SourceTensor> FILE_ORDER =
            Comparator.comparingLong(SourceTensor::dataOffset).thenComparingLong(SourceTensor::byteSize);
    /** Two keys of one name inside a tensor's entry are refused as well. */
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY);

    private final Path path;
    private final List<SourceTensor> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, List<SourceTensor> tensors, Map<String, String> metadata) {
        this.path = path;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    public static SafetensorsFile open(Path path) {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw new BadInputException(path, "only " + fileSize + " bytes long: too short to be a safetensors file");
            }
            ByteBuffer lengthBytes = readExactly(channel, 0, 8, path).order(ByteOrder.LITTLE_ENDIAN);
            long headerLength = lengthBytes.getLong();
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
                throw new BadInputException(path, "the first 8 bytes give a header length of " + headerLength
                        + " bytes, which is not a safetensors header (the file is corrupt or in another format)");
            }
            if (8 + headerLength > fileSize) {
                throw new BadInputException(path, "the header is " + headerLength + " bytes long but the file has only "
                        + fileSize + " bytes: the file is truncated");
            }
            String header = StandardCharsets.UTF_8.decode(readExactly(channel, 8, (int) headerLength, path)).toString();
            return parse(path, header, 8 + headerLength, fileSize);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + path, e);
        }
    }

    private static SafetensorsFile parse(Path path, String header, long dataStart, long fileSize) {
        Map<String, String> metadata = new LinkedHashMap<>();
        List<SourceTensor> tensors = new ArrayList<>();
        Set<String> names = new HashSet<>();
        // Read key by key: a tree keeps only the last of two entries of one name.
        try (JsonParser parser = JSON.createParser(header)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                throw new BadInputException(path, "the header is not a JSON object: the file is corrupt");
            }
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                String name = parser.currentName();
                parser.nextToken();
                JsonNode value = parser.readValueAsTree();
                if (!names.add(name)) {
                    throw new BadInputException(path, "the header names '" + name + "' twice: the file is corrupt"
                            + " (a name may appear once; the safetensors library refuses such a file)");
                }
                if (name.equals("__metadata__")) {
                    value.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                } else {
                    tensors.add(tensor(path, name, value, dataStart, fileSize));
                }
            }
            if (parser.nextToken() != null) {
                throw new BadInputException(path, "the header has more after its JSON object: the file is corrupt");
            }
        } catch (JsonProcessingException e) {
            throw new BadInputException(path, "the header is not valid JSON (" + e.getOriginalMessage()
                    + "): the file is corrupt");
        } catch (IOException e) {
            throw new UncheckedIOException("reading a header held in memory failed", e);
        }
        tensors.sort(FILE_ORDER);
        checkPacked(path, tensors, dataStart, fileSize - dataStart);
        return new SafetensorsFile(path, List.copyOf(tensors), Map.copyOf(metadata));
    }

    /**
     * The data section is the tensors' bytes packed end to end in offset order, from its first byte to the
     * file's last, as the safetensors library checks: an overlap, a gap or bytes after the last tensor mean
     * the header does not describe the data (two entries of one name, a hand-edited offset).
     */
    private static void checkPacked(Path path, List<SourceTensor> inFileOrder, long dataStart, long dataBytes) {
        long end = 0;
        String previous = null;
        for (SourceTensor t : inFileOrder) {
            long begin = t.dataOffset() - dataStart;
            if (begin < end) {
                throw new BadInputException(path, "the data of tensors '" + previous + "' and '" + t.name()
                        + "' overlap (bytes " + begin + ".." + end + " of the data): the header is corrupt");
            }
            if (begin > end) {
                throw new BadInputException(path, "bytes " + end + ".." + begin + " of the data, "
                        + (previous == null ? "before the first tensor '" + t.name() + "'"
                        : "between tensors '" + previous + "' and '" + t.name() + "'")
                        + ", belong to no tensor: the header is corrupt (safetensors packs tensors without gaps)");
            }
            end = begin + t.byteSize();
            previous = t.name();
        }
        if (end != dataBytes) {
            throw new BadInputException(path, "the file has " + (dataBytes - end) + " bytes after the data of its"
                    + " last tensor" + (previous == null ? "" : " '" + previous + "'") + ", which belong to no tensor:"
                    + " the header is corrupt");
        }
    }

    private static SourceTensor tensor(Path path, String name, JsonNode entry, long dataStart, long fileSize) {
        String where = "tensor '" + name + "'";
        if (!entry.isObject()) {
            throw new BadInputException(path, where + " has no dtype/shape/data_offsets entry: the header is corrupt");
        }
        String dtypeName = entry.path("dtype").asText("");
        DType dtype = DType.fromSafetensorsName(dtypeName).orElseThrow(() -> new BadInputException(path,
                where + " has dtype '" + dtypeName + "', which BLIP-2 checkpoints do not use (supported: "
                        + "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)"));
        long[] shape = longs(path, where + " shape", entry.get("shape"));
        long[] offsets = longs(path, where + " data_offsets", entry.get("data_offsets"));
        if (offsets.length != 2 || offsets[0] > offsets[1]) {
            throw new BadInputException(path, where + " has data_offsets " + entry.get("data_offsets")
                    + "; expected [begin, end] with begin <= end");
        }
        long bytes;
        try {
            bytes = Math.multiplyExact(Shapes.numel(shape), dtype.size());
        } catch (ArithmeticException e) {
            throw new BadInputException(path, where + " has shape " + Arrays.toString(shape) + ", more " + dtype
                    + " bytes than 64 bits can count: the header is corrupt");
        }
        if (offsets[1] - offsets[0] != bytes) {
            throw new BadInputException(path, where + " is " + dtype + " " + Arrays.toString(shape)
                    + " (" + bytes + " bytes) but its data_offsets span " + (offsets[1] - offsets[0]) + " bytes");
        }
        if (offsets[1] > fileSize - dataStart) {
            throw new BadInputException(path, where + " ends at byte " + offsets[1] + " of the data, past the end"
                    + " of the file (" + (fileSize - dataStart) + " bytes of data): the file is truncated");
        }
        return new SourceTensor(name, dtype, shape, StorageView.contiguous(path, dataStart + offsets[0], bytes, shape));
    }

    private static long[] longs(Path path, String what, JsonNode node) {
        if (node == null || !node.isArray()) {
            throw new BadInputException(path, what + " is missing or not a list: the header is corrupt");
        }
        long[] values = new long[node.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode v = node.get(i);
            if (!v.canConvertToLong() || !v.isIntegralNumber() || v.asLong() < 0) {
                throw new BadInputException(path, what + " holds " + v + ", not a non-negative integer");
            }
            values[i] = v.asLong();
        }
        return values;
    }

    private static ByteBuffer readExactly(FileChannel channel, long offset, int length, Path path) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, offset + buffer.position()) < 0) {
                throw new BadInputException(path, "file ended after " + (offset + buffer.position()) + " bytes");
            }
        }
        return buffer.flip();
    }

    public Path path() {
        return path;
    }

    /** The free-form string map under {@code __metadata__} (transformers writes {"format": "pt"}). */
    public Map<String, String> metadata() {
        return metadata;
    }

    @Override
    public String description() {
        return "safetensors file " + path;
    }

    @Override
    public List<Path> files() {
        return List.of(path);
    }

    @Override
    public List<SourceTensor> tensors() {
        return tensors;
    }
}
