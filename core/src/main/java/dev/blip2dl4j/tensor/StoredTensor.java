package dev.blip2dl4j.tensor;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;

/**
 * A tensor as the products read it, in its storage type, without a copy.
 *
 * @param name      canonical name
 * @param dtype     storage type of {@code data}: F32, BF16, F16 or I8 (symmetric)
 * @param shape     row-major shape; {@code [out, in]} for a Linear weight
 * @param data      little-endian row-major elements (direct or mapped when read from an artifact)
 * @param scales    for I8, float32 scales per output row ({@code blockSize == 0}) or per block of
 *                  {@code blockSize} input columns ({@code [out, in / blockSize]}): value = int8 * scale;
 *                  null for the other types
 * @param blockSize 0 for one scale per output row, else the input columns a scale covers
 */
public record StoredTensor(String name, DType dtype, long[] shape, ByteBuffer data, FloatBuffer scales,
                           int blockSize) {
}
