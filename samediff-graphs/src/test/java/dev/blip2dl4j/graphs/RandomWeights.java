package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.HashMap;
import java.util.Map;

/**
 * Every parameter of a layout as N(0, 0.02) values (or another standard deviation), made when first asked
 * for: graphs of any size (full ViT-g for timing, odd image sizes for shapes) without a checkpoint.
 */
public final class RandomWeights implements Weights {
    private final ParameterLayout layout;
    private final double std;
    private final Map<String, INDArray> made = new HashMap<>();

    public RandomWeights(ParameterLayout layout, long seed) {
        this(layout, seed, 0.02);
    }

    /** Weights of a larger {@code std} keep a small model's outputs of order 1 through its norms. */
    public RandomWeights(ParameterLayout layout, long seed, double std) {
        this.layout = layout;
        this.std = std;
        Nd4j.getRandom().setSeed(seed);
    }

    @Override
    public INDArray get(String name) {
        return made.computeIfAbsent(name, n -> {
            ParamSpec spec = layout.get(n);
            if (spec == null) {
                throw new IllegalArgumentException("the layout has no parameter '" + n + "'");
            }
            return Nd4j.randn(DataType.FLOAT, spec.shape()).muli(std);
        });
    }

    @Override
    public boolean contains(String name) {
        return layout.contains(name);
    }
}
