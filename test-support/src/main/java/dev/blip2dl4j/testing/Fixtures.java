package dev.blip2dl4j.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the reference fixtures are: the repository's fixtures/ folder. Surefire names it; a run from an IDE finds it
 * in the working folder or above it (a module folder, or src/test for the end-to-end tests).
 */
public final class Fixtures {
    private Fixtures() {
    }

    public static Path root() {
        String configured = System.getProperty("blip2.fixtures");
        Path root = configured != null ? Path.of(configured) : above(Path.of("").toAbsolutePath());
        if (!Files.isDirectory(root)) {
            throw new IllegalStateException("fixtures not found at " + root.toAbsolutePath());
        }
        return root;
    }

    /** One tiny fixture model's folder: {@code opt}, {@code t5} or {@code itm}. */
    public static Path model(String name) {
        return root().resolve("blip2-tiny-" + name);
    }

    private static Path above(Path folder) {
        for (Path dir = folder; dir != null; dir = dir.getParent()) {
            if (Files.isDirectory(dir.resolve("fixtures"))) {
                return dir.resolve("fixtures");
            }
        }
        return folder.resolve("fixtures");
    }
}
