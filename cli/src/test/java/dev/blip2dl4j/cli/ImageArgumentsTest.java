package dev.blip2dl4j.cli;

import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Glob patterns walk only as deep as they can match, and only so far. */
class ImageArgumentsTest {
    @TempDir
    Path dir;

    @Test
    void aPatternAtTheRootLooksAtTheRootsEntriesOnly() {
        // the root has some tens of entries; walking into /proc or /sys would pass 200 at once
        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            try {
                ImageArguments.glob("/*.png", 200).forEach(p -> assertEquals(1, p.getNameCount(), p.toString()));
            } catch (BadInputException e) {
                assertEquals("no file matches /*.png", e.getMessage());
            }
        });
    }

    @Test
    void eachPatternWalksTheDepthItCanMatch() throws IOException {
        Path top = Files.createFile(dir.resolve("a.png"));
        Path deep = Files.createFile(Files.createDirectories(dir.resolve("sub/deeper")).resolve("c.png"));
        Path middle = Files.createFile(dir.resolve("sub/b.png"));
        assertEquals(List.of(top), ImageArguments.glob(dir + "/*.png", 100));
        assertEquals(List.of(middle), ImageArguments.glob(dir + "/*/*.png", 100));
        assertEquals(List.of(top, middle, deep), ImageArguments.glob(dir + "/**.png", 100), "** goes all the way down");
    }

    @Test
    void aPatternWithTooManyEntriesToLookAtIsRefused() throws IOException {
        for (int i = 0; i < 30; i++) {
            Files.createFile(dir.resolve("img" + i + ".png"));
        }
        BadInputException e = assertThrows(BadInputException.class, () -> ImageArguments.glob(dir + "/*.png", 20));
        assertTrue(e.getMessage().contains("more than 20 files and folders to look at under " + dir), e.getMessage());
        assertEquals(30, ImageArguments.glob(dir + "/*.png", 100).size());
    }

    @Test
    void onlyRegularFilesMatch() throws Exception {
        Path image = Files.createFile(dir.resolve("a.png"));
        assertEquals(0, new ProcessBuilder("mkfifo", dir.resolve("pipe.png").toString()).start().waitFor());
        Files.createDirectory(dir.resolve("folder.png"));
        assertEquals(List.of(image), ImageArguments.glob(dir + "/*.png", 100));
    }
}
