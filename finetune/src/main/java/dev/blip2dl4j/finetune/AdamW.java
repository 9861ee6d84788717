package dev.blip2dl4j.finetune;

import dev.blip2dl4j.compute.OptimizerKernels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * {@code torch.optim.AdamW}, step for step: decoupled weight decay {@code p -= lr * wd * p}, then Adam with
 * bias correction, epsilon added after the square root of the corrected second moment:
 * <pre>
 * m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * </pre>
 * DL4J's {@code Adam} with {@code weightDecay(coeff, true)} is not this: its updater adds epsilon to
 * {@code sqrt(v)} before the bias correction, an epsilon {@code 1/sqrt(1 - b2^t)} times larger (31.6x at
 * the first step), which moves parameters whose gradients are small. Measured on the fixtures' step from
 * the reference gradients: DL4J's parameters differ from torch's by up to 6.9e-5 (2-3 tensors outside
 * 1e-5 + 1e-3 |ref|), these by 7.5e-9.
 *
 * <p>The parameters are updated in place (a {@link StageTwoLoss}'s own arrays). The moments and the step
 * count are the optimizer's state, which a checkpoint saves ({@link #state()}) and resume restores
 * ({@link #restore(State)}).
 */
public final class AdamW {
    /** torch's defaults are betas (0.9, 0.999), eps 1e-8, weight decay 0.01; LAVIS sets weight decay 0.05. */
    public record Settings(double beta1, double beta2, double epsilon, double weightDecay, WeightDecayGroups groups) {
        public Settings {
            if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) {
                throw new IllegalArgumentException("betas must lie in [0, 1); got " + beta1 + ", " + beta2);
            }
            if (!(epsilon >= 0 && weightDecay >= 0)) {
                throw new IllegalArgumentException("epsilon and weight decay must not be negative; got " + epsilon
                        + ", " + weightDecay);
            }
        }

        public static Settings torchDefaults() {
            return new Settings(0.9, 0.999, 1e-8, 0.01, WeightDecayGroups.ALL);
        }

        public Settings withWeightDecay(double weightDecay, WeightDecayGroups groups) {
            return new Settings(beta1, beta2, epsilon, weightDecay, groups);
        }
    }

    /**
     * What a checkpoint keeps of the optimizer.
     *
     * @param step     optimizer steps taken (torch's per-parameter {@code step}, the same for all here)
     * @param expAvg   the first moments by parameter name ({@code exp_avg})
     * @param expAvgSq the second moments by parameter name ({@code exp_avg_sq})
     */
    public record State(long step, Map<String, INDArray> expAvg, Map<String, INDArray> expAvgSq) {
        private static final String EXP_AVG = ".exp_avg";
        private static final String EXP_AVG_SQ = ".exp_avg_sq";

        /** Both moments in one map, as a checkpoint file stores them: {@code <name>.exp_avg}, {@code <name>.exp_avg_sq}. */
        public Map<String, INDArray> arrays() {
            Map<String, INDArray> arrays = new LinkedHashMap<>();
            expAvg.forEach((name, m) -> arrays.put(name + EXP_AVG, m));
            expAvgSq.forEach((name, v) -> arrays.put(name + EXP_AVG_SQ, v));
            return arrays;
        }

        /** The inverse of {@link #arrays()}. */
        public static State of(long step, Map<String, INDArray> arrays) {
            Map<String, INDArray> m = new LinkedHashMap<>();
            Map<String, INDArray> v = new LinkedHashMap<>();
            arrays.forEach((key, array) -> {
                if (key.endsWith(EXP_AVG_SQ)) {
                    v.put(key.substring(0, key.length() - EXP_AVG_SQ.length()), array);
                } else if (key.endsWith(EXP_AVG)) {
                    m.put(key.substring(0, key.length() - EXP_AVG.length()), array);
                } else {
                    throw new IllegalArgumentException("'" + key + "' is not an AdamW state array (<name>"
                            + EXP_AVG + " or <name>" + EXP_AVG_SQ + ")");
                }
            });
            return new State(step, m, v);
        }
    }

    /** Below this many elements a parameter is updated on one thread. */
    private static final int PARALLEL_FROM = 1 << 16;

    private final Settings settings;
    private final Map<String, INDArray> parameters;
    private final Map<String, INDArray> expAvg = new LinkedHashMap<>();
    private final Map<String, INDArray> expAvgSq = new LinkedHashMap<>();
    private long step;

    /** @param parameters updated in place by {@link #step}, by name */
    public AdamW(Map<String, INDArray> parameters, Settings settings) {
        this.settings = settings;
        this.parameters = new LinkedHashMap<>(parameters);
        parameters.forEach((name, p) -> {
            expAvg.put(name, Nd4j.zeros(p.dataType(), p.shape()));
            expAvgSq.put(name, Nd4j.zeros(p.dataType(), p.shape()));
        });
    }

    public Settings settings() {
        return settings;
    }

    /** Optimizer steps taken so far. */
    public long steps() {
        return step;
    }

    /** The weight decay the named parameter gets: its group's. */
    public double weightDecay(String name) {
        return settings.groups().decays(name, parameters.get(name).shape()) ? settings.weightDecay() : 0;
    }

    /** One update of every parameter from its gradient (every parameter must have one) at learning rate {@code lr}. */
    public void step(Map<String, INDArray> gradients, double lr) {
        if (!gradients.keySet().equals(parameters.keySet())) {
            throw new IllegalArgumentException("gradients for " + gradients.keySet() + ", parameters " + parameters.keySet());
        }
        step++;
        double beta1 = settings.beta1();
        double beta2 = settings.beta2();
        double stepSize = lr / (1 - Math.pow(beta1, step));
        double correction2Sqrt = Math.sqrt(1 - Math.pow(beta2, step));
        for (Map.Entry<String, INDArray> entry : parameters.entrySet()) {
            String name = entry.getKey();
            INDArray g = gradients.get(name);
            Update update = new Update(floats(entry.getValue(), name), floats(g.dataType() == DataType.FLOAT
                    && g.ordering() == 'c' && g.elementWiseStride() == 1 ? g : g.castTo(DataType.FLOAT).dup('c'), name),
                    floats(expAvg.get(name), name), floats(expAvgSq.get(name), name),
                    (float) (1 - lr * weightDecay(name)), (float) beta1, (float) (1 - beta1), (float) beta2,
                    (float) (1 - beta2), (float) -stepSize, (float) correction2Sqrt, (float) settings.epsilon());
            int n = (int) g.length();
            if (OptimizerKernels.available()) {
                update.runNatively();
            } else if (n < PARALLEL_FROM) {
                update.run(0, n);
            } else {
                IntStream.range(0, 2).parallel().forEach(half -> update.run(half == 0 ? 0 : n / 2, half == 0 ? n / 2 : n));
            }
        }
    }

    /**
     * One parameter's update as one pass over its four arrays, each element in torch's order of float operations
     * ({@code mul_}, {@code add_(alpha)}, {@code addcmul_}, {@code sqrt}, {@code div}, {@code add_}, {@code addcdiv_}):
     * a pass per operation, as ND4J's ops would make, read and wrote the 107M parameters' arrays a dozen times
     * (bench/README.md). Natively ({@link OptimizerKernels}) where the library runs, the same operations vectorised: this
     * loop is the fallback, and the test that holds the native update to it bit for bit.
     */
    record Update(FloatBuffer p, FloatBuffer g, FloatBuffer m, FloatBuffer v, float decay, float beta1,
                          float oneMinusBeta1, float beta2, float oneMinusBeta2, float minusStepSize,
                          float correction2Sqrt, float epsilon) {
        void run(int from, int until) {
            for (int i = from; i < until; i++) {
                float grad = g.get(i);
                float param = p.get(i) * decay;
                float first = m.get(i) * beta1 + oneMinusBeta1 * grad;
                float second = v.get(i) * beta2 + oneMinusBeta2 * grad * grad;
                float denominator = (float) Math.sqrt(second) / correction2Sqrt + epsilon;
                m.put(i, first);
                v.put(i, second);
                p.put(i, param + minusStepSize * first / denominator);
            }
        }

        void runNatively() {
            OptimizerKernels.adamw(p, g, m, v, decay, beta1, oneMinusBeta1, beta2, oneMinusBeta2, minusStepSize,
                    correction2Sqrt, epsilon);
        }
    }

    /** A float array's elements for the update loop to index; parameters and moments are always whole c-order arrays. */
    private static FloatBuffer floats(INDArray array, String name) {
        if (array.dataType() != DataType.FLOAT || array.ordering() != 'c' || array.elementWiseStride() != 1) {
            throw new IllegalStateException("parameter " + name + " is not a contiguous float array: "
                    + array.shapeInfoToString());
        }
        return array.data().asNioFloat().position((int) array.offset()).slice();
    }

    /** Copies of the moments and the step count. */
    public State state() {
        Map<String, INDArray> m = new LinkedHashMap<>();
        Map<String, INDArray> v = new LinkedHashMap<>();
        expAvg.forEach((name, a) -> m.put(name, a.dup()));
        expAvgSq.forEach((name, a) -> v.put(name, a.dup()));
        return new State(step, m, v);
    }

    /** Continues from a saved state: the same parameter names and shapes. */
    public void restore(State state) {
        if (!state.expAvg().keySet().equals(parameters.keySet()) || !state.expAvgSq().keySet().equals(parameters.keySet())) {
            throw new IllegalArgumentException("the saved AdamW state is for parameters " + state.expAvg().keySet()
                    + ", this optimizer has " + parameters.keySet());
        }
        for (String name : parameters.keySet()) {
            long[] shape = parameters.get(name).shape();
            for (INDArray saved : new INDArray[]{state.expAvg().get(name), state.expAvgSq().get(name)}) {
                if (!Arrays.equals(saved.shape(), shape)) {
                    throw new IllegalArgumentException("saved AdamW state of '" + name + "' has shape "
                            + Arrays.toString(saved.shape()) + ", the parameter " + Arrays.toString(shape));
                }
            }
            expAvg.get(name).assign(state.expAvg().get(name));
            expAvgSq.get(name).assign(state.expAvgSq().get(name));
        }
        step = state.step();
    }
}
