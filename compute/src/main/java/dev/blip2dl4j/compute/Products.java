package dev.blip2dl4j.compute;

import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.StoredTensor;
import org.bytedeco.javacpp.FloatPointer;

import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * The products of the eager runtime: {@code y [m, n] = x [m, k] W[n, k]^T (+ bias)} with the weight in its
 * storage type (float32, bfloat16, float16, int8 with scales), read where it lies (mapped or resident, never
 * copied to float32), x and y float32, sums in float32; and the plain float32 GEMM the attention needs. The
 * kernels are chosen per call by {@link Dispatcher} from the CPU's features (docs/DESIGN.md "Compute layer").
 */
public final class Products {
    /** The CPU's features and the properties' choice, read once; the row kernels ({@link RowKernels}) run at its level too. */
    static final Dispatcher DISPATCHER = Dispatcher.detect();

    private Products() {
    }

    /**
     * {@code y = x W^T + bias}, or {@code y += x W^T + bias} when {@code accumulate}.
     *
     * @param bias {@code [n]} float32, or null
     * @return the kernels that ran
     * @throws IllegalArgumentException when the shapes disagree, the weight's type has no product, its bytes
     *                                  are short or misaligned, or its scale table does not fit its shape
     */
    public static KernelPath linear(FloatMatrix x, StoredTensor w, FloatBuffer bias, FloatMatrix y, boolean accumulate) {
        return linear(DISPATCHER, x, w, bias, y, accumulate);
    }

    static KernelPath linear(Dispatcher dispatcher, FloatMatrix x, StoredTensor w, FloatBuffer bias, FloatMatrix y,
                             boolean accumulate) {
        check(x, w, bias, y);
        KernelPath path = dispatcher.choose(w.dtype(), x.rows());
        if (path.foreignThreads()) {
            NativeKernels.restThreads();
        }
        switch (path) {
            case OPENBLAS_F32 -> OpenBlasKernels.sgemm(false, true, x.rows(), y.cols(), x.cols(), 1f, x.data(),
                    x.rowStride(), floats(w), x.cols(), accumulate ? 1f : 0f, y.data(), y.rowStride());
            case DNNL_F32 -> DnnlKernels.sgemm(false, true, x.rows(), y.cols(), x.cols(), 1f, x.data(), x.rowStride(),
                    floats(w), x.cols(), accumulate ? 1f : 0f, y.data(), y.rowStride());
            case DNNL_BF16 -> Bf16Matmul.bf16(x, w, y, accumulate);
            case DNNL_I8 -> DnnlKernels.int8(x, w, y, accumulate);
            case NATIVE -> NativeKernels.linear(dispatcher.isa(), x, w, y, accumulate);
            case NATIVE_GEMM -> NativeKernels.gemm(false, true, x.rows(), y.cols(), x.cols(), 1f, x.data(),
                    x.rowStride(), floats(w), x.cols(), accumulate ? 1f : 0f, y.data(), y.rowStride());
            case NATIVE_BF16_GEMM -> NativeKernels.bf16Gemm(x, w, y, accumulate);
            case PORTABLE -> PortableKernels.linear(x, w, y, accumulate);
        }
        if (bias != null) {
            addBias(bias, y);
        }
        return path;
    }

    /**
     * {@code dx = alpha dy W (+ dx)}, W {@code [n, k]} in its storage type, dy {@code [m, n]}, dx {@code [m, k]}: the
     * backward pass of {@link #linear} to its input, which training needs through frozen weights. float32 weights go
     * to the float32 GEMM as they lie; the others are decoded a block of rows at a time into a float32 buffer (never
     * the whole matrix), by our native kernels where they load, else in Java, and the same GEMM multiplies each
     * block, so the sums are float32 over the exactly decoded weight.
     *
     * @return the kernels that decoded ({@link KernelPath#NATIVE} or {@link KernelPath#PORTABLE}), or the float32
     * GEMM's for a float32 weight
     * @throws IllegalArgumentException as {@link #linear} does
     */
    public static KernelPath linearBackward(FloatMatrix dy, StoredTensor w, float alpha, FloatMatrix dx,
                                            boolean accumulate) {
        return linearBackward(DISPATCHER, dy, w, alpha, dx, accumulate);
    }

    static KernelPath linearBackward(Dispatcher dispatcher, FloatMatrix dy, StoredTensor w, float alpha,
                                     FloatMatrix dx, boolean accumulate) {
        check(dx, w, null, dy); // the forward's shapes, input and output swapped
        int m = dy.rows();
        int n = dy.cols();
        int k = dx.cols();
        KernelPath gemm = dispatcher.gemm(m); // dy W: not the x W^T our kernels take
        if (w.dtype() == DType.F32) {
            sgemm(gemm, false, false, m, k, n, alpha, dy.data(), dy.rowStride(), floats(w), k, accumulate ? 1f : 0f,
                    dx.data(), dx.rowStride());
            return gemm;
        }
        KernelPath decoder = dispatcher.decoder();
        // a few MiB of decoded rows: large enough for the GEMM to run at speed, small next to any weight
        int rows = Math.min(n, Math.max(16, (1 << 20) / k));
        try (FloatPointer block = new FloatPointer((long) rows * k)) {
            for (int from = 0; from < n; from += rows) {
                int count = Math.min(rows, n - from);
                if (decoder == KernelPath.NATIVE) {
                    NativeKernels.decode(dispatcher.isa(), w, from, count, block);
                } else {
                    PortableKernels.decodeRows(w, from, count, block.asBuffer());
                }
                sgemm(gemm, false, false, m, k, count, alpha, at(dy.data(), from), dy.rowStride(), block, k,
                        accumulate || from > 0 ? 1f : 0f, dx.data(), dx.rowStride());
            }
        }
        return decoder;
    }

    /**
     * {@code c = alpha op(a) op(b) + beta c} in float32, row-major, each operand with its row stride: the
     * attention's products (scores, values) and the backward passes'.
     */
    public static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha, FloatPointer a,
                             long lda, FloatPointer b, long ldb, float beta, FloatPointer c, long ldc) {
        sgemm(DISPATCHER, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    static void sgemm(Dispatcher dispatcher, boolean transA, boolean transB, int m, int n, int k, float alpha,
                      FloatPointer a, long lda, FloatPointer b, long ldb, float beta, FloatPointer c, long ldc) {
        if (!transA && transB && alpha == 1 && (beta == 0 || beta == 1)
                && dispatcher.choose(DType.F32, m) == KernelPath.NATIVE) {
            NativeKernels.sgemm(dispatcher.isa(), m, n, k, a, lda, b, ldb, c, ldc, beta == 1); // a linear layer's x W^T
            return;
        }
        sgemm(dispatcher.gemm(m), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    private static void sgemm(KernelPath path, boolean transA, boolean transB, int m, int n, int k, float alpha,
                              FloatPointer a, long lda, FloatPointer b, long ldb, float beta, FloatPointer c, long ldc) {
        if (path.foreignThreads()) {
            NativeKernels.restThreads();
        }
        if (path == KernelPath.NATIVE_GEMM) {
            NativeKernels.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else if (path == KernelPath.DNNL_F32) {
            DnnlKernels.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else {
            OpenBlasKernels.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
    }

    private static FloatPointer at(FloatPointer from, long elements) {
        return new FloatPointer(from).position(from.position() + elements);
    }

    private static void check(FloatMatrix x, StoredTensor w, FloatBuffer bias, FloatMatrix y) {
        long[] shape = w.shape();
        if (shape.length != 2) {
            throw new IllegalArgumentException(w.name() + ": a product needs a 2-D weight, got shape "
                    + Arrays.toString(shape));
        }
        long n = shape[0];
        long k = shape[1];
        if (x.cols() != k || y.cols() != n || y.rows() != x.rows()) {
            throw new IllegalArgumentException(w.name() + ": shapes do not match: [" + x.rows() + ", " + x.cols()
                    + "] x " + Arrays.toString(shape) + "^T -> [" + y.rows() + ", " + y.cols() + "]");
        }
        DType dtype = w.dtype();
        if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16 && dtype != DType.I8) {
            throw new IllegalArgumentException(w.name() + ": no product reads weights stored as " + dtype
                    + " (float32, bfloat16, float16 and int8 are supported)");
        }
        long bytes = n * k * dtype.size();
        if (w.data() == null || !w.data().isDirect() || w.data().remaining() != bytes) {
            throw new IllegalArgumentException(w.name() + ": expected " + bytes + " bytes of " + dtype
                    + " in native memory, got " + (w.data() == null ? "none" : w.data().remaining()
                    + (w.data().isDirect() ? "" : " on the heap")));
        }
        long address = NativeKernels.address(w.data());
        if (address % dtype.size() != 0) {
            throw new IllegalArgumentException(w.name() + ": " + dtype + " data at address " + address
                    + " is not aligned to its " + dtype.size() + "-byte elements");
        }
        checkScales(w, n, k);
        if (bias != null && bias.remaining() != n) {
            throw new IllegalArgumentException(w.name() + ": a bias of " + n + " values expected, got " + bias.remaining());
        }
    }

    private static void checkScales(StoredTensor w, long n, long k) {
        if (w.dtype() != DType.I8) {
            if (w.scales() != null) {
                throw new IllegalArgumentException(w.name() + ": " + w.dtype() + " weights have no scale table");
            }
            return;
        }
        int block = w.blockSize();
        if (block < 0 || block > 0 && k % block != 0) {
            throw new IllegalArgumentException(w.name() + ": a scale block of " + block
                    + " columns does not divide the " + k + " input columns");
        }
        long expected = block == 0 ? n : n * (k / block);
        if (w.scales() == null || w.scales().remaining() != expected) {
            throw new IllegalArgumentException(w.name() + ": an int8 weight [" + n + ", " + k + "] with "
                    + (block == 0 ? "one scale per row" : "blocks of " + block) + " needs " + expected
                    + " scales, got " + (w.scales() == null ? "none" : w.scales().remaining()));
        }
    }

    private static FloatPointer floats(StoredTensor w) {
        return new FloatPointer(w.data().slice().asFloatBuffer()); // sliced: the pointer starts at the position
    }

    private static void addBias(FloatBuffer bias, FloatMatrix y) {
        FloatBuffer out = y.buffer();
        int start = bias.position();
        for (int i = 0; i < y.rows(); i++) {
            long row = i * y.rowStride();
            for (int j = 0; j < y.cols(); j++) {
                out.put((int) (row + j), out.get((int) (row + j)) + bias.get(start + j));
            }
        }
    }
}
