package dev.blip2dl4j.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The command line under locales that are not UTF-8 English, in a JVM of its own (the locale sets what the
 * JVM decodes arguments and encodes file names with, once, at its start): text arrives and leaves as UTF-8,
 * and numbers print the same everywhere. And what a plain run prints: the result, and no log lines.
 */
class LocaleTest {
    private static final String MERLION = Fixtures.root().resolve("common/merlion.png").toString();
    private static final String OPT = Fixtures.root().resolve("blip2-tiny-opt").toString();

    @TempDir
    Path dir;

    private ChildJvm run(Map<String, String> env, List<String> jvmOptions, String... args) throws Exception {
        return ChildJvm.run(dir, env, jvmOptions, args);
    }

    private ChildJvm underLangC(String... args) throws Exception {
        return run(Map.of("LANG", "C", "LC_ALL", "C"), List.of("-Dfile.encoding=ANSI_X3.4-1968",
                "-Dsun.jnu.encoding=ANSI_X3.4-1968"), args);
    }

    @Test
    void aNonAsciiQuestionUnderLangCReachesThePromptAndTheOutputIntact() throws Exception {
        String question = "café 日本 — ¿qué? 🙂";
        ChildJvm run = underLangC("vqa", "--model", OPT, "-q", question, MERLION, "--max-new-tokens", "2", "--json");

        assertEquals(0, run.exitCode(), run.err());
        JsonNode result = new ObjectMapper().readTree(run.out()).get(0);
        assertEquals("Question: " + question + " Answer:", result.get("prompt").asText());
    }

    @Test
    void aNonAsciiFileNameTheLocaleCannotEncodeIsOneClearError() throws Exception {
        Path image = Files.copy(Path.of(MERLION), dir.resolve("café 日本.png"));
        for (List<String> args : List.of(List.of("caption", "--model", OPT, image.toString()),
                List.of("caption", "--model", dir.resolve("modèle.b2z").toString(), MERLION))) {
            ChildJvm run = underLangC(args.toArray(String[]::new));
            String name = args.get(args.get(2).equals(OPT) ? 3 : 2);

            assertEquals(3, run.exitCode(), run.err());
            assertTrue(run.err().startsWith("error: '" + name + "' cannot be used as a file name here")
                    && run.err().contains("LANG=C.UTF-8"), run.err());
            assertFalse(run.err().contains("internal error") || run.err().contains("\tat "), run.err());
        }
    }

    @Test
    void numbersPrintTheSameUnderAGermanLocale() throws Exception {
        ChildJvm table = run(Map.of("LANG", "de_DE.UTF-8"), List.of("-Duser.language=de", "-Duser.country=DE"), "models");
        assertEquals(0, table.exitCode(), table.err());
        assertTrue(table.out().contains(" 3.74B ") && table.out().contains("15.0 GB"), table.out());
        assertFalse(table.out().matches("(?s).*\\d,\\d.*"), "no decimal comma:\n" + table.out());

        ChildJvm json = run(Map.of("LANG", "de_DE.UTF-8"), List.of("-Duser.language=de", "-Duser.country=DE"),
                "models", "--json", "blip2-opt-2.7b");
        assertEquals(0, json.exitCode(), json.err());
        assertTrue(new ObjectMapper().readTree(json.out()).get(0).get("parameterCount").isIntegralNumber(), json.out());
    }

    @Test
    void aCaptionRunPrintsTheCaptionAndNothingElse() throws Exception {
        ChildJvm run = run(Map.of("LANG", "C.UTF-8"), List.of(), "caption", "--model", OPT, MERLION, "--max-new-tokens", "3");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().startsWith(MERLION + ": ") && run.out().lines().count() == 1, run.out());
        assertEquals("", run.err(), "no SLF4J notice, no ND4J INFO, no DJL warning");
    }
}
