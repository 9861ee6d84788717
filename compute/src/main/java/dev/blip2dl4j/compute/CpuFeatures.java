package dev.blip2dl4j.compute;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The instruction-set extensions this CPU has, as Linux names them in {@code /proc/cpuinfo}'s flags: what the
 * dispatcher keys on (never a vendor or model name). {@code -Dblip2.compute.cpu-flags="avx2 fma"} pretends to be
 * a CPU with only those, to run the paths an older machine takes.
 */
public record CpuFeatures(Set<String> flags) {
    static final String PROPERTY = "blip2.compute.cpu-flags";

    public CpuFeatures {
        flags = Set.copyOf(flags);
    }

    /** The flags the property names, else this machine's (none where {@code /proc/cpuinfo} cannot be read). */
    public static CpuFeatures detect() {
        String forced = System.getProperty(PROPERTY);
        if (forced != null) {
            return parse(forced);
        }
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                    .filter(line -> line.startsWith("flags"))
                    .findFirst()
                    .map(line -> parse(line.substring(line.indexOf(':') + 1)))
                    .orElse(new CpuFeatures(Set.of()));
        } catch (IOException | RuntimeException e) {
            return new CpuFeatures(Set.of());
        }
    }

    static CpuFeatures parse(String flags) {
        return new CpuFeatures(Arrays.stream(flags.trim().toLowerCase(Locale.ROOT).split("\\s+"))
                .filter(flag -> !flag.isEmpty()).collect(Collectors.toSet()));
    }

    public boolean has(String flag) {
        return flags.contains(flag);
    }

    /** AVX2 with FMA: what oneDNN's and OpenBLAS's vector kernels need at the least. */
    public boolean avx2() {
        return has("avx2") && has("fma");
    }

    /** bfloat16 dot products in hardware (AVX512_BF16 or AMX): only then does a bf16 product beat float32's. */
    public boolean bf16() {
        return has("avx512_bf16") || has("amx_bf16");
    }

    /**
     * int8 dot products that oneDNN 2.5 runs exactly: AVX512_VNNI or AMX. Without them its int8 GEMM multiplies
     * in pairs summed in 16 bits, which saturate (measured: wrong sums under {@code DNNL_MAX_CPU_ISA=AVX2}), and
     * it has no AVX-VNNI kernels.
     */
    public boolean int8() {
        return has("avx512_vnni") || has("amx_int8");
    }
}
