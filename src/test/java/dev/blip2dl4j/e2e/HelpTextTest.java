package dev.blip2dl4j.e2e;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each command offers the options that do something on it, described as they behave there. */
class HelpTextTest {
    @Test
    void finetuneSaysItsModelIsANameOrAnArtifact() {
        CliRun help = CliRun.of("finetune", "--help");
        assertEquals(0, help.exitCode(), help.toString());
        String text = help.out().replaceAll("\\s+", " ");
        String model = text.substring(text.indexOf("-m, --model=MODEL"));
        assertTrue(model.contains("pulled on first use) or a .b2z artifact. A checkpoint is converted first"), help.out());
        assertFalse(help.out().contains("checkpoint folder") || help.out().contains("--lavis-type"), help.out());
        assertTrue(help.out().contains("--resident"), "validation generates answers");
    }

    @Test
    void residentIsOfferedWhereTextIsGeneratedOnly() {
        for (String command : new String[]{"caption", "vqa", "eval", "verify"}) {
            assertTrue(CliRun.of(command, "--help").out().contains("--resident"), command);
        }
        CliRun match = CliRun.of("match", "--help");
        assertFalse(match.out().contains("--resident"), match.out());
        CliRun used = CliRun.of("match", "--model", "m.b2z", "--text", "a dog", "--resident", "x.png");
        assertEquals(2, used.exitCode(), used.toString());
        assertTrue(used.err().contains("Unknown option: '--resident'"), used.toString());
    }
}
