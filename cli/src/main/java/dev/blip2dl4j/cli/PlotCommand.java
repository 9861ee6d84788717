package dev.blip2dl4j.cli;

import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.finetune.MetricsPlot;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "plot", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Plot a blip2 finetune metrics log as a PNG: training and validation loss over the steps, "
                + "and validation VQA accuracy and exact match (what finetune writes at the end; this draws it "
                + "at any time, from a run still going too).",
                "",
                "Example: blip2 plot tuned.metrics.jsonl -o progress.png"})
final class PlotCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "METRICS", description = "The metrics log (JSON lines).")
    Path metrics;

    @Option(names = {"-o", "--output"}, paramLabel = "PNG",
            description = "The plot (default: METRICS with .png); an existing file only with --overwrite.")
    Path output;

    @Option(names = "--overwrite", description = "Replace PNG if it exists (redrawing a plot as a run goes on).")
    boolean overwrite;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        String name = metrics.getFileName().toString();
        Path png = output != null ? output
                : metrics.resolveSibling((name.endsWith(".jsonl") ? name.substring(0, name.length() - 6) : name) + ".png");
        MetricsPlot.write(metrics, OutputFile.check(png, List.of(metrics), overwrite));
        spec.commandLine().getOut().println("wrote " + png);
        spec.commandLine().getOut().flush();
        return Blip2Exit.OK;
    }
}
