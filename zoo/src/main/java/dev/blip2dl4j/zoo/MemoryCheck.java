package dev.blip2dl4j.zoo;

import com.sun.management.OperatingSystemMXBean;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParameterLayout;

import java.lang.management.ManagementFactory;

/**
 * Whether a model will fit in this machine's memory, asked before loading it, so that a model too large
 * is refused with advice instead of failing half-way through (fp32 blip2-flan-t5-xxl needs ~58 GB).
 * The estimate: every parameter as float32 (what the CPU computes in, whatever dtype the artifact stores),
 * plus a fifth for activations, key/value caches and the JVM. It is compared with the machine's physical
 * memory (the container's limit, where there is one).
 */
public final class MemoryCheck {
    /** Bytes per parameter when computing: float32. */
    public static final int BYTES_PER_VALUE = 4;
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

    /** The memory a model of this many parameters needs to run here, in bytes. */
    public static long estimate(long parameters) {
        return (long) (parameters * (double) BYTES_PER_VALUE * OVERHEAD);
    }

    public long availableBytes() {
        return availableBytes;
    }

    public boolean fits(long parameters) {
        return estimate(parameters) <= availableBytes;
    }

    /** Refuses a model whose config says it will not fit. */
    public void require(Blip2Config config, String model) {
        require(ParameterLayout.of(config).totalValues(), model,
                "choose a smaller model (`blip2 models` lists each one's memory)");
    }

    /**
     * Refuses a model of {@code parameters} that will not fit, saying how much it needs, how much there is,
     * and {@code advice} (a smaller model to use).
     */
    public void require(long parameters, String model, String advice) {
        if (fits(parameters)) {
            return;
        }
        throw new BadInputException(model + " needs about " + gigabytes(estimate(parameters)) + " of memory ("
                + String.format("%.2f", parameters / 1e9) + " billion parameters computed in float32, plus a fifth "
                + "for activations and caches), more than the " + gigabytes(availableBytes) + " this machine has. To go "
                + "on, " + advice + ", or use a machine with more memory. Storing the weights in half precision "
                + "(blip2 convert --dtype float16) halves the download and the disk but not this: the CPU computes "
                + "in float32. --no-memory-check (MemoryCheck.OFF) loads it anyway, to run slowly at best.");
    }

    public static String gigabytes(long bytes) {
        return String.format("%.1f GB", bytes / 1e9);
    }
}
