package dev.blip2dl4j.arrays;

import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.StoredTensor;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.HashMap;
import java.util.Map;

/**
 * Weights copied out of their memory mapping into process memory, each on first use. Decoding one token
 * streams every weight of the language model once, and the same GEMVs read page-cache pages far slower than
 * process memory (bench/README.md): the file mapping's 4 KiB pages cost TLB misses
 * that process memory avoids with transparent huge pages (glibc gives malloc's large blocks huge pages under
 * {@code GLIBC_TUNABLES=glibc.malloc.hugetlb=1}, which the {@code blip2} launcher sets). The price is resident
 * memory the size of the weights copied, where the mapping costs almost none. The copies are read from the file
 * without mapping it ({@link Weights#copy}), so they are all that the copied weights cost.
 */
public final class ResidentWeights implements Weights, AutoCloseable {
    private final Weights mapped;
    private final Map<String, INDArray> copies = new HashMap<>();

    public ResidentWeights(Weights mapped) {
        this.mapped = mapped;
    }

    @Override
    public INDArray get(String name) {
        return copies.computeIfAbsent(name, mapped::copy);
    }

    /**
     * Float32 tensors as the resident copies' bytes; a tensor stored in another type is read from the mapping in
     * that type (a float32 copy would cost more memory and time than the mapping saves).
     */
    @Override
    public StoredTensor stored(String name) {
        StoredTensor typed = mapped.stored(name);
        return typed.dtype() == DType.F32 ? Weights.super.stored(name) : typed;
    }

    /** A fresh copy the caller owns, from the source (not a copy of this one's copy). */
    @Override
    public INDArray copy(String name) {
        return mapped.copy(name);
    }

    @Override
    public boolean contains(String name) {
        return mapped.contains(name);
    }

    /** Frees the copies now rather than whenever the garbage collector gets to them: they are gigabytes. */
    @Override
    public void close() {
        copies.values().forEach(INDArray::close);
        copies.clear();
    }
}
