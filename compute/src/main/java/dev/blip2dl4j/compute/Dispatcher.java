package dev.blip2dl4j.compute;

import dev.blip2dl4j.tensor.DType;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.javacpp.Loader;

import java.util.Locale;

/**
 * Picks each product's kernels from the CPU's features and the weight's storage type. oneDNN chooses its own JIT
 * code for the CPU it finds (AMX, AVX512_BF16, VNNI, AVX-512, AVX2), whatever {@code OPENBLAS_CORETYPE} says;
 * where it cannot run (no AVX2, or no native library for this platform) float32 goes to OpenBLAS, which runs
 * anywhere, and the other types to the portable Java loops. {@code -Dblip2.compute.path=portable|openblas|dnnl}
 * forces one family, for tests and for comparing backends (docs/DESIGN.md "Compute layer").
 */
final class Dispatcher {
    static final String PROPERTY = "blip2.compute.path";

    private final CpuFeatures cpu;
    private final String forced;
    private final boolean dnnlLoads;

    Dispatcher(CpuFeatures cpu, String forced) {
        this.cpu = cpu;
        this.forced = forced == null ? "auto" : forced.toLowerCase(Locale.ROOT);
        if (!this.forced.matches("auto|portable|openblas|dnnl")) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + forced + ": use auto, portable, openblas or dnnl");
        }
        this.dnnlLoads = cpu.avx2() && !this.forced.equals("portable") && loads();
    }

    /** This machine's features and the property's choice. */
    static Dispatcher detect() {
        return new Dispatcher(CpuFeatures.detect(), System.getProperty(PROPERTY));
    }

    /** The kernels for a product of {@code rows} rows against a weight stored as {@code dtype}. */
    KernelPath choose(DType dtype, int rows) {
        if (forced.equals("portable")) {
            return KernelPath.PORTABLE;
        }
        return switch (dtype) {
            case F32 -> f32(rows);
            // without hardware bf16 dot products oneDNN falls back to its reference loops, slower than ours
            case BF16 -> dnnlLoads && cpu.bf16() && !forced.equals("openblas") ? KernelPath.DNNL_BF16 : KernelPath.PORTABLE;
            case I8 -> dnnlLoads && cpu.int8() && !forced.equals("openblas") ? KernelPath.DNNL_I8 : KernelPath.PORTABLE;
            case F16 -> KernelPath.PORTABLE;
            default -> throw new IllegalArgumentException("no product reads weights stored as " + dtype
                    + ": float32, bfloat16, float16 and int8 are supported");
        };
    }

    /**
     * float32: oneDNN's GEMM where it loads; one row on OpenBLAS's GEMV, which streamed the weight faster than
     * oneDNN's one-row GEMM (bench/README.md, {@code Dispatcher}).
     */
    private KernelPath f32(int rows) {
        if (!dnnlLoads || forced.equals("openblas")) {
            return KernelPath.OPENBLAS_F32;
        }
        return rows == 1 && !forced.equals("dnnl") ? KernelPath.OPENBLAS_F32 : KernelPath.DNNL_F32;
    }

    private static boolean loads() {
        try {
            Loader.load(dnnl.class);
            return true;
        } catch (Throwable e) { // UnsatisfiedLinkError and friends: no oneDNN build for this platform
            return false;
        }
    }
}
