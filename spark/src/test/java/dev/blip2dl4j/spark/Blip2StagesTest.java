package dev.blip2dl4j.spark;

import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import dev.blip2dl4j.zoo.Match;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
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
import org.nd4j.linalg.api.buffer.DataType;
import scala.collection.Seq;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The stages in local mode against the zoo's API on the same images and settings (what {@code blip2 caption},
 * {@code vqa} and {@code match} print), with a corrupt image, a missing file and a non-image among the good ones.
 */
class Blip2StagesTest {
    private static final List<String> GOOD = List.of("common/merlion.png", "images-pil/images/rgb_640x480.png",
            "images-pil/images/cmyk.jpg", "images-pil/images/exif_orient6.jpg");

    @TempDir
    static Path temp;
    static SparkSession spark;
    static Path opt;
    static Path itm;
    static Path images;
    /** The zoo's API on the same artifacts: what the stages must equal. */
    static Blip2 optApi;
    static Blip2 itmApi;
    /** Every row's image, good and bad, in the order of the rows; what each bad one is. */
    static List<Path> rows = new ArrayList<>();
    static Map<Path, String> bad = new TreeMap<>();

    @BeforeAll
    static void setUp() throws IOException {
        opt = temp.resolve("tiny-opt.b2z");
        itm = temp.resolve("tiny-itm.b2z");
        Converter.convert(List.of(Fixtures.model("opt")), opt, Converter.Options.defaults(), ConversionProgress.NONE);
        Converter.convert(List.of(Fixtures.model("itm")), itm, Converter.Options.defaults(), ConversionProgress.NONE);
        images = Files.createDirectories(temp.resolve("images"));
        for (int i = 0; i < GOOD.size(); i++) {
            Path source = Fixtures.root().resolve(GOOD.get(i));
            String name = source.getFileName().toString();
            rows.add(Files.copy(source, images.resolve(i + "-" + name)));
        }
        Path corrupt = images.resolve("corrupt.png");
        Files.write(corrupt, Arrays.copyOf(Files.readAllBytes(Fixtures.root().resolve(GOOD.get(0))), 200));
        Path text = Files.writeString(images.resolve("notes.png"), "not an image at all\n");
        Path missing = temp.resolve("missing.png");
        bad.put(corrupt, "truncated PNG");
        bad.put(text, "not an image in any format we know");
        bad.put(missing, "no such file");
        rows.add(1, missing);
        rows.add(4, corrupt);
        rows.add(6, text);
        optApi = Blip2.load(opt);
        itmApi = Blip2.load(itm);
        spark = SparkSession.builder().master("local[2]").appName("blip2-stages-test")
                .config("spark.ui.enabled", "false").getOrCreate();
    }

    @AfterAll
    static void tearDown() {
        spark.stop();
        ExecutorModels.closeAll();
        optApi.close();
        itmApi.close();
    }

    /** The rows' images as paths, in two partitions, with an id column and a question or text per row. */
    static Dataset<Row> paths(String textColumn, List<String> texts) {
        List<Row> data = new ArrayList<>();
        for (int i = 0; i < rows.size(); i++) {
            data.add(RowFactory.create((long) i, rows.get(i).toString(), texts.get(i % texts.size())));
        }
        StructType schema = new StructType().add("id", DataTypes.LongType).add("path", DataTypes.StringType)
                .add(textColumn, DataTypes.StringType);
        return spark.createDataFrame(JavaSparkContext.fromSparkContext(spark.sparkContext()).parallelize(data, 2), schema);
    }

    @Test
    void captionsEqualTheApisGreedyFromPathsWithOneErrorPerBadRow() {
        Blip2Captioner captioner = new Blip2Captioner();
        captioner.setMaxNewTokens(10).setModel(opt.toString()).setBatchSize(3);
        List<Row> out = captioner.transform(paths("unused", List.of(""))).collectAsList();
        assertEquals(rows.size(), out.size());
        GenerationConfig generation = optApi.generationDefaults().withMaxNewTokens(10);
        for (int i = 0; i < rows.size(); i++) {
            Row row = out.get(i);
            assertEquals(i, row.getLong(0), "rows keep their order");
            assertEquals(rows.get(i).toString(), row.getString(1), "input columns pass through");
            String error = row.getAs("error");
            if (bad.containsKey(rows.get(i))) {
                assertNotNull(error, rows.get(i) + " should fail");
                assertTrue(error.startsWith(rows.get(i) + ": ") && error.contains(bad.get(rows.get(i))), error);
                assertNull(row.getAs("caption"));
                continue;
            }
            assertNull(error, error);
            Caption expected = optApi.caption(rows.get(i), "", generation);
            assertEquals(expected.text(), row.getAs("caption"));
            assertArrayEquals(expected.sequences().get(0).ids(), ids(row.getList(row.fieldIndex("caption_ids"))));
            assertEquals(expected.sequences().get(0).score(), (double) row.getAs("caption_score"), 1e-5);
        }
    }

    @Test
    void beamCaptionsOfABinaryFileSourceEqualTheApis() {
        Blip2Captioner captioner = new Blip2Captioner();
        captioner.setNumBeams(3).setNumReturnSequences(2).setMaxNewTokens(8).setSequencesCol("beams")
                .setImageCol("content").setModel(opt.toString()).setBatchSize(4);
        Dataset<Row> files = spark.read().format("binaryFile").load(images.toString());
        List<Row> out = captioner.transform(files).select("path", "caption_ids", "beams", "error").collectAsList();
        assertEquals(GOOD.size() + 2, out.size());
        GenerationConfig generation = optApi.generationDefaults().withMaxNewTokens(8).withBeams(3, 2);
        int errors = 0;
        for (Row row : out) {
            Path file = Path.of(java.net.URI.create(row.getString(0)));
            if (bad.containsKey(file)) {
                errors++;
                assertTrue(row.getString(3).startsWith(row.getString(0) + ": ")
                        && row.getString(3).contains(bad.get(file)), row.getString(3));
                continue;
            }
            assertNull(row.get(3));
            Caption expected = optApi.caption(file, "", generation);
            assertArrayEquals(expected.sequences().get(0).ids(), ids(row.getList(1)));
            List<Row> beams = row.getList(2);
            assertEquals(2, beams.size());
            for (int b = 0; b < 2; b++) {
                assertEquals(expected.sequences().get(b).text(), beams.get(b).getString(0));
                assertArrayEquals(expected.sequences().get(b).ids(), ids(beams.get(b).getList(1)));
            }
        }
        assertEquals(2, errors, "the corrupt image and the non-image");
    }

    @Test
    void answersEqualTheApisAndANullQuestionFailsOnlyItsRow() {
        // rows 2 and 5 (good images) have no question: their batch fails, and is answered row by row
        List<String> questions = Arrays.asList("what is in the picture?", "which city is this?", null);
        Blip2Answerer answerer = new Blip2Answerer();
        answerer.setModel(opt.toString());
        List<Row> out = answerer.transform(paths("question", questions)).collectAsList();
        int answered = 0;
        for (int i = 0; i < rows.size(); i++) {
            Row row = out.get(i);
            String question = questions.get(i % questions.size());
            if (bad.containsKey(rows.get(i))) {
                assertNotNull(row.getAs("error"));
                continue;
            }
            if (question == null) {
                assertEquals(rows.get(i) + ": no question (its column is null)", row.getAs("error"));
                continue;
            }
            Caption expected = optApi.answer(rows.get(i), question);
            assertEquals(expected.text(), row.getAs("answer"));
            assertArrayEquals(expected.sequences().get(0).ids(), ids(row.getList(row.fieldIndex("answer_ids"))));
            answered++;
        }
        assertEquals(2, answered);
    }

    @Test
    void matchesEqualTheApis() {
        List<String> texts = List.of("a merlion fountain spouting water in a city", "a dog sitting on the beach");
        Blip2Matcher matcher = new Blip2Matcher();
        matcher.setModel(itm.toString()).setBatchSize(4);
        List<Row> out = matcher.transform(paths("text", texts)).collectAsList();
        for (int i = 0; i < rows.size(); i++) {
            Row row = out.get(i);
            if (bad.containsKey(rows.get(i))) {
                assertNotNull(row.getAs("error"));
                assertNull(row.getAs("itm_probability"));
                continue;
            }
            Match expected = itmApi.match(rows.get(i), texts.get(i % texts.size()));
            assertEquals(expected.itmProbability(), (double) row.getAs("itm_probability"), 1e-6);
            assertEquals(expected.itcScore(), (double) row.getAs("itc_score"), 1e-6);
        }
    }

    @Test
    void featuresEqualTheApis() {
        Blip2FeatureExtractor extractor = new Blip2FeatureExtractor();
        extractor.setModel(opt.toString()).setBatchSize(4);
        List<Row> out = extractor.transform(paths("unused", List.of(""))).collectAsList();
        for (int i = 0; i < rows.size(); i++) {
            Row row = out.get(i);
            if (bad.containsKey(rows.get(i))) {
                assertNotNull(row.getAs("error"));
                continue;
            }
            float[][] expected = optApi.imageFeatures(rows.get(i)).castTo(DataType.FLOAT).slice(0).toFloatMatrix();
            List<Seq<Float>> features = row.getList(row.fieldIndex("features"));
            assertEquals(expected.length, features.size());
            for (int q = 0; q < expected.length; q++) {
                float[] got = new float[expected[q].length];
                for (int w = 0; w < got.length; w++) {
                    got[w] = features.get(q).apply(w);
                }
                assertArrayEquals(expected[q], got, 1e-5f, "query " + q);
            }
        }
    }

    @Test
    void aSavedAndReloadedPipelineGivesTheSameOutput() throws IOException {
        Blip2Captioner captioner = new Blip2Captioner();
        captioner.setMaxNewTokens(6).setModel(opt.toString()).setBatchSize(2);
        Blip2Matcher matcher = new Blip2Matcher();
        matcher.setTextCol("caption").setErrorCol("match_error").setModel(itm.toString());
        Pipeline pipeline = new Pipeline().setStages(new PipelineStage[]{captioner, matcher});
        Dataset<Row> input = paths("unused", List.of(""));
        PipelineModel fitted = pipeline.fit(input);
        List<Row> before = fitted.transform(input).collectAsList();

        String saved = temp.resolve("pipeline").toString();
        fitted.write().overwrite().save(saved);
        pipeline.write().overwrite().save(saved + "-unfitted");
        // a fresh session, as a later job would load it
        spark.stop();
        spark = SparkSession.builder().master("local[2]").appName("blip2-stages-test-reloaded")
                .config("spark.ui.enabled", "false").getOrCreate();
        input = paths("unused", List.of(""));
        PipelineModel reloaded = PipelineModel.load(saved);
        Blip2Captioner reloadedCaptioner = (Blip2Captioner) reloaded.stages()[0];
        assertEquals(captioner.uid(), reloadedCaptioner.uid());
        assertEquals(6, (int) reloadedCaptioner.getOrDefault(reloadedCaptioner.maxNewTokens()));
        assertEquals(before, reloaded.transform(input).collectAsList());
        assertEquals(before, Pipeline.load(saved + "-unfitted").fit(input).transform(input).collectAsList());
        assertEquals(rows.size() - bad.size(), before.stream().filter(r -> r.getAs("error") == null).count());
    }

    private static long[] ids(List<Long> ids) {
        return ids.stream().mapToLong(Long::longValue).toArray();
    }
}
