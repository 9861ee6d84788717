package dev.blip2dl4j.convert.torch;

import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipArchiveOutputStream;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;

/** Writes a zip laid out as torch.save lays one out, from a hand-made pickle and storages. */
final class CheckpointZip {
    static final String FOLDER = "archive/";

    private final Map<String, byte[]> entries = new LinkedHashMap<>();
    private final Set<String> deflated = new HashSet<>();

    CheckpointZip(byte[] pickle) {
        entries.put(FOLDER + "data.pkl", pickle);
    }

    CheckpointZip storage(String key, byte[] bytes) {
        return entry("data/" + key, bytes);
    }

    /** An entry of the top folder: "byteorder", "data/0". */
    CheckpointZip entry(String name, byte[] bytes) {
        entries.put(FOLDER + name, bytes);
        return this;
    }

    CheckpointZip deflate(String name) {
        deflated.add(FOLDER + name);
        return this;
    }

    Path writeTo(Path file) throws IOException {
        entries.putIfAbsent(FOLDER + "version", "3\n".getBytes(StandardCharsets.US_ASCII));
        try (ZipArchiveOutputStream zip = new ZipArchiveOutputStream(file)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipArchiveEntry entry = new ZipArchiveEntry(e.getKey());
                byte[] bytes = e.getValue();
                if (deflated.contains(e.getKey())) {
                    entry.setMethod(ZipEntry.DEFLATED);
                } else {
                    CRC32 crc = new CRC32();
                    crc.update(bytes);
                    entry.setMethod(ZipEntry.STORED);
                    entry.setSize(bytes.length);
                    entry.setCrc(crc.getValue());
                }
                zip.putArchiveEntry(entry);
                zip.write(bytes);
                zip.closeArchiveEntry();
            }
        }
        return file;
    }

    static byte[] floats(float... values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            buffer.putFloat(v);
        }
        return buffer.array();
    }
}
