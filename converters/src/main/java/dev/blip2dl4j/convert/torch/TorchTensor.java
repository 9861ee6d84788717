package dev.blip2dl4j.convert.torch;

/**
 * A tensor as a checkpoint's pickle rebuilds it: a view (element offset, sizes, strides) of a storage.
 * Several tensors may view one storage, as tied weights do.
 */
record TorchTensor(TorchStorage storage, long storageOffset, long[] size, long[] stride) {
}
