package dev.blip2dl4j.compute;

/** The kernels a product can run on; the dispatcher picks one per call. */
public enum KernelPath {
    /** float32 matrix-vector product on OpenBLAS (a one-row product: streams the weight). */
    OPENBLAS_F32,
    /** float32 GEMM on oneDNN's JIT kernels. */
    DNNL_F32,
    /** bfloat16 weights and bfloat16-rounded rows on oneDNN's matmul (AVX512_BF16, AMX), float32 accumulation. */
    DNNL_BF16,
    /** int8 weights against rows quantized per block on oneDNN's int8 GEMM (VNNI, AMX), scaled in float32. */
    DNNL_I8,
    /** our native kernels (blip2kernels.c) at the dispatcher's instruction-set level, any storage type. */
    NATIVE,
    /** our float32 GEMM (sgemm.c): packed panels and a register-blocked AVX-512 micro-kernel, any m, any transposes. */
    NATIVE_GEMM,
    /** our bfloat16 GEMM on AMX tiles (bf16gemm.c): x rounded to bfloat16, the weight packed per call, float32 sums. */
    NATIVE_BF16_GEMM,
    /** plain Java loops over any storage type: runs anywhere, slowly. */
    PORTABLE;

    /** Whether the product runs on another library's threads (oneDNN's or OpenBLAS's OpenMP team), not ours. */
    boolean foreignThreads() {
        return this == OPENBLAS_F32 || this == DNNL_F32 || this == DNNL_BF16 || this == DNNL_I8;
    }
}
