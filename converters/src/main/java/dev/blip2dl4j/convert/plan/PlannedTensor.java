package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.convert.tensor.DType;
import dev.blip2dl4j.convert.tensor.SourceTensor;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * One tensor of the artifact: its canonical name, stored type and shape, and where its values come from.
 */
public record PlannedTensor(String name, DType dtype, long[] shape, Origin origin) {

    public PlannedTensor {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long byteSize() {
        return Arrays.stream(shape).reduce(1, Math::multiplyExact) * dtype.size();
    }

    /** Where the values come from. */
    public sealed interface Origin permits Copy, Fused {
    }

    /**
     * One source tensor, converted to the stored type.
     *
     * @param roundThroughHalf round every value to float16 first (see {@code FloatConversion})
     */
    public record Copy(SourceTensor source, boolean roundThroughHalf) implements Origin {
    }

    /**
     * Equal parts concatenated along the first dimension, each from a source tensor or zeros where
     * the source has none (the k slot of LAVIS's fused qkv bias).
     */
    public record Fused(List<Optional<SourceTensor>> slots) implements Origin {
        public Fused {
            slots = List.copyOf(slots);
        }
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
