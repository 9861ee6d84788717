package dev.blip2dl4j.diagnostics.verify;

import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.tensor.DType;

/**
 * How far a model whose products' weights are stored in a narrower type may be from the float32 reference
 * (docs/DESIGN.md "Parity and tolerances"). Float32 keeps the fixtures' absolute tolerances. Otherwise an output
 * may move by a fraction of its largest reference magnitude on top of those: {@value #GROWTH} times the type's
 * relative rounding step (gradients {@value #GRADIENT_GROWTH} times) (bfloat16: half an ulp of 8 significant bits, 2^-9; float16: 2^-11; int8 per row: half a
 * step of max / 127 against the row's largest weight, 1/254), because each product rounds both its operands
 * (the weight as stored, the input to bfloat16 or int8 in the native kernels) and the layers carry it on.
 *
 * @param storage the narrowest type among the model's products' weights
 */
public record StorageTolerance(DType storage) {
    /**
     * Two roundings per product (weight and input), times what the layers make of them: the fixtures' outputs moved
     * by at most 11 steps of their largest magnitude (Flan-T5's top-5 scores in bfloat16), most by 1 to 5.
     */
    static final double GROWTH = 16;
    /** Gradients run forward and back through every layer: they moved by up to 42 steps (OPT, bfloat16). */
    static final double GRADIENT_GROWTH = 64;

    /** The narrowest type of the products' weights of this model. */
    public static StorageTolerance of(Blip2Config config, Weights weights) {
        DType narrowest = DType.F32;
        for (ParamSpec p : ParameterLayout.of(config).parameters()) {
            if (p.product() && weights.contains(p.name())) {
                DType type = weights.stored(p.name()).dtype();
                if (step(type) > step(narrowest)) {
                    narrowest = type;
                }
            }
        }
        return new StorageTolerance(narrowest);
    }

    /** Whether outputs are held to float32's tolerances as they are. */
    public boolean exact() {
        return storage == DType.F32;
    }

    /** {@code float32Tolerance}, widened by the type's share of the reference's largest magnitude. */
    public double of(double float32Tolerance, double referenceMax) {
        return float32Tolerance + GROWTH * step(storage) * referenceMax;
    }

    /** {@code float32Tolerance}, widened for a gradient of the frozen layers' narrower weights. */
    public double ofGradient(double float32Tolerance, double referenceMax) {
        return float32Tolerance + GRADIENT_GROWTH * step(storage) * referenceMax;
    }

    /** The relative rounding step of a weight stored as {@code type}. */
    static double step(DType type) {
        return switch (type) {
            case BF16 -> Math.scalb(1.0, -9);
            case F16 -> Math.scalb(1.0, -11);
            case I8 -> 1.0 / 254;
            default -> 0;
        };
    }
}
