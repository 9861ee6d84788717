package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The folder that holds pulled models: {@code NAME.b2z}, the converted artifact in float32, and {@code
 * NAME@TYPES.b2z}, one per other storage policy it was pulled in ({@code blip2-opt-6.7b@int8.b2z},
 * {@code blip2-opt-6.7b@vision-bfloat16.lm-int8.b2z}; {@code @} is in no model name, so the two never meet).
 * A model is cached in a policy when its file is there: conversion renames it into place only when complete.
 * {@code downloads/NAME/}, the publisher's
 * files while a pull runs (repositories as folders, URL files by name, unfinished files as {@code .part});
 * {@code .locks/NAME.lock}, held by the process pulling or removing NAME.
 */
public final class ModelCache {
    private final Path root;

    public ModelCache(Path root) {
        this.root = root;
    }

    public Path root() {
        return root;
    }

    /** The float32 artifact. */
    public Path artifact(CatalogueEntry entry) {
        return artifact(entry, StoragePolicy.FLOAT32);
    }

    /** The artifact of the model stored under {@code storage}. */
    public Path artifact(CatalogueEntry entry, StoragePolicy storage) {
        String tag = tag(storage);
        return root.resolve(entry.name() + (tag.equals(FLOAT32) ? "" : "@" + tag) + ".b2z");
    }

    private static final String FLOAT32 = DType.F32.userName();
    /** An artifact's file name, or that of its partial: the model's name and the tag of its storage types. */
    private static final Pattern FILE = Pattern.compile("\\.?([a-z0-9][a-z0-9._-]*?)(?:@([a-z0-9.-]+))?\\.b2z(\\.[0-9a-z]+\\.partial)?");

    /**
     * A storage policy's name in the cache: the type of both parts' products ({@code int8}), or each part's
     * ({@code vision-bfloat16.lm-int8}), with int8's block size where it is not a scale per row. Policies that
     * store every tensor alike share a name.
     */
    public static String tag(StoragePolicy storage) {
        String types = storage.vision() == storage.languageModel() ? storage.vision().userName()
                : "vision-" + storage.vision().userName() + ".lm-" + storage.languageModel().userName();
        boolean int8 = storage.vision() == DType.I8 || storage.languageModel() == DType.I8;
        return types + (int8 && storage.blockSize() > 0 ? "-block" + storage.blockSize() : "");
    }

    /** Every artifact of the model in the cache, by the tag of its storage ({@link #tag}): float32 first. */
    public Map<String, Path> artifacts(CatalogueEntry entry) {
        Map<String, Path> found = new TreeMap<>(Comparator.comparing((String tag) -> !tag.equals(FLOAT32))
                .thenComparing(Comparator.naturalOrder()));
        forEachFile(entry, (tag, file, partial) -> {
            if (!partial && Files.isRegularFile(file)) {
                found.put(tag, file);
            }
        });
        return found;
    }

    /** The artifacts of the model there are, and those a killed conversion left a partial of. */
    Map<String, Path> artifactsAndPartials(CatalogueEntry entry) {
        Map<String, Path> found = new TreeMap<>();
        forEachFile(entry, (tag, file, partial) -> found.put(tag, partial ? file.resolveSibling(
                file.getFileName().toString().replaceFirst("^\\.(.*\\.b2z)\\.[0-9a-z]+\\.partial$", "$1")) : file));
        return found;
    }

    private interface FileVisitor {
        void visit(String tag, Path file, boolean partial);
    }

    private void forEachFile(CatalogueEntry entry, FileVisitor visitor) {
        if (!Files.isDirectory(root)) {
            return;
        }
        try (Stream<Path> files = Files.list(root)) {
            for (Path file : files.sorted().toList()) {
                String name = file.getFileName().toString();
                Matcher m = FILE.matcher(name);
                boolean partial = name.startsWith(".");
                if (m.matches() && m.group(1).equals(entry.name()) && partial == (m.group(3) != null)) {
                    visitor.visit(m.group(2) == null ? FLOAT32 : m.group(2), file, partial);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list the model cache " + root, e);
        }
    }

    public Path downloads(CatalogueEntry entry) {
        return root.resolve("downloads").resolve(entry.name());
    }

    /** What the converter reads for a source: a repository's folder, or a URL's file. */
    public Path source(CatalogueEntry entry, RemoteSource source) {
        return downloads(entry).resolve(source.localName());
    }

    public Path file(CatalogueEntry entry, RemoteSource source, RemoteFile file) {
        return source.isRepo() ? source(entry, source).resolve(file.path()) : source(entry, source);
    }

    /** Whether the model is cached in any storage policy. */
    public boolean isCached(CatalogueEntry entry) {
        return !artifacts(entry).isEmpty();
    }

    public boolean isCached(CatalogueEntry entry, StoragePolicy storage) {
        return Files.isRegularFile(artifact(entry, storage));
    }

    /** Locks one entry against other pulls and removals, here and in other processes. */
    public CacheLock lock(CatalogueEntry entry, Consumer<String> onWait) {
        return CacheLock.acquire(root.resolve(".locks").resolve(entry.name() + ".lock"), onWait);
    }

    /** The bytes of the publisher's files (whole or partial) lying in the entry's download folder. */
    public long downloadedBytes(CatalogueEntry entry) {
        return sizeOf(downloads(entry));
    }

    /** The bytes of the model's artifacts, in every storage policy. */
    public long artifactBytes(CatalogueEntry entry) {
        return artifacts(entry).values().stream().mapToLong(ModelCache::sizeOf).sum();
    }

    public void deleteDownloads(CatalogueEntry entry) {
        deleteTree(downloads(entry));
    }

    static long sizeOf(Path path) {
        if (!Files.exists(path)) {
            return 0;
        }
        try (Stream<Path> files = Files.walk(path)) {
            return files.filter(Files::isRegularFile).mapToLong(p -> {
                try {
                    return Files.size(p);
                } catch (IOException e) {
                    return 0;   // removed while we looked
                }
            }).sum();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void deleteTree(Path path) {
        if (!Files.exists(path)) {
            return;
        }
        try (Stream<Path> files = Files.walk(path)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + path, e);
        }
    }
}
