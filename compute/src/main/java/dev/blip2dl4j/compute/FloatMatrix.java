package dev.blip2dl4j.compute;

import org.bytedeco.javacpp.FloatPointer;

import java.nio.FloatBuffer;

/**
 * A row-major float32 matrix in native memory, read or written in place: an activation, or a view of some of a
 * wider array's columns (then {@code rowStride > cols}).
 *
 * @param data      the first element
 * @param rows      rows
 * @param cols      columns
 * @param rowStride elements from one row to the next
 */
public record FloatMatrix(FloatPointer data, int rows, int cols, long rowStride) {

    public FloatMatrix {
        if (data == null || data.isNull()) {
            throw new IllegalArgumentException("a matrix needs memory, got a null pointer");
        }
        if (rows < 1 || cols < 1 || rowStride < cols) {
            throw new IllegalArgumentException("bad matrix: " + rows + " x " + cols + " with row stride " + rowStride);
        }
        if (data.address() % Float.BYTES != 0) {
            throw new IllegalArgumentException("a float matrix must be 4-byte aligned, got address " + data.address());
        }
    }

    /** Every element from the first to the last, as a buffer the Java kernels index. */
    FloatBuffer buffer() {
        return new FloatPointer(data).capacity((rows - 1) * rowStride + cols).asBuffer();
    }
}
