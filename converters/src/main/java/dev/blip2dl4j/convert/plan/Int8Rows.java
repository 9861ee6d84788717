package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.tensor.Int8Quantization;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.util.function.Supplier;

/**
 * A matrix quantized to int8 as its float32 bytes stream past, one row at a time: a row is gathered (its bytes may
 * arrive split anywhere), quantized per row or per block and written; only the scales are kept until the end, where
 * they follow the matrix into the artifact. Memory: one row and the scales, whatever the matrix's size.
 */
final class Int8Rows {
    private final String name;
    private final ArtifactWriter.TensorOutput output;
    private final int columns;
    private final int blockSize;
    private final byte[] rowBytes;
    private final float[] row;
    private final byte[] quantized;
    private final float[] scales;
    private final MessageDigest digest = Sha256.newDigest();
    private int filled;
    private int rowsDone;

    Int8Rows(String name, long[] shape, int blockSize, ArtifactWriter.TensorOutput output) {
        this.name = name;
        this.output = output;
        this.columns = Math.toIntExact(shape[1]);
        this.blockSize = blockSize == 0 ? columns : blockSize;
        this.rowBytes = new byte[columns * Float.BYTES];
        this.row = new float[columns];
        this.quantized = new byte[columns];
        this.scales = new float[Math.toIntExact(shape[0] * (columns / this.blockSize))];
    }

    /** Float32 little-endian bytes of the matrix, in order. */
    void accept(byte[] bytes, int offset, int length) {
        while (length > 0) {
            int n = Math.min(length, rowBytes.length - filled);
            System.arraycopy(bytes, offset, rowBytes, filled, n);
            filled += n;
            offset += n;
            length -= n;
            if (filled == rowBytes.length) {
                quantizeRow();
                filled = 0;
            }
        }
    }

    private void quantizeRow() {
        ByteBuffer.wrap(rowBytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(row);
        int blocks = columns / blockSize;
        for (int b = 0; b < blocks; b++) {
            float scale = Int8Quantization.quantize(row, b * blockSize, blockSize, quantized, b * blockSize);
            if (Float.isNaN(scale)) {
                throw new BadInputException("tensor '" + name + "' holds a value that is not finite in row " + rowsDone
                        + ": it cannot be stored as int8 (convert it as float32 or bfloat16)");
            }
            scales[rowsDone * blocks + b] = scale;
        }
        output.write(quantized, 0, columns);
        digest.update(quantized, 0, columns);
        rowsDone++;
    }

    /** Closes the matrix's entry and writes its scales; returns the SHA-256 of its int8 bytes. */
    Supplier<String> finish() {
        if (filled != 0) {
            throw new IllegalStateException("tensor " + name + " ended inside a row");
        }
        String hex = Sha256.hex(digest);
        output.finish(() -> hex, scales);
        return () -> hex;
    }
}
