package dev.blip2dl4j.cli;

import dev.blip2dl4j.BadInputException;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileSystems;
import java.nio.file.FileVisitOption;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/** The images a command works on: files, folders (every image file in them) and glob patterns. */
public final class ImageArguments {
    /** Files and folders a glob may look at: a pattern that needs more names too broad a folder. */
    static final int MAX_VISITED = 100_000;
    private static final List<String> IMAGE_SUFFIXES = List.of(".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff");

    @Parameters(paramLabel = "IMAGE", arity = "1..*",
            description = "Image files, folders of images, or glob patterns such as 'photos/*.jpg' (quoted).")
    List<String> images;

    @Option(names = "--no-exif", description = "Do not turn images as their EXIF orientation says (transformers' load_image does).")
    boolean noExif;

    @Option(names = "--max-pixels", paramLabel = "N", defaultValue = "89478485",
            description = "Refuse larger images before decoding them (default: ${DEFAULT-VALUE}, Pillow's limit).")
    long maxPixels;

    /** Every image named, in order; a name that matches nothing is an error. */
    List<Path> files() {
        if (maxPixels < 1) {
            throw new BadInputException("--max-pixels must be at least 1, not " + maxPixels);
        }
        return expand(images);
    }

    /** The image files that {@code names} (files, folders, glob patterns) name, in order; none is an error. */
    public static List<Path> expand(List<String> images) {
        List<Path> files = new ArrayList<>();
        for (String name : images) {
            Path path = Path.of(name);
            if (Files.isDirectory(path)) {
                try (Stream<Path> listing = Files.list(path)) {
                    listing.filter(ImageArguments::looksLikeImage).sorted().forEach(files::add);
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot list " + path, e);
                }
            } else if (name.contains("*") || name.contains("?") || name.contains("[")) {
                files.addAll(glob(name));
            } else {
                files.add(path);
            }
        }
        if (files.isEmpty()) {
            throw new BadInputException("no images found in " + String.join(", ", images));
        }
        return files;
    }

    private static List<Path> glob(String pattern) {
        return glob(pattern, MAX_VISITED);
    }

    /**
     * The regular files matching {@code pattern}, walking only as deep as it can match ({@code /*.png} looks
     * at the root's entries, not into /proc; only {@code **} goes all the way down) and at most
     * {@code maxVisited} entries; folders that cannot be read are passed over.
     */
    static List<Path> glob(String pattern, int maxVisited) {
        int slash = pattern.lastIndexOf('/', firstWildcard(pattern));
        Path base = slash < 0 ? Path.of(".") : Path.of(pattern.substring(0, slash + 1));
        String rest = pattern.substring(slash + 1);
        int depth = rest.contains("**") ? Integer.MAX_VALUE : rest.split("/", -1).length;
        PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + pattern);
        List<Path> matched = new ArrayList<>();
        try {
            Files.walkFileTree(base, EnumSet.noneOf(FileVisitOption.class), depth, new SimpleFileVisitor<>() {
                private int visited;

                @Override
                public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attributes) {
                    count();
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) {
                    count();
                    if (attributes.isRegularFile() && matcher.matches(slash < 0 ? base.relativize(file) : file)) {
                        matched.add(file);
                    }
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path file, IOException e) {
                    return FileVisitResult.CONTINUE;
                }

                private void count() {
                    if (++visited > maxVisited) {
                        throw new BadInputException("the pattern " + pattern + " has more than " + maxVisited
                                + " files and folders to look at under " + base + ": name a narrower folder");
                    }
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot search " + base, e);
        }
        if (matched.isEmpty()) {
            throw new BadInputException("no file matches " + pattern);
        }
        return matched.stream().sorted().toList();
    }

    private static int firstWildcard(String pattern) {
        for (int i = 0; i < pattern.length(); i++) {
            if ("*?[".indexOf(pattern.charAt(i)) >= 0) {
                return i;
            }
        }
        return pattern.length();
    }

    private static boolean looksLikeImage(Path p) {
        String name = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return Files.isRegularFile(p) && IMAGE_SUFFIXES.stream().anyMatch(name::endsWith);
    }
}
