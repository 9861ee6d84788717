package dev.blip2dl4j.arrays;

import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.StoredTensor;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The model's parameters by canonical (Hugging Face state-dict) name, as float32 arrays in Hugging Face
 * layout ({@code Linear.weight} is {@code [out, in]}). An artifact hands them out memory-mapped, without
 * a copy; graphs bind them by name, so a graph's variables carry exactly these names.
 */
public interface Weights {

    /**
     * The parameter of that name as float32; a missing one is a bug in the graph or a damaged artifact. An int8
     * tensor is refused (products read it through {@link #stored}); a half-precision one is widened whole, so
     * ask this only for the tensors the storage policy keeps small.
     */
    INDArray get(String name);

    /** The parameter in its storage type, as the products read it; here the float32 array's own bytes. */
    default StoredTensor stored(String name) {
        INDArray values = get(name);
        return new StoredTensor(name, DType.F32, values.shape(), NdArrays.bytes(values), null, 0);
    }

    boolean contains(String name);

    /**
     * The parameter as a copy in process memory that the caller owns. An artifact reads it from the file without
     * mapping it, so that the copy is all the memory it costs (a mapped array stays resident beside its copy).
     */
    default INDArray copy(String name) {
        return get(name).dup();
    }
}
