package dev.blip2dl4j.spark;

import dev.blip2dl4j.cli.Blip2Command;
import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.finetune.data.BadRowPolicy;
import dev.blip2dl4j.finetune.data.VqaDataset;
import dev.blip2dl4j.finetune.data.VqaExample;
import dev.blip2dl4j.finetune.data.VqaSource;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code blip2 spark}: its inputs and outputs, a bad row, a task that fails once, and CapFilt's output trained on. */
class SparkJobTest {
    private static final List<String> GOOD = List.of("rgb_100x80.png", "gray.jpg", "rgb_q90.jpg");

    @TempDir
    static Path temp;
    static Path opt;
    static Path itm;
    static Path images;

    @BeforeAll
    static void prepare() throws IOException {
        opt = temp.resolve("opt.b2z");
        itm = temp.resolve("itm.b2z");
        Converter.convert(List.of(Fixtures.model("opt")), opt, Converter.Options.defaults(), ConversionProgress.NONE);
        Converter.convert(List.of(Fixtures.model("itm")), itm, Converter.Options.defaults(), ConversionProgress.NONE);
        images = Files.createDirectories(temp.resolve("images"));
        for (String name : GOOD) {
            Files.copy(Fixtures.root().resolve("images-pil/images").resolve(name), images.resolve(name));
        }
        Files.writeString(images.resolve("bad.png"), "not an image");
    }

    @AfterAll
    static void close() {
        ExecutorModels.closeAll();
    }

    private record Run(int code, String out, String err) {
    }

    private static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--master", "local[2]"));
        int code = Blip2Command.run(new SparkJob(), new PrintWriter(out), new PrintWriter(err), all.toArray(String[]::new));
        return new Run(code, out.toString(), err.toString());
    }

    /** The output's rows by image, read back with a session of its own. */
    private static Map<String, Row> read(Path output, String format) {
        try (SparkSession spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate()) {
            Map<String, Row> rows = new TreeMap<>();
            for (Row r : spark.read().format(format).load(output.toString()).collectAsList()) {
                assertNull(rows.put(r.getString(r.fieldIndex("image")), r), "one row per image");
            }
            return rows;
        }
    }

    private static String path(String name) {
        return images.resolve(name).toString();
    }

    @Test
    void aFolderCaptionedToParquetAsTheZooCaptionsEachImageAndABadImageFailsItsRow() throws IOException {
        Path out = temp.resolve("captions.parquet");
        Run run = run("caption", "--model", opt.toString(), images.toString(), "-o", out.toString(), "--max-new-tokens", "4");
        assertEquals(0, run.code(), run.err());
        assertTrue(run.out().contains("4 rows, 1 with an error"), run.out());
        Map<String, Row> rows = read(out, "parquet");
        assertEquals(4, rows.size());
        assertTrue(rows.get(path("bad.png")).getString(rows.get(path("bad.png")).fieldIndex("error")).contains("bad.png"));
        try (Blip2 blip2 = Blip2.load(opt)) {
            for (String name : GOOD) {
                Row row = rows.get(path(name));
                assertNull(row.get(row.fieldIndex("error")));
                Caption expected = blip2.caption(Path.of(path(name)), "", blip2.generationDefaults().withMaxNewTokens(4));
                assertEquals(expected.text(), row.getString(row.fieldIndex("caption")), name);
                List<Long> ids = row.getList(row.fieldIndex("caption_ids"));
                assertEquals(Arrays.stream(expected.sequences().get(0).ids()).boxed().toList(), ids);
            }
        }

        Run again = run("caption", "--model", opt.toString(), images.toString(), "-o", out.toString());
        assertEquals(3, again.code(), "an existing output is refused");
        assertTrue(again.err().contains("already exists") && again.err().contains("--overwrite"), again.err());
        assertEquals(0, run("caption", "--model", opt.toString(), images.toString(), "-o", out.toString(),
                "--max-new-tokens", "4", "--overwrite").code());
        assertEquals(rows, read(out, "parquet"), "rerun over the old output: the same rows");
        try (Stream<Path> siblings = Files.list(temp)) {
            assertFalse(siblings.anyMatch(p -> p.getFileName().toString().startsWith(".captions.parquet")),
                    "no staging folder is left");
        }
    }

    @Test
    void aGlobMatchedToJsonLinesAsTheZooMatches() {
        Path out = temp.resolve("glob.jsonl");
        Run run = run("match", "--model", itm.toString(), images + "/*.jpg", "--text", "a photo", "-o", out.toString());
        assertEquals(0, run.code(), run.err());
        Map<String, Row> rows = read(out, "json");
        assertEquals(List.of(path("gray.jpg"), path("rgb_q90.jpg")), List.copyOf(rows.keySet()));
        try (Blip2 blip2 = Blip2.load(itm)) {
            for (Row row : rows.values()) {
                var expected = blip2.match(Path.of(row.getString(row.fieldIndex("image"))), "a photo");
                assertEquals(expected.itcScore(), row.getDouble(row.fieldIndex("itc_score")), 1e-5);
                assertEquals(expected.itmProbability(), row.getDouble(row.fieldIndex("itm_probability")), 1e-5);
            }
        }
    }

    @Test
    void csvJsonlAndParquetTablesWithRelativePathsGiveTheSameRows() throws IOException {
        Path csv = images.resolve("table.csv");
        Files.writeString(csv, "image,caption\nrgb_100x80.png,a red picture\ngray.jpg,a gray picture\n");
        Path jsonl = images.resolve("table.jsonl");
        Files.writeString(jsonl, "{\"image\": \"rgb_100x80.png\", \"caption\": \"a red picture\"}\n"
                + "{\"image\": \"gray.jpg\", \"caption\": \"a gray picture\"}\n");
        Path parquet = images.resolve("table.parquet");
        try (SparkSession spark = SparkSession.builder().master("local[1]").config("spark.ui.enabled", false).getOrCreate()) {
            StructType schema = new StructType().add("image", DataTypes.StringType).add("caption", DataTypes.StringType);
            spark.createDataFrame(List.of(RowFactory.create(path("rgb_100x80.png"), "a red picture"),
                    RowFactory.create(path("gray.jpg"), "a gray picture")), schema).write().parquet(parquet.toString());
        }
        Map<String, Row> first = null;
        for (Path table : List.of(csv, jsonl, parquet)) {
            Path out = temp.resolve("from-" + table.getFileName() + ".jsonl");
            Run run = run("match", "--model", itm.toString(), "--table", table.toString(), "--text-column", "caption",
                    "-o", out.toString());
            assertEquals(0, run.code(), table + ": " + run.err());
            Map<String, Row> rows = read(out, "json");
            assertEquals(List.of(path("gray.jpg"), path("rgb_100x80.png")), List.copyOf(rows.keySet()), table.toString());
            if (first == null) {
                first = rows;
            } else {
                for (String image : rows.keySet()) {
                    assertEquals(first.get(image).getDouble(first.get(image).fieldIndex("itc_score")),
                            rows.get(image).getDouble(rows.get(image).fieldIndex("itc_score")), 1e-9, table.toString());
                }
            }
        }
        Run noColumn = run("match", "--model", itm.toString(), "--table", csv.toString(), "-o", temp.resolve("x.jsonl").toString());
        assertEquals(3, noColumn.code());
        assertTrue(noColumn.err().contains("no column text"), noColumn.err());
    }

    @Test
    void capFiltWritesWhatFinetuneReads() {
        Path out = temp.resolve("capfilt.jsonl");
        Run run = run("capfilt", "--captioner", opt.toString(), "--retrieval", itm.toString(), images.toString(),
                "--samples", "3", "--max-new-tokens", "4", "-o", out.toString());
        assertEquals(0, run.code(), run.err());
        assertTrue(run.out().contains("6 captions of 3 images; 1 failed") && run.out().contains("bad.png"), run.out());
        VqaDataset data = VqaDataset.read(VqaSource.of(out), BadRowPolicy.FAIL);
        assertEquals(6, data.examples().size());
        for (VqaExample e : data.examples()) {
            assertEquals("", e.question());
            assertTrue(GOOD.contains(e.image().getFileName().toString()), e.image().toString());
            assertFalse(e.answer().isBlank());
        }
    }

    /** Throws in the first attempt of partition 1 after it has given a row, so that Spark retries it. */
    static final class FailOnce implements MapPartitionsFunction<Row, Row> {
        @Override
        public Iterator<Row> call(Iterator<Row> rows) {
            TaskContext task = TaskContext.get();
            boolean fail = task.partitionId() == 1 && task.attemptNumber() == 0;
            return new Iterator<>() {
                private int given;

                @Override
                public boolean hasNext() {
                    if (fail && given == 1) {
                        throw new IllegalStateException("injected failure of partition 1, attempt 0");
                    }
                    return rows.hasNext();
                }

                @Override
                public Row next() {
                    given++;
                    return rows.next();
                }
            };
        }
    }

    @Test
    void aTaskThatFailsOnceIsRetriedWithoutDuplicateRowsAndARerunIsIdentical() {
        List<Map<String, Row>> outputs = new ArrayList<>();
        for (String name : List.of("retried-1.parquet", "retried-2.parquet")) {
            try (SparkSession spark = SparkSession.builder().master("local[2,2]").config("spark.ui.enabled", false).getOrCreate()) {
                StructType schema = new StructType().add("image", DataTypes.StringType).add("text", DataTypes.StringType);
                List<Row> rows = new ArrayList<>();
                for (String image : List.of("rgb_100x80.png", "gray.jpg", "rgb_q90.jpg", "bad.png")) {
                    rows.add(RowFactory.create(path(image), "a picture"));
                }
                Dataset<Row> input = spark.createDataFrame(rows, schema).repartition(2);
                Blip2Matcher matcher = new Blip2Matcher();
                matcher.setModel(itm.toString()).setImageCol("image").setBatchSize(2);
                Dataset<Row> matched = matcher.transform(input);
                Dataset<Row> failing = matched.mapPartitions(new FailOnce(), Encoders.row(matched.schema()));
                JobOutput output = new JobOutput();
                output.output = temp.resolve(name).toString();
                output.check(spark, List.of()).write(failing);
            }
            Map<String, Row> written = read(temp.resolve(name), "parquet");
            assertEquals(4, written.size(), "every row exactly once");
            outputs.add(written);
        }
        assertEquals(outputs.get(0), outputs.get(1));
    }
}
