package dev.blip2dl4j.cli;

import dev.blip2dl4j.Version;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.hub.DownloadException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;

/**
 * The {@code blip2} command. Exit codes ({@link Blip2Exit}): 0 success, 1 internal error, 2 bad usage,
 * 3 bad input (a file we cannot use, an output we cannot write, a model too large for the memory),
 * 4 verification failed, 5 a model could not be downloaded. Errors are one readable paragraph;
 * {@code --verbose} adds the stack trace.
 */
@Command(name = "blip2", mixinStandardHelpOptions = true, version = Version.TEXT,
        description = "BLIP-2 on Deeplearning4j: caption images, answer questions about them, match them with texts; pull pretrained models by name; convert, inspect and verify models; fine-tune them on your own VQA data.",
        subcommands = {ConvertCommand.class, InspectCommand.class, CaptionCommand.class, VqaCommand.class, MatchCommand.class, VerifyCommand.class, BenchCommand.class,
                ModelsCommand.class, PullCommand.class, RmCommand.class, FinetuneCommand.class, EvalCommand.class, PlotCommand.class,
                CommandLine.HelpCommand.class})
public final class Blip2Command {
    /** Shared by every command: how much to say when something goes wrong. */
    static final class Verbosity {
        @Option(names = "--verbose", description = "Show stack traces with errors.")
        boolean verbose;
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns its exit code, for tests and embedding. */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    /** As {@link #run(String...)}, printing to the given writers. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cli = commandLine();
        cli.setOut(out);
        cli.setErr(err);
        return cli.execute(args);
    }

    private static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Blip2Command());
        cli.setExecutionExceptionHandler(Blip2Command::handle);
        cli.setCaseInsensitiveEnumValuesAllowed(true);   // --format vqav2, --on-bad-row skip
        return cli;
    }

    private static int handle(Exception e, CommandLine cli, CommandLine.ParseResult parsed) {
        PrintWriter err = cli.getErr();
        boolean verbose = parsed.subcommands().stream().anyMatch(p -> p.hasMatchedOption("--verbose"))
                || parsed.hasMatchedOption("--verbose");
        int code;
        if (e instanceof BadInputException) {
            err.println("error: " + e.getMessage());
            code = Blip2Exit.BAD_INPUT;
        } else if (e instanceof DownloadException) {
            err.println("error: " + e.getMessage());
            code = Blip2Exit.DOWNLOAD_FAILED;
        } else if (e instanceof UncheckedIOException || e instanceof IOException) {
            err.println("error: " + e.getMessage() + (e.getCause() != null ? " (" + e.getCause().getMessage() + ")" : ""));
            code = Blip2Exit.BAD_INPUT;
        } else {
            err.println("internal error: " + e + " (run with --verbose for the stack trace, and please report it)");
            code = Blip2Exit.INTERNAL;
        }
        if (verbose) {
            e.printStackTrace(err);
        }
        err.flush();
        return code;
    }
}
