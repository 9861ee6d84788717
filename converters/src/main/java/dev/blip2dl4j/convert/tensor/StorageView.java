package dev.blip2dl4j.convert.tensor;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Where a tensor's bytes lie: a region of a file that holds its storage, and the view of the tensor
 * into that storage. Safetensors tensors are always contiguous views of their own region; PyTorch
 * tensors are views (element offset, strides) of a storage that several tensors may share.
 *
 * @param file          the file holding the storage
 * @param storageOffset byte offset of the storage's first element in the file
 * @param storageBytes  length of the storage in bytes
 * @param elementOffset offset of the tensor's first element within the storage, in elements
 * @param strides       strides in elements, one per dimension
 */
public record StorageView(Path file, long storageOffset, long storageBytes, long elementOffset, long[] strides) {

    public StorageView {
        strides = strides.clone();
    }

    /** The view of a contiguous tensor that fills its own region. */
    public static StorageView contiguous(Path file, long offset, long bytes, long[] shape) {
        return new StorageView(file, offset, bytes, 0, contiguousStrides(shape));
    }

    public static long[] contiguousStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long stride = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            strides[i] = stride;
            stride *= shape[i];
        }
        return strides;
    }

    @Override
    public long[] strides() {
        return strides.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StorageView v && file.equals(v.file) && storageOffset == v.storageOffset
                && storageBytes == v.storageBytes && elementOffset == v.elementOffset
                && Arrays.equals(strides, v.strides);
    }

    @Override
    public int hashCode() {
        return 31 * file.hashCode() + Long.hashCode(storageOffset + elementOffset) + Arrays.hashCode(strides);
    }

    @Override
    public String toString() {
        return file + "@" + storageOffset + "+" + elementOffset + " strides " + Arrays.toString(strides);
    }
}
