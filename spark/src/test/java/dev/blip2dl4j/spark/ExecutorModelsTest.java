package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.zoo.Blip2;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ExecutorModelsTest {
    @TempDir
    static Path temp;
    static Path artifact;

    @BeforeAll
    static void convert() {
        artifact = temp.resolve("tiny-opt.b2z");
        Converter.convert(List.of(Fixtures.model("opt")), artifact, Converter.Options.defaults(), ConversionProgress.NONE);
    }

    @AfterAll
    static void close() {
        ExecutorModels.closeAll();
    }

    @Test
    void aLocalArtifactIsUsedWhereItLies() {
        Path cache = temp.resolve("cache-local");
        assertEquals(artifact, ExecutorModels.localFile(artifact.toUri(), new Configuration(), cache));
        assertFalse(Files.exists(cache));
    }

    @Test
    void aRemoteArtifactIsCopiedOnceWhileConcurrentTasksWait() throws Exception {
        Configuration conf = new Configuration();
        CountingFileSystem.register(conf);
        URI remote = URI.create("counting://" + artifact.toAbsolutePath());
        Path cache = temp.resolve("cache-remote");
        int before = CountingFileSystem.OPENS.get();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<Path>> copies = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            copies.add(pool.submit(() -> ExecutorModels.localFile(remote, conf, cache)));
        }
        Set<Path> locals = new HashSet<>();
        for (Future<Path> copy : copies) {
            locals.add(copy.get());
        }
        pool.shutdown();
        assertEquals(1, CountingFileSystem.OPENS.get() - before, "opened once");
        assertEquals(1, locals.size());
        Path local = locals.iterator().next();
        assertTrue(local.startsWith(cache.resolve("remote")), local.toString());
        assertArrayEquals(Files.readAllBytes(artifact), Files.readAllBytes(local));
        try (var left = Files.walk(cache)) {
            assertTrue(left.noneMatch(p -> p.toString().endsWith(".part")), "no partial copy left");
        }
        // a later task (or another executor on this machine) finds the copy
        assertEquals(local, ExecutorModels.localFile(remote, conf, cache));
        assertEquals(1, CountingFileSystem.OPENS.get() - before);
    }

    @Test
    void oneModelPerReferenceSharedByTasks() throws Exception {
        HadoopSettings hadoop = HadoopSettings.of(new Configuration());
        ModelReference reference = ModelReference.of(artifact.toString());
        ExecutorService pool = Executors.newFixedThreadPool(3);
        List<Future<Blip2>> seen = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            seen.add(pool.submit(() -> ExecutorModels.use(reference, hadoop, model -> model)));
        }
        Blip2 first = seen.get(0).get();
        for (Future<Blip2> f : seen) {
            assertSame(first, f.get());
        }
        pool.shutdown();
        int queries = ExecutorModels.use(reference, hadoop, model -> model.config().numQueryTokens());
        assertEquals(8, queries);
    }

    @Test
    void aMissingArtifactNamesItself() {
        URI missing = temp.resolve("nowhere.b2z").toUri();
        BadInputException e = assertThrows(BadInputException.class,
                () -> ExecutorModels.localFile(missing, new Configuration(), temp.resolve("cache-missing")));
        assertEquals("model " + missing + ": no such file", e.getMessage());
    }

    @Test
    void namesAndFilesAreToldApart() {
        assertTrue(ModelReference.of("blip2-opt-2.7b").isName());
        assertTrue(new ModelReference("blip2-opt-2.7b", "int8").isName());
        assertFalse(ModelReference.of("model.b2z").isName());
        assertFalse(ModelReference.of("/models/opt").isName());
        assertEquals(URI.create("hdfs://nn:8020/models/opt.b2z"), ModelReference.of("hdfs://nn:8020/models/opt.b2z").uri());
        assertEquals("file", ModelReference.of("models/opt.b2z").uri().getScheme());
        BadInputException dtypeOnFile = assertThrows(BadInputException.class,
                () -> new ModelReference("s3a://bucket/opt.b2z", "int8"));
        assertTrue(dtypeOnFile.getMessage().contains("is for a catalogue name"), dtypeOnFile.getMessage());
        assertThrows(BadInputException.class, () -> new ModelReference("blip2-opt-2.7b", "int4"));
    }
}
