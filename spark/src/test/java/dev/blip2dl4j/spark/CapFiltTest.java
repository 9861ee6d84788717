package dev.blip2dl4j.spark;

import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import dev.blip2dl4j.zoo.image.ImageLoader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CapFilt's kept captions, checked against the zoo's own sampling and matching of the same images. */
class CapFiltTest {
    private static final int SAMPLES = 4;
    private static final int KEEP = 2;
    private static final int NEW_TOKENS = 6;
    private static final long SEED = 7;

    @TempDir
    static Path temp;
    static Path captioner;
    static Path retrieval;
    static SparkSession spark;

    @BeforeAll
    static void start() {
        captioner = temp.resolve("opt.b2z");
        retrieval = temp.resolve("itm.b2z");
        Converter.convert(List.of(Fixtures.model("opt")), captioner, Converter.Options.defaults(), ConversionProgress.NONE);
        Converter.convert(List.of(Fixtures.model("itm")), retrieval, Converter.Options.defaults(), ConversionProgress.NONE);
        spark = SparkSession.builder().master("local[2]").appName("capfilt-test").config("spark.ui.enabled", false).getOrCreate();
    }

    @AfterAll
    static void stop() {
        spark.stop();
        ExecutorModels.closeAll();
    }

    private static String image(String name) {
        return Fixtures.root().resolve("images-pil/images").resolve(name).toString();
    }

    private static CapFilt.Settings settings() {
        return new CapFilt.Settings(ModelReference.of(captioner.toString()), ModelReference.of(retrieval.toString()),
                SAMPLES, KEEP, CapFilt.TOP_P, NEW_TOKENS, SEED, "", "image", "text", 2, true, ImageLoader.DEFAULT_MAX_PIXELS);
    }

    private static Dataset<Row> rows(int partitions) {
        StructType schema = new StructType().add("image", DataTypes.StringType).add("text", DataTypes.StringType);
        List<Row> rows = List.of(RowFactory.create(image("rgb_100x80.png"), "a small red picture"),
                RowFactory.create(image("gray.jpg"), null),
                RowFactory.create(image("rgb_q90.jpg"), "a photo"),
                RowFactory.create(image("no-such-file.png"), "missing"));
        return spark.createDataFrame(rows, schema).repartition(partitions);
    }

    /** image -> kept (text, itc, source) in order, and the candidates. */
    private static Map<String, Row> byImage(Dataset<Row> ranked) {
        Map<String, Row> out = new TreeMap<>();
        ranked.collectAsList().forEach(r -> out.put(r.getString(r.fieldIndex("image")), r));
        return out;
    }

    @Test
    void keptCaptionsAreTheTopByItcOfWhatWasSampledAndARerunIsIdentical() {
        Map<String, Row> first = byImage(CapFilt.rank(rows(2), settings(), HadoopSettings.of(spark.sparkContext().hadoopConfiguration())));
        assertEquals(4, first.size());
        Row missing = first.get(image("no-such-file.png"));
        assertNotNull(missing.getString(missing.fieldIndex("error")));
        assertTrue(missing.getString(missing.fieldIndex("error")).contains("no-such-file.png"), missing.toString());

        try (Blip2 opt = Blip2.load(captioner); Blip2 itm = Blip2.load(retrieval)) {
            for (String name : List.of("rgb_100x80.png", "gray.jpg", "rgb_q90.jpg")) {
                Row row = first.get(image(name));
                assertNull(row.get(row.fieldIndex("error")), row.toString());
                Path file = Path.of(image(name));
                // what the job should have sampled: the zoo's sampling with the row's seed
                Caption sampled = opt.caption(List.of(opt.loadImage(file)), List.of(""), CapFilt.sampling(
                        opt.generationDefaults(), CapFilt.TOP_P, NEW_TOKENS, SAMPLES, CapFilt.rowSeed(SEED, file.toString()))).get(0);
                List<String> candidates = new ArrayList<>(new LinkedHashSet<>(sampled.sequences().stream()
                        .map(Caption.Sequence::text).filter(t -> !t.isBlank()).toList()));
                assertEquals(candidates, row.getList(row.fieldIndex("candidates")), name);

                List<String> texts = new ArrayList<>(candidates);
                String web = row.getString(row.fieldIndex("text"));
                if (web != null) {
                    texts.add(web);
                }
                // ranked independently: one match per candidate
                List<String> best = texts.stream()
                        .sorted(Comparator.comparingDouble((String t) -> -itm.match(file, t).itcScore()))
                        .limit(KEEP).toList();
                List<Row> kept = row.getList(row.fieldIndex("kept"));
                assertEquals(best, kept.stream().map(k -> k.getString(0)).toList(), name);
                for (Row k : kept) {
                    assertEquals(itm.match(file, k.getString(0)).itcScore(), k.getDouble(1), 1e-5, name);
                    assertEquals(k.getString(0).equals(web) ? CapFilt.WEB : CapFilt.SAMPLED, k.getString(2));
                }
            }
        }

        Map<String, Row> rerun = byImage(CapFilt.rank(rows(3), settings(), HadoopSettings.of(spark.sparkContext().hadoopConfiguration())));
        assertEquals(first, rerun, "another partitioning samples and keeps the same");
    }
}
