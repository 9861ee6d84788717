package dev.blip2dl4j.finetune.data;

import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Data files are UTF-8, with or without a byte-order mark, in every format; any other encoding is one error
 * naming the file, the line of the first byte that is not UTF-8 and how to convert it, whatever the bad-row policy.
 */
class DataEncodingTest {
    private static final byte[] BOM = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};

    @TempDir
    Path dir;

    private String jsonl() throws IOException {
        Files.write(dir.resolve("a.png"), new byte[]{1});
        return "{\"image\": \"a.png\", \"question\": \"What is it?\", \"answer\": \"a cat\"}\n"
                + "{\"image\": \"a.png\", \"question\": \"Où est le café?\", \"answer\": \"à côté\"}\n";
    }

    private String lavis() throws IOException {
        Files.write(dir.resolve("a.png"), new byte[]{1});
        return "[\n{\"image\": \"a.png\", \"question\": \"What is it?\", \"answer\": [\"cat\"]},\n"
                + "{\"image\": \"a.png\", \"question\": \"Où est le café?\", \"answer\": [\"à côté\"]}\n]\n";
    }

    private Path write(String name, byte[]... parts) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            bytes.write(p);
        }
        return Files.write(dir.resolve(name), bytes.toByteArray());
    }

    @Test
    void aByteOrderMarkIsAcceptedInEveryFormat() throws IOException {
        for (String text : new String[]{jsonl(), lavis()}) {
            Path file = write("bom.json", BOM, text.getBytes(StandardCharsets.UTF_8));
            VqaDataset read = VqaDataset.read(VqaSource.of(file), BadRowPolicy.FAIL);
            assertEquals(2, read.examples().size());
            assertEquals("Où est le café?", read.examples().get(1).question());
        }
        Path questions = write("q.json", BOM, """
                {"data_subtype": "val2014", "questions": [{"image_id": 1, "question": "Où?", "question_id": 10}]}
                """.getBytes(StandardCharsets.UTF_8));
        Path annotations = write("a.json", BOM, """
                {"annotations": [{"question_id": 10, "multiple_choice_answer": "là", "answers": [{"answer": "là"}]}]}
                """.getBytes(StandardCharsets.UTF_8));
        Files.write(dir.resolve("COCO_val2014_000000000001.jpg"), new byte[]{1});
        VqaDataset read = VqaDataset.read(new VqaSource(questions, annotations, dir), BadRowPolicy.FAIL);
        assertEquals("là", read.examples().get(0).answer());
    }

    @Test
    void latin1AndWindows1252NameTheLineAndHowToConvert() throws IOException {
        for (String charset : new String[]{"ISO-8859-1", "windows-1252"}) {
            for (String text : new String[]{jsonl(), lavis()}) {
                Path file = write("latin.jsonl", text.getBytes(Charset.forName(charset)));
                int first = text.chars().filter(c -> c > 127).findFirst().orElseThrow();
                int line = text.substring(0, text.indexOf(first)).split("\n", -1).length;
                for (BadRowPolicy policy : BadRowPolicy.values()) {
                    String message = refused(file, policy);
                    assertTrue(message.startsWith(file + ": line " + line + ": not UTF-8 (byte 0x"
                            + Integer.toHexString(first).toUpperCase()), message);
                    assertTrue(message.contains("iconv -f LATIN1 -t UTF-8 " + file), message);
                }
            }
        }
    }

    @Test
    void utf16WithOrWithoutItsMarkIsNamed() throws IOException {
        for (Charset charset : new Charset[]{StandardCharsets.UTF_16, StandardCharsets.UTF_16LE, StandardCharsets.UTF_16BE}) {
            Path file = write("utf16.jsonl", jsonl().getBytes(charset));
            String message = refused(file, BadRowPolicy.SKIP);
            assertTrue(message.startsWith(file + ": line 1: not UTF-8 ("), message);
            assertTrue(message.contains("UTF-16") && message.contains("iconv -f UTF-16 -t UTF-8"), message);
        }
    }

    @Test
    void invalidUtf8NamesItsLineWhereverItIs() throws IOException {
        String text = jsonl();
        byte[] good = text.getBytes(StandardCharsets.UTF_8);
        // a lone continuation byte on line 2, a sequence cut short by the end of the file on line 3
        Path stray = write("stray.jsonl", text.substring(0, text.indexOf('\n') + 1).getBytes(StandardCharsets.UTF_8),
                new byte[]{'{', (byte) 0x80, '}', '\n'});
        assertTrue(refused(stray, BadRowPolicy.FAIL).startsWith(stray + ": line 2: not UTF-8 (byte 0x80"));
        Path cut = write("cut.jsonl", good, new byte[]{'"', (byte) 0xE2, (byte) 0x82});
        assertTrue(refused(cut, BadRowPolicy.FAIL).startsWith(cut + ": line 3: not UTF-8 (byte 0xE2"));
        // past the reader's first 64 KiB: the line is still counted
        StringBuilder many = new StringBuilder();
        while (many.length() < 200_000) {
            many.append(text);
        }
        int lines = (int) many.chars().filter(c -> c == '\n').count();
        Path far = write("far.jsonl", many.toString().getBytes(StandardCharsets.UTF_8), new byte[]{(byte) 0xFF, '\n'});
        assertTrue(refused(far, BadRowPolicy.FAIL).startsWith(far + ": line " + (lines + 1) + ": not UTF-8 (byte 0xFF"));
    }

    private static String refused(Path file, BadRowPolicy policy) {
        String message = assertThrows(BadInputException.class, () -> VqaDataset.read(VqaSource.of(file), policy))
                .getMessage();
        assertFalse(message.contains("Input length"), message);
        return message;
    }
}
