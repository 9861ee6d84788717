package dev.blip2dl4j.e2e;

import dev.blip2dl4j.cli.Blip2Command;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One run of the blip2 command line in a JVM of its own, started as a shell would (no surefire settings,
 * the locale as given), with what it printed decoded as the UTF-8 it must be.
 */
record ChildJvm(int exitCode, String out, String err) {

    /** @param dir where the output is collected; env replaces the locale variables (LANG, LC_*) */
    static ChildJvm run(Path dir, Map<String, String> env, List<String> jvmOptions, String... args)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path")));
        command.addAll(jvmOptions);
        command.add(Blip2Command.class.getName());
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(dir.resolve("out").toFile())
                .redirectError(dir.resolve("err").toFile());
        builder.environment().keySet().removeIf(k -> k.startsWith("LC_") || k.equals("LANG"));
        builder.environment().putAll(env);
        Process process = builder.start();
        assertTrue(process.waitFor(120, TimeUnit.SECONDS), "the run ends");
        return new ChildJvm(process.exitValue(), Files.readString(dir.resolve("out"), StandardCharsets.UTF_8),
                Files.readString(dir.resolve("err"), StandardCharsets.UTF_8));
    }
}
