package dev.blip2dl4j.arrays;

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
