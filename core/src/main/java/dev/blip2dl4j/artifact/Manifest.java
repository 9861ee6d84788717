package dev.blip2dl4j.artifact;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * {@code manifest.json}: what an artifact holds and where it came from. Written last, because it
 * carries the SHA-256 of every tensor as stored.
 *
 * @param format        always {@link #FORMAT}
 * @param formatVersion bumped on any incompatible change of the layout: 1 for float tensors only, 2 where a
 *                      tensor is quantized (a reader of version 1 would read its int8 bytes without their scales)
 * @param modelClass    the Hugging Face class the weights belong to, e.g. Blip2ForConditionalGeneration
 * @param languageModel "opt", "t5", or null for the retrieval model
 * @param converter     name and version of the program that wrote the artifact
 * @param source        the files converted, with their sizes and SHA-256
 * @param dtype         the type asked for the stored weights ({@code --dtype}); each tensor names its own, which
 *                      the storage policy may keep float32 (norms, biases, tables, the trained parts)
 * @param tensors       every tensor, in the order its data lies in the file
 * @param notes         what the conversion dropped or checked, in words
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Manifest(String format, int formatVersion, String modelClass, String languageModel,
                       String converter, Source source, String dtype, List<Tensor> tensors, List<String> notes) {

    public static final String FORMAT = "blip2-dl4j";
    /** The newest version this build reads and writes. */
    public static final int FORMAT_VERSION = 2;
    /** The version of an artifact without quantized tensors, which readers of version 1 read as before. */
    public static final int FLOAT_FORMAT_VERSION = 1;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** @param format how the source was read: "hf-safetensors", "lavis", ... */
    public record Source(String format, List<SourceFile> files) {
    }

    public record SourceFile(String name, long size, String sha256) {
    }

    /**
     * @param entry        the zip entry holding the raw little-endian bytes, row-major
     * @param sha256       of exactly those bytes
     * @param quantization how to read an I8 tensor's values; null for the floating-point types
     */
    public record Tensor(String name, String dtype, long[] shape, String entry, String sha256,
                         Quantization quantization) {
        public Tensor(String name, String dtype, long[] shape, String entry, String sha256) {
            this(name, dtype, shape, entry, sha256, null);
        }

        public long numel() {
            return Arrays.stream(shape).reduce(1, Math::multiplyExact);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Tensor t && name.equals(t.name) && dtype.equals(t.dtype)
                    && Arrays.equals(shape, t.shape) && entry.equals(t.entry) && sha256.equals(t.sha256)
                    && Objects.equals(quantization, t.quantization);
        }

        @Override
        public int hashCode() {
            return name.hashCode();
        }

        @Override
        public String toString() {
            return name + " " + dtype + Arrays.toString(shape);
        }
    }

    /**
     * An I8 tensor's scales: value = int8 * scale, the int8 in [-127, 127].
     *
     * @param scheme     always {@link #SYMMETRIC}
     * @param blockSize  0: one scale per output row (shape[0]); else one per row and block of that many input
     *                   columns, {@code [rows, columns / blockSize]}
     * @param scaleEntry the zip entry holding the scales, float32 little-endian, row-major
     * @param scaleSha256 of exactly those bytes, checked when the scales are read
     */
    public record Quantization(String scheme, int blockSize, String scaleEntry, String scaleSha256) {
        public static final String SYMMETRIC = "symmetric";

        /** Scales per row: 1, or the row's blocks. */
        public long scalesPerRow(long[] shape) {
            return blockSize == 0 ? 1 : shape[1] / blockSize;
        }
    }

    /** The version a manifest of these tensors needs: quantized tensors need a reader that knows scales. */
    public static int formatVersionFor(List<Tensor> tensors) {
        return tensors.stream().anyMatch(t -> t.quantization() != null) ? FORMAT_VERSION : FLOAT_FORMAT_VERSION;
    }

    public byte[] toJson() {
        try {
            return JSON.writeValueAsBytes(this);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static Manifest fromJson(byte[] json) throws IOException {
        return JSON.readValue(json, Manifest.class);
    }
}
