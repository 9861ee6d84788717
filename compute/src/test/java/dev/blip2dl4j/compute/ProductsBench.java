package dev.blip2dl4j.compute;

import dev.blip2dl4j.compute.NativeKernels.Isa;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.StoredTensor;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The one-row and small-m products on the decode shapes, every kernel family that runs them, in GB/s of weight
 * read, against the read rate of a plain sum over memory (bench/README.md "Compute layer"). The weights rotate
 * through {@value #SPAN_BYTES} bytes, more than the last-level cache, so each product reads its weight from memory
 * as a decode step does. Lower instruction-set levels of ours are shown for one row (and AVX-512 without VNNI
 * for int8, the float path). Run with the test classpath and {@code OMP_NUM_THREADS}:
 * {@code java -cp ... dev.blip2dl4j.compute.ProductsBench [rows...]}. With {@code gemm [rounds]} instead: the
 * float32 GEMMs of full-size blip2-opt-2.7b's stages (ViT-g, Q-Former, OPT prefill, the ViT's and the Q-Former's attention), ours
 * against oneDNN's, and the linear layers' bfloat16 products (our AMX GEMM where it runs), interleaved call by
 * call, medians in GFLOP/s ({@code bench/gemm.sh} runs it beside the
 * PyTorch peer's {@code bench/gemm_peer.py}, which times the same list); {@code gemm ROUNDS cpu}, with
 * {@code OMP_NUM_THREADS=1}, divides by the calling thread's CPU time instead of the wall clock: the kernels'
 * own rate on a machine whose other loads take the cores away.
 * With {@code backward [rows...]}: training's
 * {@code dx = dy W} on the same shapes, milliseconds per product, each type's blocks decoded by our kernels and by
 * Java, against float32 on the GEMM alone.
 */
public final class ProductsBench {
    private static final long SPAN_BYTES = 1L << 30;
    private static final int[][] SHAPES = {{2560, 2560}, {10240, 2560}, {2560, 10240}, {50272, 2560}};
    private static final int REPEATS = 5;
    /** m, n, k, transA, transB: the float32 products of blip2-opt-2.7b's stages, as in bench/gemm_peer.py. */
    private static final int[][] GEMMS = {
        {257, 4224, 1408, 0, 1}, {257, 1408, 1408, 0, 1}, {257, 6144, 1408, 0, 1}, {257, 1408, 6144, 0, 1},
        {32, 768, 768, 0, 1}, {257, 768, 1408, 0, 1}, {32, 3072, 768, 0, 1}, {32, 768, 3072, 0, 1},
        {40, 2560, 2560, 0, 1}, {40, 10240, 2560, 0, 1}, {40, 2560, 10240, 0, 1}, {40, 50272, 2560, 0, 1},
        {257, 257, 88, 0, 1}, {257, 88, 257, 0, 0}, {32, 257, 64, 0, 1}, {32, 64, 257, 0, 0},
    };

    private ProductsBench() {
    }

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("gemm")) {
            gemms(args.length > 1 ? Integer.parseInt(args[1]) : 7, args.length > 2 && args[2].equals("cpu"));
            return;
        }
        boolean backward = args.length > 0 && args[0].equals("backward");
        int[] rows = args.length == (backward ? 1 : 0) ? new int[] {1}
                : Arrays.stream(args).skip(backward ? 1 : 0).mapToInt(Integer::parseInt).toArray();
        if (backward) {
            backward(rows);
            return;
        }
        BytePointer span = new BytePointer(SPAN_BYTES);
        // 0x3c in every byte: a normal number as float32, bfloat16 and float16, 60 as int8
        Pointer.memset(span, 0x3c, SPAN_BYTES);
        Dispatcher auto = Dispatcher.detect();
        Isa isa = auto.isa();
        System.out.printf(Locale.ROOT, "read %.1f GB/s (%s, OMP_NUM_THREADS=%s)%n", readRate(isa, span), isa,
                System.getenv("OMP_NUM_THREADS"));
        for (int m : rows) {
            for (int[] shape : m == 1 ? SHAPES : Arrays.copyOf(SHAPES, 2)) { // more rows: the layers' shapes
                for (String type : List.of("F32", "BF16", "F16", "I8", "I8/64")) {
                    List<String> cells = new ArrayList<>();
                    for (String family : List.of("native", "native-avx512", "native-avx2", "openblas", "dnnl")) {
                        Double rate = rate(type, family, m, shape[0], shape[1], span, isa);
                        if (rate != null) {
                            cells.add(String.format(Locale.ROOT, "%s %.1f", family, rate));
                        }
                    }
                    System.out.printf(Locale.ROOT, "%d x %d x %d %s: %s (auto: %s)%n", m, shape[0], shape[1], type,
                            String.join(", ", cells), auto.choose(dtype(type), m));
                }
            }
        }
    }

    /** Each stage's GEMMs on ours and on oneDNN's, alternating call by call: medians of {@code rounds}. */
    private static void gemms(int rounds, boolean cpuTime) {
        List<Dispatcher> families = List.of(new Dispatcher(CpuFeatures.detect(), "gemm"),
                new Dispatcher(CpuFeatures.detect(), "dnnl"));
        for (int[] shape : GEMMS) {
            int m = shape[0];
            int n = shape[1];
            int k = shape[2];
            boolean transA = shape[3] == 1;
            boolean transB = shape[4] == 1;
            FloatPointer a = filled((long) m * k);
            FloatPointer b = filled((long) k * n);
            FloatPointer c = filled((long) m * n);
            double[] rates = interleaved(families.stream().<Runnable>map(family -> () -> Products.sgemm(family, transA,
                    transB, m, n, k, 1f, a, transA ? m : k, b, transB ? k : n, 0f, c, n)).toList(), m, n, k, rounds,
                    cpuTime);
            System.out.printf(Locale.ROOT, "%d x %d x %d%s: ours %.1f, oneDNN %.1f GFLOP/s", m, n, k,
                    transB ? "" : " (a b)", rates[0], rates[1]);
            if (!transA && transB) { // a linear layer: its bfloat16 product too, x rounded to bfloat16
                BytePointer data = new BytePointer((long) n * k * 2);
                Pointer.memset(data, 0x3c, (long) n * k * 2);
                StoredTensor w = new StoredTensor("w", DType.BF16, new long[] {n, k}, data.asByteBuffer(), null, 0);
                FloatMatrix x = new FloatMatrix(a, m, k, k);
                FloatMatrix y = new FloatMatrix(c, m, n, n);
                String[] paths = new String[families.size()];
                double[] bf16 = interleaved(families.stream().<Runnable>map(family -> () -> paths[families.indexOf(family)]
                        = Products.linear(family, x, w, null, y, false).name()).toList(), m, n, k, rounds, cpuTime);
                System.out.printf(Locale.ROOT, "; bfloat16 %s %.1f, %s %.1f GFLOP/s", paths[0], bf16[0], paths[1],
                        bf16[1]);
                data.close();
            }
            System.out.println();
            a.close();
            b.close();
            c.close();
        }
    }

    /** The calls' median rates in GFLOP/s, timed call family by call family in turn, round after round. */
    private static double[] interleaved(List<Runnable> families, int m, int n, int k, int rounds, boolean cpuTime) {
        ThreadMXBean clock = ManagementFactory.getThreadMXBean();
        double flops = 2.0 * m * n * k;
        int calls = (int) Math.max(1, 2e9 / 100 / flops); // about 10 ms a sample at 100 GFLOP/s
        double[][] rates = new double[families.size()][rounds];
        for (int r = -1; r < rounds; r++) { // round -1 warms: packing buffers, oneDNN's kernels
            for (int f = 0; f < families.size(); f++) {
                long start = cpuTime ? clock.getCurrentThreadCpuTime() : System.nanoTime();
                for (int i = 0; i < calls; i++) {
                    families.get(f).run();
                }
                if (r >= 0) {
                    long end = cpuTime ? clock.getCurrentThreadCpuTime() : System.nanoTime();
                    rates[f][r] = flops * calls / (end - start);
                }
            }
        }
        return Arrays.stream(rates).mapToDouble(ProductsBench::median).toArray();
    }

    private static FloatPointer filled(long count) {
        FloatPointer p = new FloatPointer(count);
        for (long i = 0; i < count; i++) {
            p.put(i, (float) ((i * 2654435761L % 1000) / 1000.0 - 0.5));
        }
        return p;
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }

    private static void backward(int[] rows) {
        Isa isa = Dispatcher.detect().isa();
        for (int m : rows) {
            for (int[] shape : SHAPES) {
                int n = shape[0];
                int k = shape[1];
                FloatMatrix dy = new FloatMatrix(new FloatPointer((long) m * n).fill(0), m, n, n);
                FloatMatrix dx = new FloatMatrix(new FloatPointer((long) m * k), m, k, k);
                List<String> cells = new ArrayList<>();
                for (DType dtype : List.of(DType.F32, DType.BF16, DType.I8)) {
                    BytePointer data = new BytePointer((long) n * k * dtype.size());
                    Pointer.memset(data, 0x3c, (long) n * k * dtype.size());
                    FloatBuffer scales = dtype == DType.I8 ? ByteBuffer.allocateDirect(n * 4)
                            .order(ByteOrder.nativeOrder()).asFloatBuffer() : null;
                    StoredTensor w = new StoredTensor("w", dtype, new long[] {n, k}, data.asByteBuffer(), scales, 0);
                    for (String family : dtype == DType.F32 ? List.of("auto") : List.of("native", "dnnl")) {
                        Dispatcher dispatcher = new Dispatcher(CpuFeatures.detect(), family, isa == null ? null
                                : isa.name(), NativeKernels.hardwareIsa());
                        Products.linearBackward(dispatcher, dy, w, 1f, dx, false); // warm
                        double best = Double.MAX_VALUE;
                        KernelPath path = null;
                        for (int r = 0; r < REPEATS; r++) {
                            long start = System.nanoTime();
                            path = Products.linearBackward(dispatcher, dy, w, 1f, dx, false);
                            best = Math.min(best, (System.nanoTime() - start) / 1e6);
                        }
                        cells.add(String.format(Locale.ROOT, "%s %s %.1f ms", dtype, path, best));
                    }
                    data.close();
                }
                System.out.printf(Locale.ROOT, "backward %d x %d x %d: %s%n", m, n, k, String.join(", ", cells));
            }
        }
    }

    private static double readRate(Isa isa, BytePointer span) {
        double best = 0;
        for (int i = 0; i < REPEATS; i++) {
            long start = System.nanoTime();
            NativeKernels.read(isa, span, SPAN_BYTES / Float.BYTES);
            best = Math.max(best, SPAN_BYTES / (double) (System.nanoTime() - start));
        }
        return best;
    }

    /** GB/s of weight read, best of {@value #REPEATS} passes over the span; null where the family has no such kernel. */
    private static Double rate(String type, String family, int m, int n, int k, BytePointer span, Isa isa) {
        DType dtype = dtype(type);
        int block = type.equals("I8/64") ? 64 : 0;
        Dispatcher dispatcher;
        try {
            dispatcher = new Dispatcher(CpuFeatures.detect(), family.startsWith("native") ? "native" : family,
                    family.startsWith("native-") ? family.substring(7) : isa.name(), NativeKernels.hardwareIsa());
        } catch (IllegalArgumentException e) {
            return null;
        }
        KernelPath path = dispatcher.choose(dtype, m);
        boolean lower = family.startsWith("native-") && !family.substring(7).equalsIgnoreCase(isa.name());
        if (path == KernelPath.PORTABLE || lower && (m > 1 || family.equals("native-avx512") && dtype != DType.I8)) {
            return null;
        }
        long bytes = (long) n * k * dtype.size();
        int copies = (int) (SPAN_BYTES / bytes);
        FloatBuffer scales = dtype == DType.I8 ? ByteBuffer.allocateDirect(n * (block == 0 ? 1 : k / block) * 4)
                .order(ByteOrder.nativeOrder()).asFloatBuffer().put(new float[n * (block == 0 ? 1 : k / block)]).flip() : null;
        StoredTensor[] weights = new StoredTensor[copies];
        for (int c = 0; c < copies; c++) {
            ByteBuffer data = span.position(c * bytes).limit((c + 1) * bytes).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            weights[c] = new StoredTensor("w", dtype, new long[] {n, k}, data, scales, block);
        }
        span.position(0).limit(SPAN_BYTES);
        FloatPointer xs = new FloatPointer((long) m * k);
        Pointer.memset(xs, 0, (long) m * k * Float.BYTES);
        FloatMatrix x = new FloatMatrix(xs, m, k, k);
        FloatMatrix y = new FloatMatrix(new FloatPointer((long) m * n), m, n, n);
        Products.linear(dispatcher, x, weights[0], null, y, false); // warm: oneDNN builds its kernels once
        double best = 0;
        for (int r = 0; r < REPEATS; r++) {
            long start = System.nanoTime();
            for (StoredTensor w : weights) {
                Products.linear(dispatcher, x, w, null, y, false);
            }
            best = Math.max(best, (double) bytes * copies / (System.nanoTime() - start));
        }
        return best;
    }

    private static DType dtype(String type) {
        return DType.valueOf(type.replace("/64", ""));
    }
}
