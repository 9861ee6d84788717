package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.convert.tensor.SourceTensor;

import java.nio.ByteBuffer;
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

    /**
     * The stored bytes, read and converted in memory: for the small tensors that are not streamed, and
     * for using a checkpoint without writing an artifact.
     */
    public byte[] readAll() {
        byte[] bytes = new byte[Math.toIntExact(byteSize())];
        if (origin instanceof Copy copy) {
            convertInto(bytes, 0, copy.source(), copy.roundThroughHalf());
        } else {
            List<Optional<SourceTensor>> slots = ((Fused) origin).slots();
            int slotBytes = bytes.length / slots.size();
            for (int i = 0; i < slots.size(); i++) {
                int at = i * slotBytes;
                slots.get(i).ifPresent(slot -> convertInto(bytes, at, slot, false));
            }
        }
        return bytes;
    }

    private void convertInto(byte[] out, int at, SourceTensor source, boolean roundThroughHalf) {
        ByteBuffer raw = source.readFully();
        byte[] in = new byte[raw.remaining()];
        raw.get(in);
        FloatConversion.convert(in, 0, source.dtype(), out, at, dtype, (int) source.numel(), roundThroughHalf);
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
