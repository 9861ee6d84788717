package dev.blip2dl4j.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.cli.Blip2Command;
import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The command line under locales that are not UTF-8 English, in a JVM of its own started as a shell would
 * (the locale sets what the JVM decodes arguments and encodes file names with, once, at its start): text
 * arrives and leaves as UTF-8, and numbers print the same everywhere.
 */
class LocaleTest {
    private static final String MERLION = Fixtures.root().resolve("common/merlion.png").toString();
    private static final String OPT = Fixtures.root().resolve("blip2-tiny-opt").toString();

    @TempDir
    Path dir;

    /** What a run printed, decoded as the UTF-8 it must be. */
    record Run(int exitCode, String out, String err) {
    }

    private Run run(Map<String, String> env, List<String> jvmOptions, String... args) throws IOException, InterruptedException {
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
        return new Run(process.exitValue(), Files.readString(dir.resolve("out"), StandardCharsets.UTF_8),
                Files.readString(dir.resolve("err"), StandardCharsets.UTF_8));
    }

    private Run underLangC(String... args) throws IOException, InterruptedException {
        return run(Map.of("LANG", "C", "LC_ALL", "C"), List.of("-Dfile.encoding=ANSI_X3.4-1968",
                "-Dsun.jnu.encoding=ANSI_X3.4-1968"), args);
    }

    @Test
    void aNonAsciiQuestionUnderLangCReachesThePromptAndTheOutputIntact() throws Exception {
        String question = "café 日本 — ¿qué? 🙂";
        Run run = underLangC("vqa", "--model", OPT, "-q", question, MERLION, "--max-new-tokens", "2", "--json");

        assertEquals(0, run.exitCode(), run.err());
        JsonNode result = new ObjectMapper().readTree(run.out()).get(0);
        assertEquals("Question: " + question + " Answer:", result.get("prompt").asText());
    }

    @Test
    void aNonAsciiFileNameTheLocaleCannotEncodeIsOneClearError() throws Exception {
        Path image = Files.copy(Path.of(MERLION), dir.resolve("café 日本.png"));
        for (List<String> args : List.of(List.of("caption", "--model", OPT, image.toString()),
                List.of("caption", "--model", dir.resolve("modèle.b2z").toString(), MERLION))) {
            Run run = underLangC(args.toArray(String[]::new));
            String name = args.get(args.get(2).equals(OPT) ? 3 : 2);

            assertEquals(3, run.exitCode(), run.err());
            assertTrue(run.err().startsWith("error: '" + name + "' cannot be used as a file name here")
                    && run.err().contains("LANG=C.UTF-8"), run.err());
            assertFalse(run.err().contains("internal error") || run.err().contains("\tat "), run.err());
        }
    }

    @Test
    void numbersPrintTheSameUnderAGermanLocale() throws Exception {
        Run table = run(Map.of("LANG", "de_DE.UTF-8"), List.of("-Duser.language=de", "-Duser.country=DE"), "models");
        assertEquals(0, table.exitCode(), table.err());
        assertTrue(table.out().contains(" 3.74B ") && table.out().contains("15.0 GB"), table.out());
        assertFalse(table.out().matches("(?s).*\\d,\\d.*"), "no decimal comma:\n" + table.out());

        Run json = run(Map.of("LANG", "de_DE.UTF-8"), List.of("-Duser.language=de", "-Duser.country=DE"),
                "models", "--json", "blip2-opt-2.7b");
        assertEquals(0, json.exitCode(), json.err());
        assertTrue(new ObjectMapper().readTree(json.out()).get(0).get("parameterCount").isIntegralNumber(), json.out());
    }
}
