package dev.blip2dl4j.artifact;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;

/**
 * {@code manifest.json}: what an artifact holds and where it came from. Written last, because it
 * carries the SHA-256 of every tensor as stored.
 *
 * @param format        always {@link #FORMAT}
 * @param formatVersion bumped on any incompatible change of the layout
 * @param modelClass    the Hugging Face class the weights belong to, e.g. Blip2ForConditionalGeneration
 * @param languageModel "opt", "t5", or null for the retrieval model
 * @param converter     name and version of the program that wrote the artifact
 * @param source        the files converted, with their sizes and SHA-256
 * @param dtype         the floating-point type of the stored weights
 * @param tensors       every tensor, in the order its data lies in the file
 * @param notes         what the conversion dropped or checked, in words
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Manifest(String format, int formatVersion, String modelClass, String languageModel,
                       String converter, Source source, String dtype, List<Tensor> tensors, List<String> notes) {

    public static final String FORMAT = "blip2-dl4j";
    public static final int FORMAT_VERSION = 1;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** @param format how the source was read: "hf-safetensors", "lavis", ... */
    public record Source(String format, List<SourceFile> files) {
    }

    public record SourceFile(String name, long size, String sha256) {
    }

    /**
     * @param entry  the zip entry holding the raw little-endian bytes, row-major
     * @param sha256 of exactly those bytes
     */
    public record Tensor(String name, String dtype, long[] shape, String entry, String sha256) {
        public long numel() {
            return Arrays.stream(shape).reduce(1, Math::multiplyExact);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Tensor t && name.equals(t.name) && dtype.equals(t.dtype)
                    && Arrays.equals(shape, t.shape) && entry.equals(t.entry) && sha256.equals(t.sha256);
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
