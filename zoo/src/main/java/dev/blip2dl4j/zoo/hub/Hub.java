package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.convert.Converter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Pretrained models by name: a pull fetches the publisher's files into the cache, checks each against the
 * catalogue, converts them into one artifact and deletes them; afterwards the artifact is used offline.
 *
 * <pre>{@code
 * Hub hub = Hub.fromEnvironment();                       // BLIP2_HOME, HF_ENDPOINT, HF_TOKEN, ...
 * Path artifact = hub.pull("blip2-opt-2.7b");            // downloads once; then returns the cached file
 * Path int8 = hub.pull("blip2-opt-6.7b", StoragePolicy.of(DType.I8), PullListener.LOG);
 * }</pre>
 *
 * A model is cached once per storage policy ({@link ModelCache#artifact(CatalogueEntry, StoragePolicy)}): each
 * is converted straight from the publisher's files, streaming, never through another type's artifact.
 *
 * A pull holds the entry's lock for its whole run, so two processes pulling one model end with one good
 * artifact: the second waits, then finds it cached. A pull that dies leaves its part files, and the next
 * pull resumes them; one killed while converting leaves a partial artifact, which the next pull (or a
 * remove) deletes. A file left in the download folder is used again only if the catalogue's size and
 * SHA-256 vouch for it, or (where the catalogue has neither) the server confirms its length.
 */
public final class Hub {
    private final Catalogue catalogue;
    private final HubSettings settings;
    private final ModelCache cache;

    public Hub(Catalogue catalogue, HubSettings settings) {
        this.catalogue = catalogue;
        this.settings = settings;
        this.cache = new ModelCache(settings.cacheDir());
    }

    /** The settings of {@link HubSettings#fromEnvironment()}, with the catalogue {@code BLIP2_CATALOGUE} names or the built-in one. */
    public static Hub fromEnvironment() {
        return new Hub(Catalogue.fromEnvironment(), HubSettings.fromEnvironment());
    }

    public Catalogue catalogue() {
        return catalogue;
    }

    public HubSettings settings() {
        return settings;
    }

    public ModelCache cache() {
        return cache;
    }

    /** As {@link #pull(String, PullListener)}, logging what it does. */
    public Path pull(String name) {
        return pull(name, PullListener.LOG);
    }

    /** The model's float32 artifact, from the cache, or fetched, checked and converted into it first. */
    public Path pull(String name, PullListener listener) {
        return pull(name, StoragePolicy.FLOAT32, listener);
    }

    /**
     * The model's artifact with its weights stored under {@code storage}, from the cache, or fetched, checked and
     * converted into that policy's types first.
     */
    public Path pull(String name, StoragePolicy storage, PullListener listener) {
        CatalogueEntry entry = catalogue.require(name);
        Path artifact = cache.artifact(entry, storage);
        if (Files.isRegularFile(artifact)) {
            return artifact;
        }
        try (CacheLock lock = cache.lock(entry, listener::message)) {
            if (Files.isRegularFile(artifact)) {
                listener.message(name + " was pulled meanwhile by another process");
                return artifact;
            }
            // the artifact's place is checked (and a killed conversion's partial deleted) before any download
            OutputFile.check(artifact, List.of(), false);
            List<Path> sources = fetch(entry, listener);
            listener.message("converting " + name + " into " + artifact + " (" + storage.describe() + ")");
            try {
                Converter.convert(sources, artifact, entry.converterOptions().withStorage(storage), listener.conversion());
            } catch (BadInputException e) {
                throw new DownloadException("the files downloaded for " + name + " cannot be converted: " + e.getMessage()
                        + ". They are kept in " + cache.downloads(entry) + "; `blip2 rm " + name + "` deletes them, "
                        + "and the next pull downloads them afresh.", e);
            }
            if (!settings.keepSource()) {
                cache.deleteDownloads(entry);
            }
            return artifact;
        }
    }

    /**
     * Deletes the model's artifacts (in every storage policy), downloads and what killed conversions left of them;
     * false if there was nothing to delete.
     */
    public boolean remove(String name, Consumer<String> onWait) {
        CatalogueEntry entry = catalogue.require(name);
        try (CacheLock lock = cache.lock(entry, onWait)) {
            boolean present = Files.exists(cache.downloads(entry));
            for (Path artifact : cache.artifactsAndPartials(entry).values()) {
                present |= deleteArtifact(artifact);
            }
            cache.deleteDownloads(entry);
            return present;
        }
    }

    /**
     * Deletes the model's artifact stored under {@code storage} and what a killed conversion left of it, keeping
     * the other policies' artifacts and the downloads; false if there was nothing to delete.
     */
    public boolean remove(String name, StoragePolicy storage, Consumer<String> onWait) {
        CatalogueEntry entry = catalogue.require(name);
        try (CacheLock lock = cache.lock(entry, onWait)) {
            return deleteArtifact(cache.artifact(entry, storage));
        }
    }

    /** Deletes an artifact and its abandoned partials; whether there was any. */
    private static boolean deleteArtifact(Path artifact) {
        try {
            return OutputFile.deleteAbandoned(artifact) > 0 | Files.deleteIfExists(artifact);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + artifact, e);
        }
    }

    /**
     * Every file of the entry in the download folder, checked: those already there and matching are kept, the
     * others downloaded (or, offline, listed as missing). Returns the converter's inputs.
     */
    private List<Path> fetch(CatalogueEntry entry, PullListener listener) {
        Downloader downloader = new Downloader(settings.policy(), settings.token(), settings.endpoint());
        List<String> missing = new ArrayList<>();
        List<Path> inputs = new ArrayList<>();
        for (RemoteSource source : entry.sources()) {
            if (!source.isCompanionConfig()) {
                inputs.add(cache.source(entry, source));
            }
            for (RemoteFile file : source.files()) {
                Path target = cache.file(entry, source, file);
                if (Files.isRegularFile(target)) {
                    Optional<String> problem = Downloader.mismatch(target, file);
                    if (problem.isPresent()) {
                        listener.message(target + " is not the expected file (" + problem.get() + "): deleting it");
                        delete(target);
                    } else if (file.size() == null && file.sha256() == null && !settings.offline()) {
                        // nothing in the catalogue vouches for it: resumed as a part, the server confirms its length
                        // (one request) or sends what is missing, or all of it
                        move(target, Downloader.partOf(target));
                    } else {
                        continue;
                    }
                }
                if (settings.offline()) {
                    if (!file.optional()) {
                        missing.add(describeMissing(target, file));
                    }
                    continue;
                }
                createParent(target);
                downloader.fetch(source.uri(file, settings.endpoint(), settings.filesEndpoint()), target, file, listener);
            }
        }
        if (!missing.isEmpty()) {
            throw new DownloadException(entry.name() + " is not in the cache (" + cache.artifact(entry) + ") and we are "
                    + "offline, so it cannot be downloaded. Missing: " + String.join("; ", missing) + ". Pull it where "
                    + "there is a network and copy " + cache.root() + " here; or put the files in "
                    + cache.downloads(entry) + " (a repository's files in its folder), and an offline pull converts "
                    + "them; or convert files you have with `blip2 convert` and give --model the artifact's path.");
        }
        return inputs;
    }

    private static String describeMissing(Path target, RemoteFile file) {
        List<String> details = new ArrayList<>();
        if (file.displaySize() > 0) {
            details.add(megabytes(file.displaySize()));
        }
        Path part = Downloader.partOf(target);
        if (Files.isRegularFile(part)) {
            details.add(megabytes(ModelCache.sizeOf(part)) + " of it in " + part.getFileName());
        }
        return target + (details.isEmpty() ? "" : " (" + String.join(", ", details) + ")");
    }

    private static String megabytes(long bytes) {
        return Math.max(1, Math.round(bytes / 1e6)) + " MB";
    }

    private static void createParent(Path target) {
        try {
            Files.createDirectories(target.getParent());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + target.getParent(), e);
        }
    }

    private static void move(Path from, Path to) {
        try {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot move " + from + " to " + to, e);
        }
    }

    private static void delete(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + file, e);
        }
    }
}
