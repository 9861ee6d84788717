package dev.blip2dl4j.compute;

import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.tensor.StoredTensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * Plain Java loops over any storage type: the path that runs where no native kernel does (no AVX2, another
 * platform, float16 weights) and the one the native paths are tested beside. Each weight element is decoded as
 * it is read, the sums run in float32, int8 blocks are summed before their scale is applied (as the int8 kernel
 * does).
 */
final class PortableKernels {
    private PortableKernels() {
    }

    /** {@code y = x W^T (+ y)}. */
    static void linear(FloatMatrix x, StoredTensor w, FloatMatrix y, boolean accumulate) {
        FloatBuffer in = x.buffer();
        FloatBuffer out = y.buffer();
        ByteBuffer data = w.data().slice().order(ByteOrder.LITTLE_ENDIAN);
        FloatBuffer scales = w.scales() == null ? null : w.scales().slice();
        int k = x.cols();
        int block = w.blockSize() == 0 ? k : w.blockSize();
        int blocks = k / block;
        for (int j = 0; j < y.cols(); j++) {
            long weightRow = (long) j * k;
            for (int i = 0; i < x.rows(); i++) {
                long row = i * x.rowStride();
                float sum = 0;
                for (int b = 0; b < blocks; b++) {
                    float part = 0;
                    for (int c = b * block; c < (b + 1) * block; c++) {
                        part += in.get((int) (row + c)) * element(w, data, weightRow + c);
                    }
                    sum += scales == null ? part : part * scales.get(j * blocks + b);
                }
                int at = (int) (i * y.rowStride() + j);
                out.put(at, accumulate ? out.get(at) + sum : sum);
            }
        }
    }

    /** Rows {@code [from, from + count)} of W decoded to float32 (int8 times its scales) into {@code into}. */
    static void decodeRows(StoredTensor w, int from, int count, FloatBuffer into) {
        ByteBuffer data = w.data().slice().order(ByteOrder.LITTLE_ENDIAN);
        FloatBuffer scales = w.scales() == null ? null : w.scales().slice();
        int k = Math.toIntExact(w.shape()[1]);
        int block = w.blockSize() == 0 ? k : w.blockSize();
        int blocks = k / block;
        for (int r = 0; r < count; r++) {
            long row = (long) (from + r) * k;
            for (int c = 0; c < k; c++) {
                float v = element(w, data, row + c);
                into.put(r * k + c, scales == null ? v : v * scales.get((from + r) * blocks + c / block));
            }
        }
    }

    private static float element(StoredTensor w, ByteBuffer data, long index) {
        int i = Math.toIntExact(index);
        return switch (w.dtype()) {
            case F32 -> data.getFloat(i * 4);
            case BF16 -> Float.intBitsToFloat(data.getShort(i * 2) << 16);
            case F16 -> FloatConversion.halfToFloat(data.getShort(i * 2));
            case I8 -> data.get(i);
            default -> throw new IllegalArgumentException("no product reads " + w.dtype());
        };
    }
}
