package dev.blip2dl4j.config;

import dev.blip2dl4j.tensor.Shapes;
import java.util.Arrays;

/** One parameter of the model: its canonical (Hugging Face state-dict) name and its shape in HF layout. */
public record ParamSpec(String name, long[] shape) {

    public ParamSpec {
        shape = shape.clone();
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
