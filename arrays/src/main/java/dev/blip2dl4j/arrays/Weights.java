package dev.blip2dl4j.arrays;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The model's parameters by canonical (Hugging Face state-dict) name, as float32 arrays in Hugging Face
 * layout ({@code Linear.weight} is {@code [out, in]}). An artifact hands them out memory-mapped, without
 * a copy; graphs bind them by name, so a graph's variables carry exactly these names.
 */
public interface Weights {

    /** The parameter of that name; a missing one is a bug in the graph or a damaged artifact. */
    INDArray get(String name);

    boolean contains(String name);

    /**
     * The parameter as a copy in process memory that the caller owns. An artifact reads it from the file without
     * mapping it, so that the copy is all the memory it costs (a mapped array stays resident beside its copy).
     */
    default INDArray copy(String name) {
        return get(name).dup();
    }
}
