package dev.blip2dl4j.cli;

import dev.blip2dl4j.Version;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.hub.DownloadException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.FileDescriptor;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The {@code blip2} command. Exit codes ({@link Blip2Exit}): 0 success, 1 internal error, 2 bad usage,
 * 3 bad input (a file we cannot use, an output we cannot write, a model too large for the memory),
 * 4 verification failed, 5 a model could not be downloaded. Errors are one readable paragraph;
 * {@code --verbose} adds the stack trace.
 */
@Command(name = "blip2", mixinStandardHelpOptions = true, version = Version.TEXT,
        description = "BLIP-2 on Deeplearning4j: caption images, answer questions about them, match them with texts; pull pretrained models by name; convert, inspect and verify models; fine-tune them on your own VQA data.",
        subcommands = {ConvertCommand.class, InspectCommand.class, CaptionCommand.class, VqaCommand.class, MatchCommand.class, VerifyCommand.class, BenchCommand.class,
                ModelsCommand.class, PullCommand.class, RmCommand.class, RandomCheckpointCommand.class, FinetuneCommand.class, EvalCommand.class, PlotCommand.class,
                CommandLine.HelpCommand.class})
public final class Blip2Command {
    /** Shared by every command: how much to say when something goes wrong. */
    public static final class Verbosity {
        @Option(names = "--verbose", description = "Show stack traces with errors.")
        boolean verbose;
    }

    public static void main(String[] args) {
        main(new Blip2Command(), args);
    }

    /**
     * Runs {@code command}, a picocli command of a module above this one ({@code blip2 spark}), as blip2 runs its
     * own: the same console, exit codes ({@link Blip2Exit}) and error messages; exits the JVM.
     */
    public static void main(Object command, String[] args) {
        System.setOut(Utf8Console.stream(FileDescriptor.out));
        System.setErr(Utf8Console.stream(FileDescriptor.err));
        PrintWriter out = Utf8Console.writer(System.out);
        PrintWriter err = Utf8Console.writer(System.err);
        int code = run(command, out, err, Utf8Console.arguments(args));
        out.flush();
        err.flush();
        System.exit(code);
    }

    /** Runs the command line and returns its exit code, for tests and embedding. */
    public static int run(String... args) {
        return commandLine(new Blip2Command()).execute(args);
    }

    /** As {@link #run(String...)}, printing to the given writers. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        return run(new Blip2Command(), out, err, args);
    }

    /** As {@link #run(PrintWriter, PrintWriter, String...)}, for {@code command} (see {@link #main(Object, String[])}). */
    public static int run(Object command, PrintWriter out, PrintWriter err, String... args) {
        CommandLine cli = commandLine(command);
        cli.setOut(out);
        cli.setErr(err);
        return cli.execute(args);
    }

    private static CommandLine commandLine(Object command) {
        // numbers print the same under every locale (3.74B, never 3,74B): scripts read what we print
        Locale.setDefault(Locale.Category.FORMAT, Locale.ROOT);
        CommandLine cli = new CommandLine(command);
        cli.registerConverter(Path.class, Blip2Command::path);
        cli.setExecutionExceptionHandler(Blip2Command::handle);
        CommandLine.IParameterExceptionHandler usage = cli.getParameterExceptionHandler();
        cli.setParameterExceptionHandler((e, args) -> {
            if (e.getCause() instanceof BadInputException bad) {
                e.getCommandLine().getErr().println("error: " + bad.getMessage());
                return Blip2Exit.BAD_INPUT;
            }
            return usage.handleParseException(e, args);
        });
        cli.setCaseInsensitiveEnumValuesAllowed(true);   // --format vqav2, --on-bad-row skip
        return cli;
    }

    private static Path path(String name) {
        try {
            return Path.of(name);
        } catch (InvalidPathException e) {
            throw Utf8Console.unencodableName(name, e);
        }
    }

    private static int handle(Exception e, CommandLine cli, CommandLine.ParseResult parsed) {
        PrintWriter err = cli.getErr();
        boolean verbose = parsed.subcommands().stream().anyMatch(p -> p.hasMatchedOption("--verbose"))
                || parsed.hasMatchedOption("--verbose");
        int code;
        if (e instanceof BadInputException) {
            err.println("error: " + e.getMessage());
            code = Blip2Exit.BAD_INPUT;
        } else if (e instanceof InvalidPathException invalid) {
            err.println("error: " + Utf8Console.unencodableName(invalid.getInput(), invalid).getMessage());
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
