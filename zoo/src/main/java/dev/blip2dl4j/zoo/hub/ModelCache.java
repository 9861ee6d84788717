package dev.blip2dl4j.zoo.hub;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * The folder that holds pulled models: {@code NAME.b2z}, the converted artifact (a model is cached when it
 * is there: conversion renames it into place only when complete); {@code downloads/NAME/}, the publisher's
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

    public Path artifact(CatalogueEntry entry) {
        return root.resolve(entry.name() + ".b2z");
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

    public boolean isCached(CatalogueEntry entry) {
        return Files.isRegularFile(artifact(entry));
    }

    /** Locks one entry against other pulls and removals, here and in other processes. */
    public CacheLock lock(CatalogueEntry entry, Consumer<String> onWait) {
        return CacheLock.acquire(root.resolve(".locks").resolve(entry.name() + ".lock"), onWait);
    }

    /** The bytes of the publisher's files (whole or partial) lying in the entry's download folder. */
    public long downloadedBytes(CatalogueEntry entry) {
        return sizeOf(downloads(entry));
    }

    public long artifactBytes(CatalogueEntry entry) {
        return sizeOf(artifact(entry));
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
