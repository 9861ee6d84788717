package dev.blip2dl4j.cli;

import dev.blip2dl4j.diagnostics.verify.TrainStepCheck;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.arrays.ReferenceBundle;
import dev.blip2dl4j.diagnostics.verify.Verifier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

@Command(name = "verify", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Recompute a reference bundle's outputs from its raw inputs and compare them, one row per output.",
                "",
                "A bundle is a folder with reference.json and the .npy files it names (the layout of "
                        + "fixtures/blip2-tiny-*; the README says how to dump one from PyTorch). The model is an "
                        + "artifact or an original checkpoint (read in memory, nothing converted). Exit code 0 only "
                        + "if every output is within tolerance, 4 if any is not.",
                "",
                "A bundle with a train_step is also checked for one stage-two training step: the loss, every "
                        + "gradient, AdamW's update and the loss after the step. Gradients and parameters show the "
                        + "worst |diff| / (1 + 100 |ref|) against 1e-5, which is 1e-5 + 1e-3 |ref| per element."})
final class VerifyCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOption model;

    @Mixin
    ResidentOption resident;

    @Option(names = "--reference", required = true, paramLabel = "BUNDLE_DIR", description = "The reference bundle.")
    Path reference;

    @Option(names = "--dump", paramLabel = "OUT_DIR",
            description = "Write every computed output as .npy, under the bundle's file names.")
    Path dump;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Option(names = "--image", paramLabel = "FILE",
            description = "The bundle's image file, when reference.json's image is not beside the bundle.")
    Path image;

    @Override
    public Integer call() {
        ReferenceBundle bundle = ReferenceBundle.open(reference);
        try (Blip2 blip2 = model.load().residentLanguageModel(resident.on)) {
            Verifier.Report report = TrainStepCheck.addTo(Verifier.verify(blip2, bundle, image, dump), blip2.config(),
                    blip2.weights(), bundle);
            print(report, spec.commandLine().getOut());
            return report.passed() ? Blip2Exit.OK : Blip2Exit.VERIFY_FAILED;
        }
    }

    private static void print(Verifier.Report report, PrintWriter out) {
        int width = report.checks().stream().mapToInt(c -> c.name().length()).max().orElse(6);
        out.printf("%-" + width + "s  %-20s  %-12s  %-9s  %s%n", "output", "shape", "max abs diff", "tolerance", "result");
        for (Verifier.Check c : report.checks()) {
            out.printf("%-" + width + "s  %-20s  %-12.3e  %-9s  %s%n", c.name(), Arrays.toString(c.shape()),
                    c.maxAbsDiff(), c.tolerance() == 0 ? "exact" : String.format(c.tolerance() < 1e-3 ? "%.0e" : "%.1e", c.tolerance()),
                    c.passed() ? "PASS" : "FAIL");
        }
        long failed = report.checks().stream().filter(c -> !c.passed()).count();
        out.printf("%d outputs compared, %d failed%n", report.checks().size(), failed);
        if (!report.notChecked().isEmpty()) {
            out.println("not checked: " + String.join("; ", report.notChecked()));
        }
    }
}
