package dev.blip2dl4j.zoo.graphs;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.config.VisionConfig;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.VisionTransformer;
import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Times one image through the full-size ViT-g graph (random weights) and says where the time goes, op
 * by op. Not a test: build with {@code test-compile}, then run it with the thread settings of DESIGN.md and
 * this build's classes ahead of the test classpath, e.g.
 * {@code OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 java -Xmx4g
 * -cp zoo/target/test-classes:zoo/target/classes:samediff-graphs/target/classes:converters/target/classes:<deps>
 * dev.blip2dl4j.zoo.graphs.VisionForwardBench [runs]}. Making the random weights takes most of a minute.
 */
public final class VisionForwardBench {
    public static void main(String[] args) {
        int runs = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        Blip2Config config = Blip2Config.knownLavisType("pretrain");
        VisionConfig vision = config.vision();
        System.out.println(vision);
        System.out.println("load average before: " + loadAverage());

        long start = System.nanoTime();
        RandomWeights weights = new RandomWeights(ParameterLayout.of(config), 42);
        SameDiff sd = SameDiff.create();
        SDVariable pixels = sd.placeHolder("pixel_values", DataType.FLOAT, -1, 3, vision.imageSize(), vision.imageSize());
        VisionTransformer.Output out = VisionTransformer.build(new Layers(sd, weights), vision, pixels);
        System.out.printf("random weights + graph: %.1f s, %d ops%n", seconds(start), sd.getOps().size());

        Map<String, INDArray> feed = Map.of("pixel_values", Nd4j.randn(DataType.FLOAT, 1, 3, vision.imageSize(), vision.imageSize()));
        String[] wanted = {out.lastHiddenState().name(), out.pooledOutput().name()};
        start = System.nanoTime();
        sd.output(feed, wanted);
        System.out.printf("warm-up: %.3f s%n", seconds(start));
        double[] times = new double[runs];
        for (int i = 0; i < runs; i++) {
            start = System.nanoTime();
            sd.output(feed, wanted);
            times[i] = seconds(start);
        }
        double[] sorted = times.clone();
        Arrays.sort(sorted);
        double gflop = flops(vision) / 1e9;
        System.out.printf("forward: %s s, median %.3f s (%.0f GFLOP -> %.0f GFLOP/s)%n",
                Arrays.toString(times), sorted[runs / 2], gflop, gflop / sorted[runs / 2]);
        // other processes on a 2-core machine show up here first
        System.out.println("load average after timing: " + loadAverage());

        OpTimer timer = new OpTimer();
        sd.setListeners(timer);
        start = System.nanoTime();
        sd.output(feed, wanted);
        double profiled = seconds(start);
        timer.print(profiled);
    }

    /** Multiply-adds x2 of the GEMMs (patch embedding, qkv, projection, fc1, fc2, attention). */
    static double flops(VisionConfig c) {
        double t = c.numPositions(), h = c.hiddenSize(), m = c.intermediateSize();
        double perLayer = t * h * 3 * h + t * h * h + 2 * t * h * m + 2 * t * t * h;
        return 2 * (c.numHiddenLayers() * perLayer + (t - 1) * h * 3 * c.patchSize() * c.patchSize());
    }

    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (IOException e) {
            return "unknown";
        }
    }

    private static double seconds(long start) {
        return (System.nanoTime() - start) / 1e9;
    }

    /** Wall time between each op's start and end, summed per op type and per role in the block. */
    static final class OpTimer extends BaseListener {
        private final Map<String, double[]> byType = new HashMap<>();
        private final Map<String, double[]> byRole = new HashMap<>();
        private long opStart;

        @Override
        public boolean isActive(Operation operation) {
            return true;
        }

        @Override
        public void preOpExecution(SameDiff sd, At at, SameDiffOp op, OpContext opContext) {
            opStart = System.nanoTime();
        }

        @Override
        public void opExecution(SameDiff sd, At at, MultiDataSet batch, SameDiffOp op, OpContext opContext,
                                INDArray[] outputs) {
            double ms = (System.nanoTime() - opStart) / 1e6;
            String type = op.getOp().opName();
            add(byType, type, ms);
            add(byRole, type + " " + role(sd, op), ms);
        }

        /** The parameter an op reads (minus layer prefix), or else the op types that produced its inputs. */
        private static String role(SameDiff sd, SameDiffOp op) {
            StringBuilder producers = new StringBuilder();
            for (String input : op.getInputsToOp()) {
                if (input.startsWith("vision_model.")) {
                    return input.replaceFirst("vision_model\\.(encoder\\.layers\\.\\d+\\.)?", "");
                }
                String producer = sd.getVariableOutputOp(input) == null ? "const" : sd.getVariableOutputOp(input).opName();
                producers.append(producers.length() == 0 ? "<- " : ",").append(producer);
            }
            return producers.toString();
        }

        private static void add(Map<String, double[]> map, String key, double ms) {
            double[] acc = map.computeIfAbsent(key, k -> new double[2]);
            acc[0] += ms;
            acc[1]++;
        }

        void print(double wallSeconds) {
            double total = byType.values().stream().mapToDouble(a -> a[0]).sum();
            System.out.printf("%nprofiled forward: %.3f s wall, %.3f s inside ops%n", wallSeconds, total / 1e3);
            table("by op type", byType, total);
            table("by op and role", byRole, total);
        }

        private static void table(String title, Map<String, double[]> map, double total) {
            System.out.printf("%n%-60s %10s %6s %6s%n", title, "ms", "%", "count");
            map.entrySet().stream().sorted((a, b) -> Double.compare(b.getValue()[0], a.getValue()[0]))
                    .forEach(e -> System.out.printf("%-60s %10.1f %6.1f %6d%n", e.getKey(), e.getValue()[0],
                            100 * e.getValue()[0] / total, (long) e.getValue()[1]));
        }
    }
}
