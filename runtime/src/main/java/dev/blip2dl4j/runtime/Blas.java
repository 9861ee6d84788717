package dev.blip2dl4j.runtime;

import dev.blip2dl4j.compute.FloatMatrix;
import dev.blip2dl4j.compute.Products;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.StoredTensor;
import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.lang.ref.Reference;
import java.util.Arrays;
import java.util.Locale;
import java.util.function.ObjLongConsumer;

/**
 * Single-precision matrix products on row-major ND4J arrays, handed straight to the compute layer's kernels
 * (oneDNN's GEMM, OpenBLAS's GEMV for one row: docs/DESIGN.md "Compute layer"). Measured,
 * {@code Nd4j.gemm} adds 40-150 µs of op dispatch to every call (about a third of a Q-Former product), and it
 * cannot read one head's columns of a wider array in place; BLAS takes any row stride.
 */
public final class Blas {
    /**
     * While set, receives each product's label ("sgemm m x n x k") and each row pass's ("rows layerNorm [rows,
     * cols]", {@link EagerLayers}) with its duration in nanoseconds: a profiler's hook.
     */
    private static volatile ObjLongConsumer<String> timer;

    private Blas() {
    }

    /** Times every product and row pass from now on ({@code blip2 bench --profile}); null stops it. */
    public static void setTimer(ObjLongConsumer<String> productTimer) {
        timer = productTimer;
    }

    /**
     * {@code c = alpha op(a) op(b) + beta c}, op transposing where asked, for 2-D arrays whose rows are contiguous
     * (views of a wider array's columns included); c is written in place.
     */
    static void gemm(INDArray a, boolean transA, INDArray b, boolean transB, INDArray c, double alpha, double beta) {
        long m = c.size(0);
        long n = c.size(1);
        long k = transA ? a.size(0) : a.size(1);
        if ((transA ? a.size(1) : a.size(0)) != m || (transB ? b.size(0) : b.size(1)) != n
                || (transB ? b.size(1) : b.size(0)) != k) {
            throw new IllegalArgumentException("gemm shapes do not match: " + shape(a, transA) + " x "
                    + shape(b, transB) + " -> " + shape(c, false));
        }
        gemm(transA, transB, (int) m, (int) n, (int) k, alpha, pointer(a), rowStride(a), pointer(b), rowStride(b),
                beta, pointer(c), rowStride(c));
        Reference.reachabilityFence(a);
        Reference.reachabilityFence(b);
        Reference.reachabilityFence(c);
    }

    /**
     * The BLAS call itself, over raw row-major operands: {@code m x k} and {@code k x n} after the transposes,
     * each with its row stride. The caller keeps the arrays behind the pointers reachable.
     */
    static void gemm(boolean transA, boolean transB, int m, int n, int k, double alpha, FloatPointer a, long lda,
                     FloatPointer b, long ldb, double beta, FloatPointer c, long ldc) {
        ObjLongConsumer<String> productTimer = timer;
        long started = productTimer == null ? 0 : System.nanoTime();
        Products.sgemm(transA, transB, m, n, k, (float) alpha, a, lda, b, ldb, (float) beta, c, ldc);
        if (productTimer != null) {
            productTimer.accept("sgemm " + m + " x " + n + " x " + k, System.nanoTime() - started);
        }
    }

    /**
     * {@code y = x W^T (+ y)} with W {@code [n, k]} in its storage type, x {@code [m, k]} and y {@code [m, n]} 2-D
     * float arrays with contiguous rows; the compute layer picks the kernels (one row: a GEMV, which streams the
     * weight at about three times the rate a one-row GEMM does).
     */
    static void linear(INDArray x, StoredTensor w, INDArray y, boolean accumulate) {
        ObjLongConsumer<String> productTimer = timer;
        long started = productTimer == null ? 0 : System.nanoTime();
        Products.linear(matrix(x), w, null, matrix(y), accumulate);
        if (productTimer != null) {
            productTimer.accept("sgemm " + shape(w, x.size(0)), System.nanoTime() - started);
        }
        Reference.reachabilityFence(x);
        Reference.reachabilityFence(y);
    }

    /** {@code dx = alpha dy W (+ dx)}: a linear layer's backward to its input, W {@code [n, k]} in its storage type. */
    static void linearBackward(INDArray dy, StoredTensor w, INDArray dx, double alpha, boolean accumulate) {
        ObjLongConsumer<String> productTimer = timer;
        long started = productTimer == null ? 0 : System.nanoTime();
        Products.linearBackward(matrix(dy), w, (float) alpha, matrix(dx), accumulate);
        if (productTimer != null) {
            productTimer.accept("sgemm backward " + shape(w, dy.size(0)), System.nanoTime() - started);
        }
        Reference.reachabilityFence(dy);
        Reference.reachabilityFence(dx);
    }

    /** When a profiler listens, now: the start of a row pass that {@link #timed} reports; else 0. */
    static long started() {
        return timer == null ? 0 : System.nanoTime();
    }

    /** Reports the row pass {@code what} over {@code rows} begun at {@code started} ({@link #started()}). */
    static void timed(String what, INDArray rows, long started) {
        ObjLongConsumer<String> rowTimer = timer;
        if (rowTimer != null && started != 0) {
            rowTimer.accept("rows " + what + " " + Arrays.toString(rows.shape()), System.nanoTime() - started);
        }
    }

    static FloatMatrix matrix(INDArray a) {
        return new FloatMatrix(pointer(a), (int) a.size(0), (int) a.size(1), rowStride(a));
    }

    private static String shape(StoredTensor w, long rows) {
        String dtype = w.dtype() == DType.F32 ? "" : " " + w.dtype().name().toLowerCase(Locale.ROOT);
        return (rows == 1 ? "gemv " : rows + " x ") + w.shape()[0] + " x " + w.shape()[1] + dtype;
    }

    /** The address of the array's first element; only float arrays with contiguous rows qualify. */
    static FloatPointer pointer(INDArray a) {
        if (a.dataType() != DataType.FLOAT || a.rank() != 2 || a.stride(1) != 1) {
            throw new IllegalArgumentException("expected a 2-D float array with contiguous rows, got "
                    + a.shapeInfoToString());
        }
        // a view's buffer address already points at the view's offset (unlike its asNioFloat(), see EagerLayers.floats)
        return new FloatPointer(a.data().addressPointer());
    }

    /** Elements from one row to the next (BLAS's leading dimension). */
    static long rowStride(INDArray a) {
        return a.size(0) > 1 ? a.stride(0) : a.size(1);
    }

    private static String shape(INDArray a, boolean transposed) {
        return transposed ? "[" + a.size(1) + ", " + a.size(0) + "]" : "[" + a.size(0) + ", " + a.size(1) + "]";
    }
}
