package dev.blip2dl4j.diagnostics.bench;

import org.nd4j.autodiff.listeners.At;
import org.nd4j.autodiff.listeners.BaseListener;
import org.nd4j.autodiff.listeners.Operation;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.internal.SameDiffOp;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.dataset.api.MultiDataSet;

import java.io.PrintStream;
import java.util.HashMap;
import java.util.Map;

/**
 * Where a graph run's time goes: wall time between each op's start and end, summed per op type and
 * per op and role (the weight it reads, minus the layer number, or else the ops that made its inputs).
 */
final class OpProfile extends BaseListener {
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

    private static String role(SameDiff sd, SameDiffOp op) {
        StringBuilder producers = new StringBuilder();
        for (String input : op.getInputsToOp()) {
            if (sd.getVariable(input).isConstant() && input.contains(".")) {
                return input.replaceAll("\\.(layers?|block)\\.\\d+\\.", ".N.");
            }
            String producer = sd.getVariableOutputOp(input) == null ? "input" : sd.getVariableOutputOp(input).opName();
            producers.append(producers.length() == 0 ? "<- " : ",").append(producer);
        }
        return producers.toString();
    }

    private static void add(Map<String, double[]> map, String key, double ms) {
        double[] acc = map.computeIfAbsent(key, k -> new double[2]);
        acc[0] += ms;
        acc[1]++;
    }

    void print(String stage, double wallSeconds, PrintStream out) {
        double total = byType.values().stream().mapToDouble(a -> a[0]).sum();
        out.printf("%n%s, profiled: %.3f s wall, %.3f s inside ops%n", stage, wallSeconds, total / 1e3);
        table("by op type", byType, total, out);
        table("by op and role (top 25)", byRole, total, out);
    }

    private static void table(String title, Map<String, double[]> map, double total, PrintStream out) {
        out.printf("%-70s %10s %6s %6s%n", title, "ms", "%", "count");
        map.entrySet().stream().sorted((a, b) -> Double.compare(b.getValue()[0], a.getValue()[0])).limit(25)
                .forEach(e -> out.printf("%-70s %10.1f %6.1f %6d%n", e.getKey(), e.getValue()[0],
                        100 * e.getValue()[0] / total, (long) e.getValue()[1]));
    }
}
