package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.tensor.DType;

import java.util.List;

/**
 * A storage that a checkpoint's pickle refers to by persistent id: its bytes are the archive entry
 * {@code data/<key>}, {@code numel} elements of {@code dtype}.
 */
record TorchStorage(DType dtype, String key, long numel) {

    private static final String EXPECTED = "('storage', storage_type, key, location, numel)";

    /**
     * Reads the persistent id that {@code torch.save} writes for each storage. The location
     * ("cpu", "cuda:0") says where the storage lived when saved; here every storage is read to the CPU.
     */
    static TorchStorage fromPersistentId(Object id) {
        if (!(id instanceof SafeUnpickler.Tuple tuple) || tuple.items().size() != 5
                || !"storage".equals(tuple.items().get(0))) {
            throw new IllegalArgumentException("a persistent id should be " + EXPECTED + ", found "
                    + SafeUnpickler.describe(id));
        }
        List<Object> items = tuple.items();
        if (!(items.get(1) instanceof TorchGlobal type) || type.storageDType().isEmpty()) {
            throw new IllegalArgumentException("the storage_type of a persistent id should be a typed storage"
                    + " class such as torch.FloatStorage, found " + SafeUnpickler.describe(items.get(1)));
        }
        if (!(items.get(2) instanceof String key) || !(items.get(3) instanceof String)) {
            throw new IllegalArgumentException("the key and location of a persistent id should be strings, found "
                    + SafeUnpickler.describe(items.get(2)) + " and " + SafeUnpickler.describe(items.get(3)));
        }
        if (!(items.get(4) instanceof Long numel) || numel < 0) {
            throw new IllegalArgumentException("the numel of persistent id '" + key
                    + "' should be a non-negative int, found " + SafeUnpickler.describe(items.get(4)));
        }
        return new TorchStorage(type.storageDType().get(), key, numel);
    }
}
