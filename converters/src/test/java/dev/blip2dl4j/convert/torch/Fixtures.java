package dev.blip2dl4j.convert.torch;

import java.nio.file.Path;

/** The repository's reference fixtures: surefire names the folder; from the module, it is ../fixtures. */
final class Fixtures {
    private Fixtures() {
    }

    static Path path(String relative) {
        String root = System.getProperty("blip2.fixtures");
        return (root != null ? Path.of(root) : Path.of("..", "fixtures")).resolve(relative);
    }
}
