package dev.blip2dl4j.compute;

import dev.blip2dl4j.tensor.StoredTensor;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * float32 and int8 products on oneDNN's GEMM functions, whose JIT kernels follow the CPU's features (AMX, VNNI,
 * AVX-512, AVX2) and not {@code OPENBLAS_CORETYPE}.
 *
 * <p>int8: each row of x is quantized symmetrically per block of the weight's scales (the whole row when the
 * weight has one scale per output row), the blocks' int8 products accumulate exactly in int32, and each block's
 * sum is scaled by its row's and weight's scales and summed in float32: the dynamic quantization PyTorch's
 * int8 linear layers use, at a finer grain (per row and block, not per tensor).
 */
final class DnnlKernels {
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private DnnlKernels() {
    }

    /** {@code c = alpha op(a) op(b) + beta c}, row-major. */
    static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha, FloatPointer a, long lda,
                      FloatPointer b, long ldb, float beta, FloatPointer c, long ldc) {
        check(dnnl.dnnl_sgemm((byte) (transA ? 'T' : 'N'), (byte) (transB ? 'T' : 'N'), m, n, k, alpha, a, lda, b, ldb,
                beta, c, ldc), "sgemm");
    }

    /** {@code y = x W^T (+ y)} for an int8 weight with its scales. */
    static void int8(FloatMatrix x, StoredTensor w, FloatMatrix y, boolean accumulate) {
        int m = x.rows();
        int n = y.cols();
        int k = x.cols();
        int block = w.blockSize() == 0 ? k : w.blockSize();
        int blocks = k / block;
        Scratch scratch = SCRATCH.get();
        BytePointer quantized = scratch.bytes((long) m * k);
        float[] rowScales = quantize(x, block, quantized.asByteBuffer());
        IntPointer sums = scratch.ints((long) m * n);
        IntBuffer sumBuffer = sums.asBuffer();
        BytePointer weight = new BytePointer(w.data().slice()); // slice: the pointer starts at the buffer's position
        FloatBuffer weightScales = w.scales().slice();
        FloatBuffer out = y.buffer();
        for (int b = 0; b < blocks; b++) {
            check(dnnl.dnnl_gemm_s8s8s32((byte) 'N', (byte) 'T', (byte) 'F', m, n, block, 1f,
                    quantized.position((long) b * block), k, (byte) 0, weight.position((long) b * block), k, (byte) 0,
                    0f, sums, n, scratch.zero), "int8 gemm");
            boolean add = accumulate || b > 0;
            for (int i = 0; i < m; i++) {
                float rowScale = rowScales[i * blocks + b];
                long row = i * y.rowStride();
                for (int j = 0; j < n; j++) {
                    float v = rowScale * weightScales.get(j * blocks + b) * sumBuffer.get(i * n + j);
                    int at = (int) (row + j);
                    out.put(at, add ? out.get(at) + v : v);
                }
            }
        }
        quantized.position(0);
    }

    /** x's rows as int8, one scale per (row, block): {@code x ~ q * scale}, |q| <= 127. */
    private static float[] quantize(FloatMatrix x, int block, ByteBuffer q) {
        FloatBuffer in = x.buffer();
        int k = x.cols();
        int blocks = k / block;
        float[] scales = new float[x.rows() * blocks];
        for (int i = 0; i < x.rows(); i++) {
            long row = i * x.rowStride();
            for (int b = 0; b < blocks; b++) {
                int from = b * block;
                float max = 0;
                for (int c = from; c < from + block; c++) {
                    max = Math.max(max, Math.abs(in.get((int) (row + c))));
                }
                float scale = max / 127f;
                float inverse = max == 0 ? 0 : 127f / max;
                for (int c = from; c < from + block; c++) {
                    q.put(i * k + c, (byte) Math.round(in.get((int) (row + c)) * inverse));
                }
                scales[i * blocks + b] = scale;
            }
        }
        return scales;
    }

    static void check(int status, String what) {
        if (status != dnnl.dnnl_success) {
            throw new IllegalStateException("oneDNN " + what + " failed with status " + status);
        }
    }

    /** Buffers reused across calls on one thread: a decode step makes hundreds of products. */
    private static final class Scratch {
        private final IntPointer zero = new IntPointer(1L).put(0);
        private BytePointer bytes = new BytePointer(0L);
        private IntPointer ints = new IntPointer(0L);

        BytePointer bytes(long count) {
            if (bytes.capacity() < count) {
                bytes.close();
                bytes = new BytePointer(count);
            }
            return bytes.position(0).limit(count);
        }

        IntPointer ints(long count) {
            if (ints.capacity() < count) {
                ints.close();
                ints = new IntPointer(count);
            }
            return ints.position(0).limit(count);
        }
    }
}
