package dev.blip2dl4j.diagnostics.bench;

import dev.blip2dl4j.runtime.Blas;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.CustomOp;
import org.nd4j.linalg.api.ops.Op;
import org.nd4j.linalg.api.ops.executioner.OpExecutioner;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.profiler.OpProfiler;
import org.nd4j.linalg.profiler.ProfilerConfig;
import org.nd4j.linalg.profiler.data.StringAggregator;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Where an eager stage's time goes, op by op: the eager code's BLAS products and native row passes (norms, bias,
 * GELU, softmax) report their times ({@link Blas}),
 * ND4J's own profiler times every op it executes (with its elapsed-time check on), and this collects both by op
 * and shape. ND4J 1.0.0-M2.1 times custom, transform and scalar ops but not broadcasts or reductions; what is
 * left of the wall time (those, the Java row kernels, dispatch) is printed as one line.
 */
final class EagerProfile extends StringAggregator {
    private final Map<String, double[]> byOp = new HashMap<>();

    /** Profiles {@code stage} once: prints the table to {@code out}. */
    static void run(String stage, Runnable stageRun, PrintStream out) {
        EagerProfile profile = new EagerProfile();
        OpProfiler profiler = OpProfiler.getInstance();
        StringAggregator previous = profiler.getClassAggergator();
        profiler.setClassAggergator(profile);
        Nd4j.getExecutioner().setProfilingConfig(ProfilerConfig.builder().checkElapsedTime(true).build());
        Blas.setTimer(profile::add);
        long started = System.nanoTime();
        try {
            stageRun.run();
        } finally {
            Blas.setTimer(null);
            Nd4j.getExecutioner().setProfilingMode(OpExecutioner.ProfilingMode.DISABLED);
            profiler.setClassAggergator(previous);
        }
        profile.print(stage, (System.nanoTime() - started) / 1e9, out);
    }

    @Override
    public void putTime(String key, Op op, long timeSpentNanos) {
        add(op.opName() + " " + shapes(op.x(), op.y()), timeSpentNanos);
    }

    @Override
    public void putTime(String key, CustomOp op, long timeSpentNanos) {
        add(op.opName() + " " + shapes(op.inputArguments().toArray(INDArray[]::new)), timeSpentNanos);
    }

    private void add(String key, long nanos) {
        double[] acc = byOp.computeIfAbsent(key, k -> new double[2]);
        acc[0] += nanos / 1e6;
        acc[1]++;
    }

    private static String shapes(INDArray... operands) {
        return Stream.of(operands).filter(a -> a != null).map(a -> Arrays.toString(a.shape()))
                .collect(Collectors.joining(" x "));
    }

    private void print(String stage, double wallSeconds, PrintStream out) {
        double timed = byOp.values().stream().mapToDouble(a -> a[0]).sum();
        out.printf("%n%s, profiled (eager): %.3f s wall, %.3f s in timed products and ND4J ops%n", stage, wallSeconds,
                timed / 1e3);
        out.printf("%-80s %10s %6s %6s%n", "by op and operand shapes (sgemm: m x n x k; top 25)", "ms", "%", "count");
        double wallMs = wallSeconds * 1e3;
        byOp.entrySet().stream().sorted((a, b) -> Double.compare(b.getValue()[0], a.getValue()[0])).limit(25)
                .forEach(e -> out.printf("%-80s %10.1f %6.1f %6d%n", e.getKey(), e.getValue()[0],
                        100 * e.getValue()[0] / wallMs, (long) e.getValue()[1]));
        out.printf("%-80s %10.1f %6.1f%n", "untimed: broadcasts, reductions, Java kernels, dispatch", wallMs - timed,
                100 * (wallMs - timed) / wallMs);
    }
}
