package dev.blip2dl4j.runtime;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Named float buffers that outlive one forward pass: a decode loop asks for the same shapes at every
 * step and gets the same arrays back, so the steady state allocates nothing large. A buffer whose shape
 * changes (a new batch size, a prefill after steps) is replaced and the old one's native memory freed
 * at once rather than when the garbage collector gets to it.
 */
final class Workspace {
    private final Map<String, INDArray> buffers = new HashMap<>();

    /** The buffer called {@code name}, of this shape; its contents are whatever the last user left. */
    INDArray get(String name, long... shape) {
        INDArray buffer = buffers.get(name);
        if (buffer != null && Arrays.equals(buffer.shape(), shape)) {
            return buffer;
        }
        if (buffer != null) {
            buffer.close();
        }
        INDArray fresh = Nd4j.createUninitialized(DataType.FLOAT, shape, 'c');
        buffers.put(name, fresh);
        return fresh;
    }
}
