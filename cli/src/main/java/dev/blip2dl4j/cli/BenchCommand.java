package dev.blip2dl4j.cli;

import dev.blip2dl4j.diagnostics.bench.StageBenchmark;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Time BLIP-2's stages on an artifact: one JSON line per stage, named and defined as the "
                + "PyTorch peer's (docs/DESIGN.md \"Benchmarks\"), for ratios measured in the same run "
                + "(bench/graphs.sh). A benchmark, not a test.",
                "Also train_step (not run by default): one stage-two optimizer step, batch 1, 16 tokens, as the peer's.",
                "Also lm_logits_error (not run by default, needs --reference): the language model teacher-forced over "
                        + "32 fixed tokens, its logits against the float32 reference's: relative RMS error, top-1 "
                        + "agreement, max abs diff."})
final class BenchCommand implements Callable<Integer> {
    @Parameters(paramLabel = "ARTIFACT", description = "A .b2z file.")
    Path artifact;

    @Option(names = "--stages", split = ",", defaultValue = "vision,qformer,lm_prefill,lm_decode_per_token,caption_end_to_end,full_forward",
            description = "Which stages (default: ${DEFAULT-VALUE}).")
    Set<String> stages;

    @Option(names = "--repeats", defaultValue = "3", description = "Timed runs per stage (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--warmup", defaultValue = "1", description = "Untimed runs first (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--prompt-tokens", defaultValue = "10", description = "Prompt length (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random image and prompt.")
    long seed;

    @Option(names = "--profile", description = "Then run each stage once more and print where its time goes, op by op (stderr).")
    boolean profile;

    @Option(names = "--graph", description = "Time the SameDiff graphs (vision, qformer, lm_prefill), not the eager "
            + "executions that inference uses: to report both. Decoding is eager only.")
    boolean graph;

    @Option(names = "--resident", description = "Decode and caption with the language model's weights copied into "
            + "memory (as --resident does for caption and vqa), not read through the file mapping.")
    boolean resident;

    @Option(names = "--batch", defaultValue = "1", paramLabel = "N",
            description = "Examples per train_step (the other stages run one; default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--reference", paramLabel = "FP32_ARTIFACT",
            description = "The float32 artifact of the same model that lm_logits_error compares against.")
    Path reference;

    @Option(names = "--dump-logits", paramLabel = "DIR",
            description = "Where lm_logits_error writes its inputs (projected queries, token ids) and both models' "
                    + "logits as .npy, for another implementation to measure on the same inputs.")
    Path dumpLogits;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        StageBenchmark.run(artifact, new StageBenchmark.Options(repeats, warmup, promptTokens, seed, stages, profile,
                graph, resident, batch, reference, dumpLogits), spec.commandLine().getOut());
        return 0;
    }
}
