package dev.blip2dl4j.config;

import dev.blip2dl4j.tensor.Shapes;
import java.util.Arrays;

/**
 * One parameter of the model: its canonical (Hugging Face state-dict) name and its shape in HF layout.
 *
 * @param product whether it is the {@code [out, in]} weight of a product (a Linear layer or an output projection),
 *                which a storage type may quantize; tables, norms, biases and convolutions are not
 */
public record ParamSpec(String name, long[] shape, boolean product) {

    public ParamSpec {
        shape = shape.clone();
    }

    public ParamSpec(String name, long[] shape) {
        this(name, shape, false);
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        return Shapes.numel(shape);
    }

    @Override
    public String toString() {
        return name + " " + Arrays.toString(shape);
    }
}
