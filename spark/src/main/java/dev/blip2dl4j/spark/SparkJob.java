package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.Version;
import dev.blip2dl4j.cli.Blip2Command;
import dev.blip2dl4j.zoo.generate.GenerationOverrides;
import dev.blip2dl4j.zoo.image.ImageLoader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;

/**
 * {@code blip2 spark}: the BLIP-2 stages and CapFilt as Spark jobs over image collections, from the command line
 * ({@code ./blip2 spark ...}) or under {@code spark-submit --class dev.blip2dl4j.spark.SparkJob blip2-spark.jar ...}.
 * Exit codes and errors as every blip2 command's (3: bad input, named).
 */
@Command(name = "blip2 spark", mixinStandardHelpOptions = true, version = Version.TEXT,
        description = {"Caption, answer, match, extract features of, or CapFilt whole image collections with Spark: "
                + "the model loaded once per executor, a bad image fails its row, never the job; the output written "
                + "through Spark's commit protocol.",
                "",
                "Example: blip2 spark caption --model blip2-opt-2.7b.b2z 'photos/*.jpg' -o captions.parquet"},
        subcommands = {SparkJob.CaptionJob.class, SparkJob.VqaJob.class, SparkJob.MatchJob.class,
                SparkJob.FeaturesJob.class, SparkJob.CapFiltJob.class})
public final class SparkJob {
    public static void main(String[] args) {
        Blip2Command.main(new SparkJob(), args);
    }

    /** What every job shares: where it runs, what it reads and writes, how images are read. */
    abstract static class Job implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--master", paramLabel = "URL",
                description = "Spark's master (default: spark-submit's, else local[*]: this JVM, a task per core).")
        String master;

        @Mixin
        JobInput input;

        @Mixin
        JobOutput output;

        @Option(names = "--batch-size", defaultValue = "8", paramLabel = "N", description = "Images per batch in a task (default: ${DEFAULT-VALUE}).")
        int batchSize;

        @Option(names = "--no-exif", description = "Do not turn images as their EXIF orientation says.")
        boolean noExif;

        @Option(names = "--max-pixels", paramLabel = "N", defaultValue = "" + ImageLoader.DEFAULT_MAX_PIXELS,
                description = "Refuse larger images before decoding them (default: ${DEFAULT-VALUE}, Pillow's limit).")
        long maxPixels;

        @Mixin
        Blip2Command.Verbosity verbosity;

        /** The job's rows from the input's; they end with the error column. */
        abstract Dataset<Row> run(Dataset<Row> rows, SparkSession spark);

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            try (SparkSession spark = session(spec.name())) {
                JobOutput.Target target = output.check(spark, input.localInputs());
                Dataset<Row> rows = input.read(spark);
                write(run(rows, spark), target, spark, out);
            } catch (RuntimeException e) {
                throw badInputWithin(e);
            }
            out.flush();
            return 0;
        }

        void write(Dataset<Row> result, JobOutput.Target target, SparkSession spark, PrintWriter out) {
            target.write(result);
            Row counts = target.read(spark).agg(count(lit(1)), count(col("error"))).first();
            out.printf("wrote %s: %d rows, %d with an error (in its error column)%n", output.output, counts.getLong(0),
                    counts.getLong(1));
        }

        <S extends Blip2Stage> S configure(S stage, String model) {
            stage.setModel(model).setImageCol(input.imageColumn()).setBatchSize(batchSize).setExifTranspose(!noExif)
                    .setMaxImagePixels(maxPixels).setErrorCol("error");
            return stage;
        }

        private SparkSession session(String job) {
            SparkSession.Builder builder = SparkSession.builder().appName("blip2 spark " + job);
            if (master != null) {
                builder.master(master);
            } else if (System.getProperty("spark.master") == null) {
                builder.master("local[*]");
            }
            return builder.getOrCreate();
        }
    }

    /** A job of one stage, over one model. */
    abstract static class ModelJob extends Job {
        @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL",
                description = "A catalogue name, or a .b2z artifact's path or URI (any Hadoop FileSystem: copied once per executor).")
        String model;

        /** The rows with a column {@code name} of {@code value} for each, where the value is given for every row. */
        static Dataset<Row> constant(Dataset<Row> rows, String name, String value) {
            return value == null ? rows : rows.withColumn(name, lit(value));
        }
    }

    /**
     * A task's failure arrives wrapped in Spark's exceptions (the job's, the stage's): when a bad input caused it (a
     * model that cannot be loaded, say), that is the error to report, as every command reports it.
     */
    static RuntimeException badInputWithin(RuntimeException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof BadInputException bad) {
                return bad;
            }
        }
        return e;
    }

    /** The generation options given, as the stage's parameters (the others stay the model's). */
    private static void generation(GeneratingStage stage, GenerationOverrides o) {
        if (o.maxNewTokens() != null) stage.setMaxNewTokens(o.maxNewTokens());
        if (o.minNewTokens() != null) stage.setMinNewTokens(o.minNewTokens());
        if (o.numBeams() != null) stage.setNumBeams(o.numBeams());
        if (o.numReturnSequences() != null) stage.setNumReturnSequences(o.numReturnSequences());
        if (o.lengthPenalty() != null) stage.setLengthPenalty(o.lengthPenalty());
        if (o.earlyStopping() != null) stage.setEarlyStopping(o.earlyStopping());
        if (o.doSample() != null) stage.setDoSample(o.doSample());
        if (o.temperature() != null) stage.setTemperature(o.temperature());
        if (o.topK() != null) stage.setTopK(o.topK());
        if (o.topP() != null) stage.setTopP(o.topP());
        if (o.seed() != null) stage.setSeed(o.seed());
        if (o.repetitionPenalty() != null) stage.setRepetitionPenalty(o.repetitionPenalty());
        if (o.noRepeatNgramSize() != null) stage.setNoRepeatNgramSize(o.noRepeatNgramSize());
        stage.generation();   // checked as a whole now, not in every task
    }

    @Command(name = "caption", mixinStandardHelpOptions = true, description = "Caption each image (or continue a prompt about it).")
    static final class CaptionJob extends ModelJob {
        @Option(names = "--prompt", paramLabel = "TEXT", description = "Text every caption continues (default: none).")
        String prompt;

        @Option(names = "--prompt-column", paramLabel = "NAME", description = "A table's column of each row's prompt.")
        String promptColumn;

        @Mixin
        dev.blip2dl4j.cli.GenerationOptions generation;

        @Override
        Dataset<Row> run(Dataset<Row> rows, SparkSession spark) {
            Blip2Captioner captioner = configure(new Blip2Captioner(), model);
            String column = prompt != null ? "prompt" : promptColumn;
            rows = constant(rows, column, prompt);
            if (column != null) {
                captioner.setPromptCol(column);
            }
            generation(captioner, generation.overrides());
            return captioner.transform(rows);
        }
    }

    @Command(name = "vqa", mixinStandardHelpOptions = true, description = "Answer a question about each image.")
    static final class VqaJob extends ModelJob {
        @Option(names = "--question", paramLabel = "TEXT", description = "The question asked of every image.")
        String question;

        @Option(names = "--question-column", defaultValue = "question", paramLabel = "NAME",
                description = "A table's column of each row's question (default: ${DEFAULT-VALUE}).")
        String questionColumn;

        @Mixin
        dev.blip2dl4j.cli.GenerationOptions generation;

        @Override
        Dataset<Row> run(Dataset<Row> rows, SparkSession spark) {
            String column = question != null ? "question" : questionColumn;
            Blip2Answerer answerer = configure(new Blip2Answerer(), model);
            answerer.setQuestionCol(column);
            rows = constant(rows, column, question);
            generation(answerer, generation.overrides());
            return answerer.transform(rows);
        }
    }

    @Command(name = "match", mixinStandardHelpOptions = true,
            description = "Score how well a text describes each image: ITM probability and ITC similarity.")
    static final class MatchJob extends ModelJob {
        @Option(names = "--text", paramLabel = "TEXT", description = "The text matched with every image.")
        String text;

        @Option(names = "--text-column", defaultValue = "text", paramLabel = "NAME",
                description = "A table's column of each row's text (default: ${DEFAULT-VALUE}).")
        String textColumn;

        @Override
        Dataset<Row> run(Dataset<Row> rows, SparkSession spark) {
            String column = text != null ? "text" : textColumn;
            Blip2Matcher matcher = configure(new Blip2Matcher(), model);
            matcher.setTextCol(column);
            rows = constant(rows, column, text);
            return matcher.transform(rows);
        }
    }

    @Command(name = "features", mixinStandardHelpOptions = true,
            description = "Each image as the language model sees it: the Q-Former's query outputs.")
    static final class FeaturesJob extends ModelJob {
        @Override
        Dataset<Row> run(Dataset<Row> rows, SparkSession spark) {
            return configure(new Blip2FeatureExtractor(), model).transform(rows);
        }
    }

    @Command(name = "capfilt", mixinStandardHelpOptions = true,
            description = {"BLIP's CapFilt as BLIP-2 used it: sample captions of each image, rank them with its web "
                    + "text by a retrieval model's ITC, keep the best; written as `blip2 finetune --train` reads it "
                    + "(caption rows: an empty question, the caption as the answer).",
                    "",
                    "Example: blip2 spark capfilt --captioner blip2-opt-2.7b --retrieval blip2-itm-vit-g "
                            + "--table web.parquet --text-column alt_text -o captions.jsonl"})
    static final class CapFiltJob extends Job {
        @Option(names = "--captioner", required = true, paramLabel = "MODEL", description = "The captioning model.")
        String captioner;

        @Option(names = "--retrieval", required = true, paramLabel = "MODEL", description = "The retrieval model that ranks.")
        String retrieval;

        @Option(names = "--text-column", paramLabel = "NAME",
                description = "A table's column of each image's web text, ranked with the samples (default: text, where the table has it).")
        String textColumn;

        @Option(names = "--samples", defaultValue = "" + CapFilt.SAMPLES, paramLabel = "K",
                description = "Captions sampled per image (default: ${DEFAULT-VALUE}, the BLIP-2 paper's).")
        int samples;

        @Option(names = "--keep", defaultValue = "" + CapFilt.KEEP, paramLabel = "N",
                description = "Captions kept per image (default: ${DEFAULT-VALUE}, the BLIP-2 paper's).")
        int keep;

        @Option(names = "--top-p", defaultValue = "" + CapFilt.TOP_P, paramLabel = "P",
                description = "Nucleus sampling's p (default: ${DEFAULT-VALUE}, BLIP's CapFilt).")
        double topP;

        @Option(names = "--max-new-tokens", defaultValue = "" + CapFilt.MAX_NEW_TOKENS, paramLabel = "N",
                description = "Tokens per caption at most (default: ${DEFAULT-VALUE}, BLIP's CapFilt).")
        int maxNewTokens;

        @Option(names = "--seed", defaultValue = "0", paramLabel = "N",
                description = "The job's seed; each image's comes from it and its path (default: ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--prompt", defaultValue = "", paramLabel = "TEXT", description = "Text the captions continue (default: none).")
        String prompt;

        @Override
        Dataset<Row> run(Dataset<Row> rows, SparkSession spark) {
            String web = textColumn != null ? textColumn
                    : List.of(rows.schema().fieldNames()).contains("text") ? "text" : null;
            CapFilt.Settings settings = new CapFilt.Settings(ModelReference.of(captioner), ModelReference.of(retrieval),
                    samples, keep, topP, maxNewTokens, seed, prompt, input.imageColumn(), web, batchSize, !noExif, maxPixels);
            return CapFilt.rank(rows, settings, HadoopSettings.of(spark.sparkContext().hadoopConfiguration()));
        }

        @Override
        void write(Dataset<Row> ranked, JobOutput.Target target, SparkSession spark, PrintWriter out) {
            // computed once for the pairs and the errors
            ranked.persist(StorageLevel.MEMORY_AND_DISK());
            try {
                target.write(CapFilt.pairs(ranked, input.imageColumn()));
                Dataset<Row> failed = ranked.where(col("error").isNotNull()).select(col(input.imageColumn()), col("error"));
                long errors = failed.count();
                long pairs = target.read(spark).count();
                out.printf("wrote %s: %d captions of %d images; %d failed%n", output.output, pairs,
                        ranked.count() - errors, errors);
                failed.limit(20).collectAsList().forEach(r -> out.println("  " + r.getString(1)));
            } finally {
                ranked.unpersist();
            }
        }
    }
}
