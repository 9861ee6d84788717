package dev.blip2dl4j.compute;

import dev.blip2dl4j.compute.NativeKernels.Isa;
import dev.blip2dl4j.tensor.DType;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.javacpp.Loader;

import java.util.Locale;
import java.util.Objects;

/**
 * Picks each product's kernels from the CPU's features, the weight's storage type and the product's rows, by
 * what was measured fastest (bench/README.md "Compute layer"): our native kernels for one row and a few, where
 * they stream the weight at memory speed; our AVX-512 float32 GEMM for more rows of float32, our AMX bfloat16
 * GEMM for more rows of bfloat16; oneDNN's JIT GEMMs (AMX, AVX512_BF16, VNNI, AVX-512, AVX2, whatever
 * {@code OPENBLAS_CORETYPE} says) for more rows of the other types, of bfloat16 without AMX, and of float32 on CPUs
 * without AVX-512; OpenBLAS, which runs anywhere, for float32 where neither loads; the portable Java loops last.
 * {@code -Dblip2.compute.path=portable|openblas|dnnl|native|gemm} forces one family ({@code gemm}: every float32
 * product on our GEMM, every bfloat16 one on our AMX GEMM where it runs) and
 * {@code -Dblip2.compute.isa=scalar|avx2|avx512|avx512_vnni|amx_bf16} the native kernels' level, for tests and for comparing backends
 * (docs/DESIGN.md "Compute layer").
 */
final class Dispatcher {
    static final String PROPERTY = "blip2.compute.path";
    static final String ISA_PROPERTY = "blip2.compute.isa";
    /** Rows up to which the native kernels beat oneDNN's GEMMs, per storage type (measured). */
    private static final int F32_NATIVE_ROWS = 4;
    private static final int BF16_NATIVE_ROWS = 8;
    private static final int I8_NATIVE_ROWS = 8;

    private final CpuFeatures cpu;
    private final String forced;
    private final boolean dnnlLoads;
    private final boolean nativeLoads;
    private final Isa isa;
    /** Whether float32 GEMMs may take ours (sgemm.c): AVX-512 at the level in force, and no other family forced. */
    private final boolean nativeGemm;

    Dispatcher(CpuFeatures cpu, String forced) {
        this(cpu, forced, null, NativeKernels.loaded() ? NativeKernels.hardwareIsa() : null);
    }

    /**
     * @param forcedIsa the native kernels' level, or null for the highest both the flags and the hardware allow
     * @param hardware  the highest level the native library runs on this CPU, null where it did not load
     */
    Dispatcher(CpuFeatures cpu, String forced, String forcedIsa, Isa hardware) {
        this.cpu = cpu;
        this.forced = forced == null ? "auto" : forced.toLowerCase(Locale.ROOT);
        if (!this.forced.matches("auto|portable|openblas|dnnl|native|gemm")) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + forced
                    + ": use auto, portable, openblas, dnnl, native or gemm");
        }
        if ((this.forced.equals("native") || this.forced.equals("gemm")) && hardware == null) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=native: no native kernels here ("
                    + Objects.requireNonNullElse(NativeKernels.problem(), "not loaded") + ")");
        }
        this.dnnlLoads = cpu.avx2() && !this.forced.equals("portable") && loads();
        this.nativeLoads = hardware != null;
        Isa byFlags = Isa.of(cpu); // lower than the hardware's when the flags are forced
        this.isa = nativeLoads ? isa(byFlags.compareTo(hardware) < 0 ? byFlags : hardware, forcedIsa) : null;
        this.nativeGemm = nativeLoads && isa.compareTo(Isa.AVX512) >= 0 && this.forced.matches("auto|native|gemm");
        if (this.forced.equals("gemm") && !nativeGemm) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=gemm: our float32 GEMM needs AVX-512, the native"
                    + " kernels run at " + isa.name().toLowerCase(Locale.ROOT) + " here");
        }
    }

    /** This machine's features and the properties' choice. */
    static Dispatcher detect() {
        return new Dispatcher(CpuFeatures.detect(), System.getProperty(PROPERTY), System.getProperty(ISA_PROPERTY),
                NativeKernels.loaded() ? NativeKernels.hardwareIsa() : null);
    }

    /** The level the native kernels run at: the highest this CPU has, or the one forced (no higher); null without them. */
    Isa isa() {
        return isa;
    }

    /**
     * The level the row passes ({@link RowKernels}) run at: the native kernels', or null without them or where the
     * portable Java loops are forced, so that the runtime's own loops run (and are tested) as on a machine without
     * the library.
     */
    Isa rowIsa() {
        return forced.equals("portable") ? null : isa;
    }

    /** The kernels for a product of {@code rows} rows against a weight stored as {@code dtype}. */
    KernelPath choose(DType dtype, int rows) {
        if (forced.equals("portable")) {
            return KernelPath.PORTABLE;
        }
        boolean dnnlFamily = dnnlLoads && !forced.equals("openblas") && !forced.equals("native");
        boolean nativeFamily = nativeFamily();
        return switch (dtype) {
            case F32 -> f32(rows, nativeFamily);
            // without hardware bf16 or exact int8 dot products oneDNN runs reference loops, slower than ours
            case BF16 -> bf16(rows, nativeFamily, dnnlFamily);
            case I8 -> pick(nativeFamily, rows <= I8_NATIVE_ROWS, dnnlFamily && cpu.int8(), KernelPath.DNNL_I8);
            case F16 -> nativeFamily ? KernelPath.NATIVE : KernelPath.PORTABLE;
            default -> throw new IllegalArgumentException("no product reads weights stored as " + dtype
                    + ": float32, bfloat16, float16 and int8 are supported");
        };
    }

    /**
     * bfloat16: a few rows on our one-row kernels, which stream the weight; more on our AMX GEMM where the level
     * allows ({@code gemm} forces it at any size), measured faster than oneDNN's AMX matmul, which repacks the
     * weight on every call; else oneDNN's where the CPU has bfloat16 dot products.
     */
    private KernelPath bf16(int rows, boolean nativeFamily, boolean dnnlFamily) {
        boolean amx = nativeFamily && isa == Isa.AMX_BF16 && !forced.equals("native");
        if (amx && (rows > BF16_NATIVE_ROWS || forced.equals("gemm"))) {
            return KernelPath.NATIVE_BF16_GEMM;
        }
        return pick(nativeFamily, rows <= BF16_NATIVE_ROWS, dnnlFamily && cpu.bf16(), KernelPath.DNNL_BF16);
    }

    private KernelPath pick(boolean nativeFamily, boolean nativeFaster, boolean dnnlRuns, KernelPath dnnlPath) {
        if (nativeFamily && (nativeFaster || !dnnlRuns || forced.equals("native"))) {
            return KernelPath.NATIVE;
        }
        return dnnlRuns ? dnnlPath : KernelPath.PORTABLE;
    }

    /** float32: a few rows on ours, which stream the weight; more on {@link #gemm}'s. */
    private KernelPath f32(int rows, boolean nativeFamily) {
        if (forced.equals("gemm")) {
            return KernelPath.NATIVE_GEMM;
        }
        if (nativeFamily && (rows <= F32_NATIVE_ROWS || forced.equals("native"))) {
            return KernelPath.NATIVE;
        }
        return gemm(rows);
    }

    /** Who decodes low-precision weights for training's backward: our native kernels where they run, else Java. */
    KernelPath decoder() {
        return nativeFamily() ? KernelPath.NATIVE : KernelPath.PORTABLE;
    }

    private boolean nativeFamily() {
        return nativeLoads && forced.matches("auto|native|gemm");
    }

    /**
     * The float32 GEMM for products our one-row kernels do not take: more rows of {@code x W^T}, transposed or
     * scaled operands, {@code dy W}. Ours on AVX-512 (measured faster than oneDNN's in whole stages at every size,
     * once its threads no longer woke from sleep for each product); else oneDNN's where it loads, OpenBLAS where
     * not; one row on OpenBLAS's GEMV, which streamed the weight faster than oneDNN's one-row GEMM.
     */
    KernelPath gemm(int rows) {
        if (nativeGemm && (rows > 1 || forced.equals("gemm"))) {
            return KernelPath.NATIVE_GEMM;
        }
        if (!dnnlLoads || forced.equals("openblas") || forced.equals("portable")) {
            return KernelPath.OPENBLAS_F32;
        }
        return rows == 1 && !forced.equals("dnnl") ? KernelPath.OPENBLAS_F32 : KernelPath.DNNL_F32;
    }

    private static Isa isa(Isa highest, String forced) {
        if (forced == null) {
            return highest;
        }
        for (Isa level : Isa.values()) {
            if (level.name().equalsIgnoreCase(forced)) {
                if (level.compareTo(highest) > 0) {
                    throw new IllegalArgumentException("-D" + ISA_PROPERTY + "=" + forced + ": this CPU runs the"
                            + " native kernels at " + highest.name().toLowerCase(Locale.ROOT) + " at most");
                }
                return level;
            }
        }
        throw new IllegalArgumentException("-D" + ISA_PROPERTY + "=" + forced + ": use scalar, avx2, avx512, avx512_vnni or amx_bf16");
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
