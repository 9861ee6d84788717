package dev.blip2dl4j.tensor;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;

/** Element types that BLIP-2 checkpoints use, with their names in safetensors and in the artifact. */
public enum DType {
    F64(8, true), F32(4, true), F16(2, true), BF16(2, true),
    I64(8, false), I32(4, false), I16(2, false), I8(1, false), U8(1, false), BOOL(1, false);

    private final int size;
    private final boolean floating;

    DType(int size, boolean floating) {
        this.size = size;
        this.floating = floating;
    }

    /** The {@code --dtype} spelling of a storage type, as {@link #fromUserName} reads it. */
    public String userName() {
        return switch (this) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            case I8 -> "int8";
            default -> name().toLowerCase(Locale.ROOT);
        };
    }

    /** Bytes per element. */
    public int size() {
        return size;
    }

    public boolean isFloatingPoint() {
        return floating;
    }

    /** The type a safetensors header names ("F32", "BF16", ...): the same names as ours. */
    public static Optional<DType> fromSafetensorsName(String name) {
        return Arrays.stream(values()).filter(d -> d.name().equals(name)).findFirst();
    }

    /** The {@code --dtype} spelling: float32, float16, bfloat16, int8 (symmetric, with float32 scales). */
    public static DType fromUserName(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "float32", "fp32", "f32" -> F32;
            case "float16", "fp16", "f16", "half" -> F16;
            case "bfloat16", "bf16" -> BF16;
            case "int8", "i8" -> I8;
            default -> throw new IllegalArgumentException(
                    "unknown dtype '" + name + "': use float32, bfloat16, float16 or int8");
        };
    }
}
