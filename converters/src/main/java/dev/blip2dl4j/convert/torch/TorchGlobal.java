package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.tensor.DType;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The only Python globals that a state dict's pickle needs, and what calling each of them builds. A
 * pickle may name any function of any module and have it called with arguments of its choosing; we
 * resolve these few names and refuse every other, so that loading a checkpoint never runs code.
 */
enum TorchGlobal {
    ORDERED_DICT("collections", "OrderedDict", null),
    REBUILD_TENSOR_V2("torch._utils", "_rebuild_tensor_v2", null),
    REBUILD_PARAMETER("torch._utils", "_rebuild_parameter", null),
    REBUILD_PARAMETER_WITH_STATE("torch._utils", "_rebuild_parameter_with_state", null),
    // Typed storage classes: they appear only inside persistent ids, where they give the element type.
    FLOAT_STORAGE("torch", "FloatStorage", DType.F32),
    HALF_STORAGE("torch", "HalfStorage", DType.F16),
    BFLOAT16_STORAGE("torch", "BFloat16Storage", DType.BF16),
    DOUBLE_STORAGE("torch", "DoubleStorage", DType.F64),
    LONG_STORAGE("torch", "LongStorage", DType.I64),
    INT_STORAGE("torch", "IntStorage", DType.I32),
    SHORT_STORAGE("torch", "ShortStorage", DType.I16),
    CHAR_STORAGE("torch", "CharStorage", DType.I8),
    BYTE_STORAGE("torch", "ByteStorage", DType.U8),
    BOOL_STORAGE("torch", "BoolStorage", DType.BOOL);

    private final String module;
    private final String name;
    private final DType storageDType;

    TorchGlobal(String module, String name, DType storageDType) {
        this.module = module;
        this.name = name;
        this.storageDType = storageDType;
    }

    static Optional<TorchGlobal> find(String module, String name) {
        return Arrays.stream(values()).filter(g -> g.module.equals(module) && g.name.equals(name)).findFirst();
    }

    String qualifiedName() {
        return module + "." + name;
    }

    /** The element type, where this is a typed storage class. */
    Optional<DType> storageDType() {
        return Optional.ofNullable(storageDType);
    }

    /**
     * What REDUCE builds: this global called with these arguments, accepted only in the shapes that
     * {@code torch.save} writes.
     */
    Object call(List<Object> args) {
        return switch (this) {
            case ORDERED_DICT -> newOrderedDict(args, Map.of());
            case REBUILD_TENSOR_V2 -> rebuildTensor(args);
            // A parameter is its data plus autograd flags that a state dict does not need.
            case REBUILD_PARAMETER -> argument(args, 3, 0, TorchTensor.class, "data");
            case REBUILD_PARAMETER_WITH_STATE -> argument(args, 4, 0, TorchTensor.class, "data");
            default -> throw new IllegalArgumentException(qualifiedName()
                    + " is a storage type: it may appear only inside a persistent id, not be called");
        };
    }

    /** What NEWOBJ and NEWOBJ_EX build: {@code cls.__new__(cls, *args, **kwargs)}. */
    Object newObject(List<Object> args, Map<?, ?> kwargs) {
        if (this != ORDERED_DICT) {
            throw new IllegalArgumentException(qualifiedName() + " is not a class that a state dict instantiates");
        }
        return newOrderedDict(args, kwargs);
    }

    /** An empty dict: OrderedDict pickles its items afterwards with SETITEMS. */
    private Map<Object, Object> newOrderedDict(List<Object> args, Map<?, ?> kwargs) {
        if (!args.isEmpty() || !kwargs.isEmpty()) {
            throw new IllegalArgumentException("collections.OrderedDict is expected with no arguments, as"
                    + " torch.save writes it, but has " + args.size() + " arguments and " + kwargs.size()
                    + " keyword arguments");
        }
        return new LinkedHashMap<>();
    }

    /**
     * {@code _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[,
     * metadata])}. The flags, hooks (empty in a saved state dict) and metadata do not change the values.
     */
    private TorchTensor rebuildTensor(List<Object> args) {
        int count = args.size() == 7 ? 7 : 6;
        TorchStorage storage = argument(args, count, 0, TorchStorage.class, "storage");
        long offset = argument(args, count, 1, Long.class, "storage_offset");
        long[] size = ints(argument(args, count, 2, SafeUnpickler.Tuple.class, "size"), "size");
        long[] stride = ints(argument(args, count, 3, SafeUnpickler.Tuple.class, "stride"), "stride");
        argument(args, count, 4, Boolean.class, "requires_grad");
        argument(args, count, 5, Map.class, "backward_hooks");
        if (size.length != stride.length) {
            throw new IllegalArgumentException(qualifiedName() + " has " + size.length + " sizes but "
                    + stride.length + " strides");
        }
        return new TorchTensor(storage, offset, size, stride);
    }

    private <T> T argument(List<Object> args, int count, int index, Class<T> type, String role) {
        if (args.size() != count) {
            throw new IllegalArgumentException(qualifiedName() + " is expected with " + count
                    + " arguments, as torch.save writes it, but has " + args.size());
        }
        Object value = args.get(index);
        if (!type.isInstance(value)) {
            throw new IllegalArgumentException(qualifiedName() + " argument " + (index + 1) + " (" + role
                    + ") is " + SafeUnpickler.describe(value) + ", which torch.save never writes there");
        }
        return type.cast(value);
    }

    private long[] ints(SafeUnpickler.Tuple tuple, String role) {
        long[] values = new long[tuple.items().size()];
        for (int i = 0; i < values.length; i++) {
            if (!(tuple.items().get(i) instanceof Long value)) {
                throw new IllegalArgumentException(qualifiedName() + " " + role + " should hold ints, not "
                        + SafeUnpickler.describe(tuple.items().get(i)));
            }
            values[i] = value;
        }
        return values;
    }
}
