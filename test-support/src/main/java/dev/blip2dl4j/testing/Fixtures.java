package dev.blip2dl4j.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the reference fixtures are: the repository's fixtures/ folder (surefire names it). */
public final class Fixtures {
    private Fixtures() {
    }

    public static Path root() {
        String configured = System.getProperty("blip2.fixtures");
        Path root = configured != null ? Path.of(configured) : Path.of("..", "fixtures");
        if (!Files.isDirectory(root)) {
            throw new IllegalStateException("fixtures not found at " + root.toAbsolutePath());
        }
        return root;
    }

    public static Path model(String name) {
        return root().resolve("blip2-tiny-" + name);
    }
}
