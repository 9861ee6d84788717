package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.tensor.Int8Quantization;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.util.concurrent.Future;
import java.util.function.Supplier;

/**
 * A matrix quantized to int8 as its float32 bytes stream past, one row at a time: a row is gathered (its bytes may
 * arrive split anywhere) and quantized per row or per block into one of two output buffers; a full buffer is
 * written in one piece and hashed on the tensor hasher while the other fills. Only the scales are kept until the
 * end, where they follow the matrix into the artifact. Memory: one row, two buffers and the scales, whatever the
 * matrix's size.
 */
final class Int8Rows {
    /** Large sequential writes, and few hashing steps. */
    private static final int BUFFER_BYTES = 4 << 20;

    private final String name;
    private final ArtifactWriter.TensorOutput output;
    private final int columns;
    private final int blockSize;
    private final byte[] rowBytes;
    private final float[] row;
    private final float[] scales;
    private final MessageDigest digest = Sha256.newDigest();
    private final Hasher hasher;
    private final byte[][] buffers;
    /** Per buffer, the hashing of what it last held: it is refilled only once that is done. */
    private final Future<?>[] hashed = new Future<?>[2];
    private int current;
    private int buffered;
    private int filled;
    private int rowsDone;

    Int8Rows(String name, long[] shape, int blockSize, ArtifactWriter.TensorOutput output, Hasher hasher) {
        this.name = name;
        this.output = output;
        this.hasher = hasher;
        this.columns = Math.toIntExact(shape[1]);
        this.blockSize = blockSize == 0 ? columns : blockSize;
        this.rowBytes = new byte[columns * Float.BYTES];
        this.row = new float[columns];
        this.scales = new float[Math.toIntExact(shape[0] * (columns / this.blockSize))];
        int bufferBytes = (int) Math.min(shape[0] * columns, Math.max(columns, BUFFER_BYTES / columns * columns));
        this.buffers = new byte[][] {new byte[bufferBytes], new byte[bufferBytes]};
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
        byte[] quantized = buffers[current];
        for (int b = 0; b < blocks; b++) {
            float scale = Int8Quantization.quantize(row, b * blockSize, blockSize, quantized, buffered + b * blockSize);
            if (Float.isNaN(scale)) {
                throw new BadInputException("tensor '" + name + "' holds a value that is not finite in row " + rowsDone
                        + ": it cannot be stored as int8 (convert it as float32 or bfloat16)");
            }
            scales[rowsDone * blocks + b] = scale;
        }
        buffered += columns;
        rowsDone++;
        if (buffered + columns > quantized.length) {
            flush();
        }
    }

    /** Writes the current buffer, hands it to the hasher and turns to the other one. */
    private void flush() {
        if (buffered == 0) {
            return;
        }
        output.write(buffers[current], 0, buffered);
        hashed[current] = hasher.update(digest, ByteBuffer.wrap(buffers[current], 0, buffered));
        current = 1 - current;
        buffered = 0;
        if (hashed[current] != null) {
            Hasher.await(hashed[current]);
        }
    }

    /** Closes the matrix's entry and writes its scales; returns the SHA-256 of its int8 bytes. */
    Supplier<String> finish() {
        if (filled != 0) {
            throw new IllegalStateException("tensor " + name + " ended inside a row");
        }
        flush();
        Future<String> hex = hasher.hex(digest);
        output.finish(() -> Hasher.await(hex), scales);
        return () -> Hasher.await(hex);
    }
}
