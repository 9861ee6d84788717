package dev.blip2dl4j.zoo;

import com.sun.management.OperatingSystemMXBean;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.zoo.hub.ModelCache;

import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Optional;
import java.util.function.ToLongFunction;

/**
 * Whether a model will fit in this machine's memory, asked before loading it, so that a model too large
 * is refused with advice instead of failing half-way through (fp32 blip2-flan-t5-xxl needs ~58 GB).
 * The estimate: the weights as stored (each tensor in the type the storage policy gives it, int8 scales
 * included: the products read them in that type), plus a fifth for activations, key/value caches and the
 * JVM. It is compared with the machine's physical memory (the container's limit, where there is one).
 */
public final class MemoryCheck {
    /** Activations, caches and the JVM's own memory, as a share of the weights. */
    public static final double OVERHEAD = 1.2;

    /** Checks nothing. */
    public static final MemoryCheck OFF = new MemoryCheck(Long.MAX_VALUE);

    private final long availableBytes;

    private MemoryCheck(long availableBytes) {
        this.availableBytes = availableBytes;
    }

    /** Against this machine's physical memory. */
    public static MemoryCheck system() {
        return new MemoryCheck(physicalMemory());
    }

    /** Against a given number of bytes. */
    public static MemoryCheck limit(long bytes) {
        return new MemoryCheck(bytes);
    }

    public static long physicalMemory() {
        return ((OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize();
    }

    /** The memory a model whose weights take {@code weightBytes} as stored needs to run, in bytes. */
    public static long estimate(long weightBytes) {
        return (long) (weightBytes * OVERHEAD);
    }

    /** The bytes of a model's weights stored under {@code storage}. */
    public static long weightBytes(Blip2Config config, StoragePolicy storage) {
        return storage.bytes(config);
    }

    public long availableBytes() {
        return availableBytes;
    }

    /** Whether a model of {@code weightBytes} as stored fits. */
    public boolean fits(long weightBytes) {
        return estimate(weightBytes) <= availableBytes;
    }

    /** Refuses a model of {@code weightBytes} as stored that will not fit. */
    public void require(long weightBytes, String model) {
        require(weightBytes, model, "choose a smaller model (`blip2 models` lists each one's memory)");
    }

    /**
     * Refuses a model of {@code weightBytes} as stored that will not fit, saying how much it needs, how much there
     * is, and {@code advice} (a smaller model to use).
     */
    public void require(long weightBytes, String model, String advice) {
        if (fits(weightBytes)) {
            return;
        }
        throw new BadInputException(model + " needs about " + gigabytes(estimate(weightBytes)) + " of memory (its "
                + "weights as stored, " + gigabytes(weightBytes) + ", plus a fifth for activations and caches), more "
                + "than the " + gigabytes(availableBytes) + " this machine has. To go on, " + advice + ", store its "
                + "weights in fewer bytes (blip2 convert or pull --dtype bfloat16 halves float32, --dtype int8 "
                + "quarters it; `blip2 models` shows each model's need per type), or use a machine with more memory. "
                + "--no-memory-check (MemoryCheck.OFF) loads it anyway, to run slowly at best.");
    }

    /**
     * Refuses a model by name that will not fit with its weights stored under {@code storage}, naming the widest
     * storage type in which it would fit (and how to pull it so), or saying that none would; {@code smaller} is
     * the advice to use another model.
     *
     * @param weightBytes the bytes of the model's weights under a storage policy
     */
    public void require(String model, StoragePolicy storage, ToLongFunction<StoragePolicy> weightBytes, String smaller) {
        long asked = weightBytes.applyAsLong(storage);
        if (fits(asked)) {
            return;
        }
        Optional<DType> fitting = widestFitting(weightBytes);
        String advice = fitting.map(type -> "It fits with its weights stored as " + type.userName() + ", in about "
                        + gigabytes(estimate(weightBytes.applyAsLong(StoragePolicy.of(type)))) + ": blip2 pull " + model
                        + " --dtype " + type.userName() + " (Blip2.pretrained(\"" + model + "\", DType." + type.name()
                        + ") in Java). Or " + smaller)
                .orElse("It fits in no storage type (int8 needs about " + gigabytes(estimate(weightBytes.applyAsLong(
                        StoragePolicy.of(DType.I8)))) + "): " + smaller);
        throw new BadInputException(model + " needs about " + gigabytes(estimate(asked)) + " of memory stored as "
                + ModelCache.tag(storage) + " (its weights, " + gigabytes(asked) + ", plus a fifth for activations "
                + "and caches), more than the " + gigabytes(availableBytes) + " this machine has. " + advice + ", or use "
                + "a machine with more memory. --no-memory-check (MemoryCheck.OFF) loads it anyway, to run slowly at best.");
    }

    /** Of float32, bfloat16 and int8, the widest type in which every product stored fits, if any. */
    public Optional<DType> widestFitting(ToLongFunction<StoragePolicy> weightBytes) {
        return List.of(DType.F32, DType.BF16, DType.I8).stream()
                .filter(type -> fits(weightBytes.applyAsLong(StoragePolicy.of(type)))).findFirst();
    }

    public static String gigabytes(long bytes) {
        return String.format("%.1f GB", bytes / 1e9);
    }
}
