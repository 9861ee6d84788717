package dev.blip2dl4j.compute;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas_nolapack;

/** float32 products on OpenBLAS, the library and binding nd4j-native calls: one copy and one thread pool. */
final class OpenBlasKernels {
    private OpenBlasKernels() {
    }

    /** {@code c = alpha op(a) op(b) + beta c}, row-major. */
    static void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha, FloatPointer a, long lda,
                      FloatPointer b, long ldb, float beta, FloatPointer c, long ldc) {
        if (m == 1 && !transA && transB) {
            // a one-row GEMM streams b at about a third of the rate GEMV does
            openblas_nolapack.cblas_sgemv(openblas_nolapack.CblasRowMajor, openblas_nolapack.CblasNoTrans, n, k,
                    alpha, b, (int) ldb, a, 1, beta, c, 1);
            return;
        }
        openblas_nolapack.cblas_sgemm(openblas_nolapack.CblasRowMajor,
                transA ? openblas_nolapack.CblasTrans : openblas_nolapack.CblasNoTrans,
                transB ? openblas_nolapack.CblasTrans : openblas_nolapack.CblasNoTrans,
                m, n, k, alpha, a, (int) lda, b, (int) ldb, beta, c, (int) ldc);
    }
}
