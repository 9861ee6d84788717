package dev.blip2dl4j.compute;

import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.StoredTensor;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

import java.io.IOException;
import java.io.InputStream;
import java.lang.System.Logger.Level;
import java.nio.Buffer;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Our own products ({@code compute/src/main/c/blip2kernels.c}, {@code sgemm.c} and {@code bf16gemm.c}, compiled by the module's build
 * with the machine's gcc and carried in the jar): one-row and small-m products over float32, bfloat16, float16 and
 * int8 weights read in place, each element decoded in registers and multiplied by x exactly, float32 sums, at one
 * of three instruction-set levels; a float32 GEMM at any m for AVX-512 CPUs; a bfloat16 GEMM on AMX tiles; and the
 * row passes around them ({@code rowkernels.c}: norms, bias, GELU, softmax; {@link RowKernels}). Where the library was not built
 * or does not load, {@link #loaded()} is false, the dispatcher takes the other kernels, and the reason is logged once.
 */
final class NativeKernels {
    private static final String LIBRARY = "libblip2kernels.so";
    private static final String PROBLEM = load();

    private NativeKernels() {
    }

    /** Whether the library loaded (else {@link #problem()} says why). */
    static boolean loaded() {
        return PROBLEM == null;
    }

    static String problem() {
        return PROBLEM;
    }

    /**
     * The highest level this CPU runs the library's kernels at, by its own cpuid tests (and, for AMX, the kernel's
     * permission to use the tiles); only once {@link #loaded()}.
     */
    static Isa hardwareIsa() {
        Isa level = Isa.values()[maxIsa()];
        return level == Isa.AVX512_VNNI && amxBf16() ? Isa.AMX_BF16 : level;
    }

    /** {@code y = x W^T (+ y)} at {@code isa}, which the caller has bounded by {@link #hardwareIsa()}. */
    static void linear(Isa isa, FloatMatrix x, StoredTensor w, FloatMatrix y, boolean accumulate) {
        long weight = address(w.data());
        long scales = w.scales() == null ? 0 : address(w.scales());
        linear(isa.ordinal(), code(w.dtype()), at(x.data()), x.rows(), x.cols(), x.rowStride(), weight, x.cols(),
                scales, w.dtype() == DType.I8 ? w.blockSize() : 0, at(y.data()), y.cols(), y.rowStride(), accumulate);
    }

    /** {@code c = a b^T (+ c)} in float32, row-major, each operand with its row stride: a float32 linear layer. */
    static void sgemm(Isa isa, int m, int n, int k, FloatPointer a, long lda, FloatPointer b, long ldb, FloatPointer c,
                      long ldc, boolean accumulate) {
        linear(isa.ordinal(), code(DType.F32), at(a), m, k, lda, at(b), ldb, 0, 0, at(c), n, ldc, accumulate);
    }

    /**
     * {@code c = alpha op(a) op(b) + beta c} in float32, row-major, each operand with its row stride, on the
     * library's AVX-512 GEMM (sgemm.c): only where {@link #hardwareIsa()} is {@link Isa#AVX512} or more.
     */
    static void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, FloatPointer a, long lda,
                     FloatPointer b, long ldb, float beta, FloatPointer c, long ldc) {
        gemm(transA, transB, m, n, k, alpha, at(a), lda, at(b), ldb, beta, at(c), ldc);
    }

    /**
     * {@code y = x W^T (+ y)} for a bfloat16 weight on the library's AMX GEMM (bf16gemm.c), x rounded to bfloat16:
     * only where {@link #hardwareIsa()} is {@link Isa#AMX_BF16}.
     */
    static void bf16Gemm(FloatMatrix x, StoredTensor w, FloatMatrix y, boolean accumulate) {
        bf16Gemm(x.rows(), y.cols(), x.cols(), at(x.data()), x.rowStride(), address(w.data()),
                at(y.data()), y.rowStride(), accumulate);
    }

    /**
     * Rows {@code [from, from + count)} of W (bfloat16, float16 or int8), each element times its scale, into
     * {@code out [count, k]} float32: the blocks training's backward multiplies on the float32 GEMM.
     */
    static void decode(Isa isa, StoredTensor w, int from, int count, FloatPointer out) {
        long weight = address(w.data());
        long scales = w.scales() == null ? 0 : address(w.scales());
        decode(isa.ordinal(), code(w.dtype()), weight, Math.toIntExact(w.shape()[1]), scales,
                w.dtype() == DType.I8 ? w.blockSize() : 0, from, count, at(out));
    }

    /** Sums {@code count} floats at {@code address} with every thread: the read rate a product is held to. */
    static float read(Isa isa, Pointer data, long count) {
        return read(isa.ordinal(), at(data), count);
    }

    /**
     * LayerNorm ({@code shift} not null) or RMSNorm ({@code shift} null) of x's rows into out's (out may be x), with
     * {@code gain} and {@code shift} {@code [x.cols()]}.
     */
    static void norm(Isa isa, FloatMatrix x, FloatPointer gain, FloatPointer shift, float eps, FloatMatrix out) {
        norm(isa.ordinal(), at(x.data()), x.rows(), x.cols(), x.rowStride(), at(gain), shift == null ? 0 : at(shift),
                eps, at(out.data()), out.rowStride());
    }

    /** {@code x += row} on every row. */
    static void addRow(Isa isa, FloatMatrix x, FloatPointer row) {
        addRow(isa.ordinal(), at(x.data()), x.rows(), x.cols(), x.rowStride(), at(row));
    }

    /**
     * {@code x = gelu(x + bias) * gate} in the erf or ({@code tanh}) tanh form, bias and gate null where none, GELU's
     * argument copied to {@code argument} unless null.
     */
    static void gelu(Isa isa, boolean tanh, FloatMatrix x, FloatPointer bias, FloatMatrix argument, FloatMatrix gate) {
        gelu(isa.ordinal(), tanh, at(x.data()), x.rows(), x.cols(), x.rowStride(), bias == null ? 0 : at(bias),
                argument == null ? 0 : at(argument.data()), argument == null ? 0 : argument.rowStride(),
                gate == null ? 0 : at(gate.data()), gate == null ? 0 : gate.rowStride());
    }

    /** Each row of x replaced by its softmax. */
    static void softmax(Isa isa, FloatMatrix x) {
        softmax(isa.ordinal(), at(x.data()), x.rows(), x.cols(), x.rowStride());
    }

    /**
     * Sends the library's spinning threads to sleep until its next product (pool.c), where they are loaded: before a
     * product on another library's threads, which would otherwise wait for cores they hold.
     */
    static void restThreads() {
        if (loaded()) {
            rest();
        }
    }

    /** One AdamW update of p, m and v in place from g (optimizer.c); the four direct and of one length. */
    static void adamw(Isa isa, FloatBuffer p, FloatBuffer g, FloatBuffer m, FloatBuffer v, float decay, float beta1,
                      float oneMinusBeta1, float beta2, float oneMinusBeta2, float minusStepSize, float correction2Sqrt,
                      float epsilon) {
        adamw(isa.ordinal(), address(p), address(g), address(m), address(v), p.remaining(), decay, beta1,
                oneMinusBeta1, beta2, oneMinusBeta2, minusStepSize, correction2Sqrt, epsilon);
    }

    /** The sum of the squares of a direct array's elements, in double; negative where the pass had no memory. */
    static double sumOfSquares(Isa isa, FloatBuffer x) {
        return sumOfSquares(isa.ordinal(), address(x), x.remaining());
    }

    /** The address of a direct buffer's position (sliced, since JavaCPP takes a buffer's address at its start). */
    static long address(Buffer buffer) {
        return new Pointer(buffer.slice()).address();
    }

    /** The address of the pointer's position, where JavaCPP's own calls start too. */
    private static long at(Pointer pointer) {
        return pointer.address() + pointer.position() * pointer.sizeof();
    }

    private static int code(DType dtype) {
        return switch (dtype) { // the enum of blip2kernels.c
            case F32 -> 0;
            case BF16 -> 1;
            case F16 -> 2;
            case I8 -> 3;
            default -> throw new IllegalArgumentException("no native product reads " + dtype);
        };
    }

    private static native int maxIsa();

    private static native void adamw(int isa, long p, long g, long m, long v, long n, float decay, float beta1,
                                     float oneMinusBeta1, float beta2, float oneMinusBeta2, float minusStepSize,
                                     float correction2Sqrt, float epsilon);

    private static native double sumOfSquares(int isa, long x, long n);

    private static native void rest();

    private static native void linear(int isa, int dtype, long x, int m, int k, long xStride, long w, long wStride,
                                      long scales, int block, long y, int n, long yStride, boolean accumulate);

    private static native void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a,
                                    long lda, long b, long ldb, float beta, long c, long ldc);

    private static native boolean amxBf16();

    private static native void bf16Gemm(int m, int n, int k, long x, long ldx, long w, long y, long ldy,
                                        boolean accumulate);

    private static native void decode(int isa, int dtype, long w, int k, long scales, int block, int from,
                                      int count, long out);

    private static native float read(int isa, long address, long count);

    private static native void norm(int isa, long x, int rows, int cols, long xStride, long gain, long shift,
                                    float eps, long out, long outStride);

    private static native void addRow(int isa, long x, int rows, int cols, long xStride, long row);

    private static native void gelu(int isa, boolean tanh, long x, int rows, int cols, long xStride, long bias,
                                    long argument, long argumentStride, long gate, long gateStride);

    private static native void softmax(int isa, long x, int rows, int cols, long xStride);

    /** Loads the library from a temporary copy (a jar's entry cannot be mapped); returns why not, or null. */
    private static String load() {
        String problem;
        try (InputStream in = NativeKernels.class.getResourceAsStream(LIBRARY)) {
            if (in == null) {
                problem = "the build made no " + LIBRARY + " (no gcc, or not Linux x86-64)";
            } else {
                Path copy = Files.createTempFile("blip2kernels", ".so");
                try {
                    Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
                    System.load(copy.toString());
                    return null;
                } finally {
                    Files.deleteIfExists(copy); // mapped once loaded: the file is no longer needed
                }
            }
        } catch (IOException | UnsatisfiedLinkError e) {
            problem = LIBRARY + " does not load: " + e.getMessage();
        }
        System.getLogger(NativeKernels.class.getName()).log(Level.WARNING,
                "native products unavailable, using oneDNN, OpenBLAS and Java loops: " + problem);
        return problem;
    }

    /** The instruction-set levels of the library's kernels, lowest first (the order of blip2kernels.c's enum). */
    enum Isa {
        /** plain C: any x86-64. */
        SCALAR,
        /** AVX2 with FMA and F16C. */
        AVX2,
        /** AVX-512 F, BW and VL. */
        AVX512,
        /** AVX-512 with VNNI: int8 weights against x quantized per row and block, exact int32 sums; the rest as AVX512. */
        AVX512_VNNI,
        /**
         * AVX512_VNNI with AMX-BF16 (and AVX512_BF16 to round x): bfloat16 weights times more rows on the tiles
         * (bf16gemm.c); the rest as AVX512_VNNI.
         */
        AMX_BF16;

        /** The highest level these flags allow, as the library's own cpuid test reads them. */
        static Isa of(CpuFeatures cpu) {
            if (cpu.avx2() && cpu.has("avx512f") && cpu.has("avx512bw") && cpu.has("avx512vl")) {
                if (!cpu.has("avx512_vnni")) {
                    return AVX512;
                }
                return cpu.has("amx_tile") && cpu.has("amx_bf16") && cpu.has("avx512_bf16") ? AMX_BF16 : AVX512_VNNI;
            }
            return cpu.avx2() && cpu.has("f16c") ? AVX2 : SCALAR;
        }
    }
}
