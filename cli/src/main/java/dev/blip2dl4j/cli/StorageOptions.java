package dev.blip2dl4j.cli;

import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** The storage types a conversion writes ({@link StoragePolicy}): shared by convert, pull, rm and every --model. */
final class StorageOptions {
    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "float32",
            description = "float32, bfloat16, float16 or int8: how to store the image encoder's and the language "
                    + "model's products (default: ${DEFAULT-VALUE}); norms, biases, tables, the Q-Former and the "
                    + "projection stay float32.")
    String dtype;

    @Option(names = "--vision-dtype", paramLabel = "TYPE", description = "The image encoder's products' type, "
            + "overriding --dtype.")
    String visionDtype;

    @Option(names = "--lm-dtype", paramLabel = "TYPE", description = "The language model's products' type, "
            + "overriding --dtype.")
    String lmDtype;

    StoragePolicy policy() {
        StoragePolicy policy = StoragePolicy.of(parse("--dtype", dtype));
        if (visionDtype != null) {
            policy = policy.withVision(parse("--vision-dtype", visionDtype));
        }
        if (lmDtype != null) {
            policy = policy.withLanguageModel(parse("--lm-dtype", lmDtype));
        }
        return policy;
    }

    /** Whether any of the options was given (rm removes one policy's artifact then, all of them otherwise). */
    boolean given() {
        return spec.commandLine().getParseResult().hasMatchedOption("--dtype") || visionDtype != null || lmDtype != null;
    }

    /** A misspelt type is a usage error (exit 2), like any other bad option value. */
    private DType parse(String option, String value) {
        try {
            return DType.fromUserName(value);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), option + ": " + e.getMessage());
        }
    }
}
