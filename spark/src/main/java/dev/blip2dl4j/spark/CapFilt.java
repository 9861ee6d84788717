package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.finetune.data.SplitMix64;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import dev.blip2dl4j.zoo.Match;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import dev.blip2dl4j.zoo.image.DecodedImage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import static org.apache.spark.sql.functions.coalesce;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.posexplode;

/**
 * CapFilt, BLIP's data bootstrapping as BLIP-2 used it for its pre-training captions: for each image with its
 * web text, sample {@code samples} captions with a captioning model (nucleus sampling), rank them together with the
 * web text by a retrieval model's image-text similarity (ITC), and keep the top {@code keep}. The BLIP-2 paper
 * sampled 10 and kept 2, ranking with CLIP ViT-L/14; we rank with BLIP-2's own ITC head. Each row's sampling seed
 * comes from the job's seed and the row's image key (its path or URI), so a rerun, with any partitioning, samples
 * the same captions.
 *
 * <p>Two passes over the rows, each through {@link PartitionRunner} with its model from {@link ExecutorModels}: the
 * captioner samples, then the retrieval model ranks; a row whose image or text cannot be used gets its error.
 */
public final class CapFilt {
    /** The BLIP-2 paper's CapFilt: 10 captions sampled per image, the 2 best (of those and the web text) kept. */
    public static final int SAMPLES = 10;
    public static final int KEEP = 2;
    /** BLIP's CapFilt sampling: nucleus sampling with p 0.9, captions of at most 30 tokens. */
    public static final double TOP_P = 0.9;
    public static final int MAX_NEW_TOKENS = 30;

    /** What a kept caption came from. */
    public static final String SAMPLED = "sampled";
    public static final String WEB = "web";

    static final StructType KEPT = new StructType()
            .add("text", DataTypes.StringType, false)
            .add("itc", DataTypes.DoubleType, false)
            .add("source", DataTypes.StringType, false);

    private CapFilt() {
    }

    /**
     * @param captioner      the captioning model (a conditional-generation BLIP-2)
     * @param retrieval      the retrieval model whose ITC ranks (a BLIP-2 image-text retrieval model)
     * @param samples        captions sampled per image
     * @param keep           captions kept per image, best first
     * @param topP           nucleus sampling's p (the model's other sampling settings, top-k and temperature, stay)
     * @param maxNewTokens   tokens per sampled caption at most
     * @param seed           the job's seed; each row's is derived from it and the row's image key
     * @param prompt         the text captions continue ("" for none)
     * @param imageColumn    the column of image paths or URIs (the rows' keys)
     * @param webTextColumn  the column of each image's web text, ranked with the samples; null for none
     * @param batchSize      rows per batch of each pass
     */
    public record Settings(ModelReference captioner, ModelReference retrieval, int samples, int keep, double topP,
                           int maxNewTokens, long seed, String prompt, String imageColumn, String webTextColumn,
                           int batchSize, boolean exifTranspose, long maxImagePixels) implements Serializable {
        public Settings {
            if (samples < 1 || samples > GenerationConfig.MAX_BEAMS) {
                throw new BadInputException("--samples must be from 1 to " + GenerationConfig.MAX_BEAMS + ", not " + samples);
            }
            if (keep < 1) {
                throw new BadInputException("--keep must be at least 1, not " + keep);
            }
            if (batchSize < 1) {
                throw new BadInputException("--batch-size must be at least 1, not " + batchSize);
            }
            // checked here once, not in every task
            sampling(GenerationConfig.defaults(List.of(), null), topP, maxNewTokens, samples, 0);
        }
    }

    /**
     * Samples and ranks. The rows keep their columns and gain {@code candidates} (the distinct sampled captions,
     * in the order drawn), {@code kept} (the best {@code keep} of them and the web text by ITC:
     * {@code text, itc, source}) and {@code error} (null when the row was answered).
     */
    public static Dataset<Row> rank(Dataset<Row> rows, Settings s, HadoopSettings hadoop) {
        StructType in = rows.schema();
        int image = Blip2Stage.stringColumn(in, s.imageColumn(), "image");
        int web = s.webTextColumn() == null ? -1 : Blip2Stage.stringColumn(in, s.webTextColumn(), "web text");
        for (String name : List.of("candidates", "sample_error", "kept", "rank_error", "error")) {
            if (List.of(in.fieldNames()).contains(name)) {
                throw new BadInputException("the input has a column " + name + ", which CapFilt adds: rename it");
            }
        }
        StructType sampledSchema = in.add("candidates", DataTypes.createArrayType(DataTypes.StringType, false), true)
                .add("sample_error", DataTypes.StringType, true);
        ImageInput images = new ImageInput(image, false, -1, s.exifTranspose(), s.maxImagePixels());
        Dataset<Row> sampled = rows.toDF().mapPartitions(new PartitionRunner(s.captioner(), hadoop, images,
                new Sample(s, image), 1, s.batchSize()), Encoders.row(sampledSchema));

        StructType rankedSchema = sampledSchema.add("kept", DataTypes.createArrayType(KEPT, false), true)
                .add("rank_error", DataTypes.StringType, true);
        Dataset<Row> ranked = sampled.mapPartitions(new PartitionRunner(s.retrieval(), hadoop, images,
                new Rank(s, sampledSchema.fieldIndex("candidates"), web), 1, s.batchSize()), Encoders.row(rankedSchema));
        return ranked.withColumn("error", coalesce(col("sample_error"), col("rank_error")))
                .drop("sample_error", "rank_error");
    }

    /**
     * The kept pairs of {@link #rank}'s rows as {@code blip2 finetune} reads them: one row per kept caption with
     * {@code image}, an empty {@code question} (a caption row) and the caption as {@code answer}, plus its
     * {@code itc}, {@code source} and {@code rank} (1 = best). Rows with an error have no pairs.
     */
    public static Dataset<Row> pairs(Dataset<Row> ranked, String imageColumn) {
        return ranked.where(col("error").isNull())
                .select(col(imageColumn).as("image"), posexplode(col("kept")).as(new String[]{"position", "pair"}))
                .select(col("image"), lit("").as("question"), col("pair.text").as("answer"), col("pair.itc").as("itc"),
                        col("pair.source").as("source"), col("position").plus(1).as("rank"));
    }

    /** The sampling seed of the row whose image key is {@code key}: the same for it in every run and partitioning. */
    public static long rowSeed(long jobSeed, String key) {
        return SplitMix64.derived(jobSeed, key.hashCode()).nextLong();
    }

    /** The model's generation settings, sampling {@code samples} captions with nucleus p {@code topP} and the seed. */
    public static GenerationConfig sampling(GenerationConfig model, double topP, int maxNewTokens, int samples, long seed) {
        return model.withBeams(1, 1).withSampling(true, model.temperature(), model.topK(), topP, seed)
                .withBeams(1, samples).withMaxNewTokens(maxNewTokens);
    }

    /** An array column's value as a Row holds it: a Scala Seq (Spark's row encoder takes no java.util.List). */
    private static <T> scala.collection.Seq<T> seq(List<T> values) {
        return scala.collection.JavaConverters.asScalaBuffer(values);
    }

    /** The captioner's pass: each row's samples, drawn with its own seed (one row at a time, so batches cannot change them). */
    private record Sample(Settings s, int image) implements BatchTask {
        @Override
        public List<Object[]> run(Blip2 model, List<DecodedImage> images, List<Row> rows) {
            List<Object[]> out = new ArrayList<>();
            for (int i = 0; i < rows.size(); i++) {
                long seed = rowSeed(s.seed(), rows.get(i).getString(image));
                Caption caption = model.caption(List.of(images.get(i)), List.of(s.prompt()),
                        sampling(model.generationDefaults(), s.topP(), s.maxNewTokens(), s.samples(), seed)).get(0);
                Set<String> distinct = new LinkedHashSet<>();
                caption.sequences().stream().map(Caption.Sequence::text).filter(text -> !text.isBlank())
                        .forEach(distinct::add);
                out.add(new Object[]{seq(new ArrayList<>(distinct))});
            }
            return out;
        }
    }

    /** The retrieval model's pass: the samples and the web text by ITC, best first, ties in the order given. */
    private record Rank(Settings s, int candidates, int web) implements BatchTask {
        @Override
        public List<Object[]> run(Blip2 model, List<DecodedImage> images, List<Row> rows) {
            List<Object[]> out = new ArrayList<>();
            for (int i = 0; i < rows.size(); i++) {
                Row row = rows.get(i);
                if (row.isNullAt(candidates)) {
                    out.add(new Object[]{null});   // its sampling failed: its error says why
                    continue;
                }
                List<String> texts = new ArrayList<>(row.getList(candidates));
                List<String> sources = new ArrayList<>(Collections.nCopies(texts.size(), SAMPLED));
                String webText = web < 0 || row.isNullAt(web) ? null : row.getString(web).strip();
                if (webText != null && !webText.isEmpty() && !texts.contains(webText)) {
                    texts.add(webText);
                    sources.add(WEB);
                }
                if (texts.isEmpty()) {
                    throw new BadInputException("no caption was sampled and there is no web text to rank");
                }
                List<Match> matches = model.match(Collections.nCopies(texts.size(), images.get(i)), texts);
                List<Integer> order = new ArrayList<>();
                for (int j = 0; j < texts.size(); j++) {
                    order.add(j);
                }
                order.sort(Comparator.comparingDouble((Integer j) -> -matches.get(j).itcScore()));
                List<Row> kept = order.stream().limit(s.keep())
                        .map(j -> RowFactory.create(texts.get(j), matches.get(j).itcScore(), sources.get(j))).toList();
                out.add(new Object[]{seq(kept)});
            }
            return out;
        }
    }
}
