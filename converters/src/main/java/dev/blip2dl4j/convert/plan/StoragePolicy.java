package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.config.VisionParameters;
import dev.blip2dl4j.tensor.DType;

import java.util.EnumSet;
import java.util.Set;

/**
 * Which type each tensor is stored in. The weights of the products ({@code [out, in]} matrices:
 * {@link ParamSpec#product}) of the image encoder and of the language model take their part's type; everything
 * else stays float32:
 * <ul>
 * <li>norms, biases, the position tables, T5's bucket table, the class token and the patch convolution are
 * small (under 1% of any model) and are added or multiplied element-wise, where a rounding error is not averaged
 * away by a dot product;</li>
 * <li>the token tables are gathered row by row as float32 ({@code Weights.get}), mapped without a copy; a
 * low-precision table would be widened whole. OPT's output projection is its token table, so it reads float32
 * (a fifth of blip2-opt-2.7b's language model); T5's is its own product and takes the type;</li>
 * <li>the queries, the Q-Former and the language projection are what stage two trains, in float32.</li>
 * </ul>
 * Int8 is symmetric with a float32 scale per output row ({@code blockSize} 0) or per block of {@code blockSize}
 * input columns; a matrix whose columns the block does not divide takes a scale per row.
 *
 * @param dtype         the type asked for ({@code --dtype}), which the manifest records
 * @param vision        the image encoder's products
 * @param languageModel the language model's products
 * @param blockSize     int8: input columns per scale, 0 for one scale per output row
 */
public record StoragePolicy(DType dtype, DType vision, DType languageModel, int blockSize) {
    /** What a product may be stored in. */
    public static final Set<DType> TYPES = EnumSet.of(DType.F32, DType.BF16, DType.F16, DType.I8);
    /** One scale per output row: chosen by measured error and speed (docs/DESIGN.md, "The artifact"). */
    public static final int DEFAULT_BLOCK_SIZE = 0;

    public StoragePolicy {
        for (DType type : new DType[]{dtype, vision, languageModel}) {
            if (!TYPES.contains(type)) {
                throw new BadInputException("weights cannot be stored as " + type.userName()
                        + ": use float32, bfloat16, float16 or int8");
            }
        }
        if (blockSize < 0) {
            throw new BadInputException("the int8 block size must be 0 (a scale per row) or positive, not " + blockSize);
        }
    }

    /** Every product in {@code dtype}, int8 with the default scales. */
    public static StoragePolicy of(DType dtype) {
        return new StoragePolicy(dtype, dtype, dtype, DEFAULT_BLOCK_SIZE);
    }

    public static final StoragePolicy FLOAT32 = of(DType.F32);

    public StoragePolicy withVision(DType type) {
        return new StoragePolicy(dtype, type, languageModel, blockSize);
    }

    public StoragePolicy withLanguageModel(DType type) {
        return new StoragePolicy(dtype, vision, type, blockSize);
    }

    public StoragePolicy withBlockSize(int size) {
        return new StoragePolicy(dtype, vision, languageModel, size);
    }

    /** The type the parameter is stored in. */
    public DType dtype(ParamSpec p) {
        if (!p.product() || Blip2Parameters.trainedInStageTwo(p.name())) {
            return DType.F32;
        }
        if (VisionParameters.contains(p.name())) {
            return vision;
        }
        return Blip2Parameters.inLanguageModel(p.name()) ? languageModel : DType.F32;
    }

    /** The int8 block size of a matrix {@code [out, in]}: the policy's where it divides {@code in}, else per row. */
    public int blockSize(long[] shape) {
        return blockSize > 0 && shape[1] % blockSize == 0 ? blockSize : 0;
    }

    /** Bytes the parameter takes stored, its int8 scales included. */
    public long bytes(ParamSpec p) {
        DType type = dtype(p);
        long bytes = Math.multiplyExact(p.numel(), type.size());
        if (type == DType.I8) {
            long[] shape = p.shape();
            int block = blockSize(shape);
            bytes += shape[0] * (block == 0 ? 1 : shape[1] / block) * (long) Float.BYTES;
        }
        return bytes;
    }

    /** Bytes the model's parameters take stored under this policy. */
    public long bytes(Blip2Config config) {
        return ParameterLayout.of(config).parameters().stream().mapToLong(this::bytes).sum();
    }

    /** In words, for the manifest's notes and the command's report. */
    public String describe() {
        String scales = blockSize == 0 ? "a scale per output row" : "a scale per " + blockSize + " input columns";
        return "image encoder products " + vision.userName() + ", language model products " + languageModel.userName()
                + (vision == DType.I8 || languageModel == DType.I8 ? " (symmetric, " + scales + ")" : "")
                + "; norms, biases, tables, queries, Q-Former and projection float32";
    }
}
