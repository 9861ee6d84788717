package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.hub.CacheLock;
import dev.blip2dl4j.zoo.hub.HubSettings;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FSDataInputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * The models of this JVM (an executor's, or the driver's in local mode): one loaded {@link Blip2} per
 * {@link ModelReference}, shared by every task that asks for it and closed when the JVM exits. A model serves
 * one thread at a time, so tasks of one executor take turns on it: each batch already runs on all the threads
 * ND4J has (docs/DESIGN.md "Spark").
 *
 * <p>A catalogue name is pulled into the hub cache ({@code BLIP2_HOME}); an artifact on a local file system is
 * mapped where it lies; one on any other Hadoop FileSystem is copied to the hub cache's {@code remote/} folder
 * once, under a lock that executors on the same machine share too (they wait, then map the same file, so the
 * page cache holds its weights once for all of them), and written under a temporary name then moved into place,
 * so that a killed copy is never taken for a whole one.
 */
public final class ExecutorModels {
    private static final Logger LOG = LoggerFactory.getLogger(ExecutorModels.class);
    private static final ConcurrentHashMap<ModelReference, Slot> MODELS = new ConcurrentHashMap<>();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(ExecutorModels::closeAll, "blip2-executor-models-close"));
    }

    private ExecutorModels() {
    }

    /**
     * Runs {@code work} on the model, loading it first if this JVM has not yet; other tasks wait for their turn.
     * A model that cannot be loaded is a {@link BadInputException} for every task that asks (and is tried again
     * by the next one, in case the cause has gone).
     */
    public static <T> T use(ModelReference reference, HadoopSettings hadoop, Function<Blip2, T> work) {
        Slot slot = MODELS.computeIfAbsent(reference, r -> new Slot());
        synchronized (slot) {
            if (slot.model == null) {
                slot.model = load(reference, hadoop.configuration(), HubSettings.fromEnvironment().cacheDir());
            }
            return work.apply(slot.model);
        }
    }

    static Blip2 load(ModelReference reference, Configuration hadoop, Path cache) {
        if (reference.isName()) {
            return reference.dtype() == null ? Blip2.pretrained(reference.location())
                    : Blip2.pretrained(reference.location(), DType.fromUserName(reference.dtype()));
        }
        return Blip2.load(localFile(reference.uri(), hadoop, cache));
    }

    /** The artifact as a local file: where it lies on a local file system, else its copy in {@code cache/remote/}. */
    static Path localFile(URI uri, Configuration hadoop, Path cache) {
        org.apache.hadoop.fs.Path remote = new org.apache.hadoop.fs.Path(uri);
        try {
            FileSystem fs = remote.getFileSystem(hadoop);
            FileStatus status = fs.getFileStatus(remote);
            if (status.isDirectory()) {
                throw new BadInputException("model " + uri + ": is a folder; the executors load a .b2z artifact "
                        + "(`blip2 convert` makes one from a checkpoint folder)");
            }
            if ("file".equals(fs.getScheme())) {
                return Path.of(fs.makeQualified(remote).toUri());
            }
            // the key changes when the file does, so that a replaced artifact is copied again
            String key = sha256(uri + "\n" + status.getLen() + "\n" + status.getModificationTime());
            Path folder = cache.resolve("remote").resolve(key);
            Path local = folder.resolve(remote.getName());
            try (CacheLock lock = CacheLock.acquire(cache.resolve("remote").resolve(key + ".lock"),
                    message -> LOG.info("{}: {}", uri, message))) {
                if (Files.isRegularFile(local) && Files.size(local) == status.getLen()) {
                    return local;
                }
                Files.createDirectories(folder);
                Path part = Files.createTempFile(folder, remote.getName(), ".part");
                try {
                    long started = System.nanoTime();
                    long copied;
                    try (FSDataInputStream in = fs.open(remote); OutputStream out = Files.newOutputStream(part)) {
                        copied = in.transferTo(out);
                    }
                    if (copied != status.getLen()) {
                        throw new IOException("copied " + copied + " bytes of " + status.getLen()
                                + " (the file changed while it was copied?)");
                    }
                    Files.move(part, local, StandardCopyOption.ATOMIC_MOVE);
                    LOG.info("{}: copied to {} ({} bytes, {} ms)", uri, local, copied,
                            (System.nanoTime() - started) / 1_000_000);
                } finally {
                    Files.deleteIfExists(part);
                }
                return local;
            }
        } catch (FileNotFoundException e) {
            throw new BadInputException("model " + uri + ": no such file");
        } catch (IOException e) {
            throw new BadInputException("model " + uri + ": cannot copy it to " + cache.resolve("remote") + ": "
                    + e.getMessage());
        } catch (UncheckedIOException e) {
            throw new BadInputException("model " + uri + ": " + e.getMessage());
        }
    }

    /** Closes every model of this JVM (at exit; tests, between sessions). */
    static void closeAll() {
        for (Slot slot : MODELS.values()) {
            synchronized (slot) {
                if (slot.model != null) {
                    slot.model.close();
                    slot.model = null;
                }
            }
        }
    }

    private static String sha256(String text) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(text.getBytes(StandardCharsets.UTF_8)), 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static final class Slot {
        private Blip2 model;
    }
}
