package dev.blip2dl4j.examples;

import dev.blip2dl4j.cli.ImageArguments;
import dev.blip2dl4j.spark.CapFilt;
import dev.blip2dl4j.spark.HadoopSettings;
import dev.blip2dl4j.spark.ModelReference;
import dev.blip2dl4j.zoo.image.ImageLoader;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.util.List;

/**
 * CapFilt on a folder of images, in this JVM (Spark's local mode): samples captions of each image with a captioning
 * model, ranks them by a retrieval model's ITC, keeps the best two, and writes them as {@code blip2 finetune}'s
 * training data (a folder of JSON Lines parts). {@code blip2 spark capfilt} is the same job from the command line.
 *
 * <pre>examples/run CapFiltDataset CAPTIONER.b2z RETRIEVAL.b2z fixtures/images-pil/images OUT.jsonl</pre>
 */
public final class CapFiltDataset {
    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: CapFiltDataset CAPTIONER RETRIEVAL IMAGE_FOLDER OUT.jsonl");
            System.exit(2);
        }
        try (SparkSession spark = SparkSession.builder().master("local[*]").appName("CapFiltDataset").getOrCreate()) {
            List<Row> images = ImageArguments.expand(List.of(args[2])).stream()
                    .map(p -> RowFactory.create(p.toAbsolutePath().toString())).toList();
            Dataset<Row> rows = spark.createDataFrame(images, new StructType().add("image", DataTypes.StringType));
            CapFilt.Settings settings = new CapFilt.Settings(ModelReference.of(args[0]), ModelReference.of(args[1]),
                    CapFilt.SAMPLES, CapFilt.KEEP, CapFilt.TOP_P, CapFilt.MAX_NEW_TOKENS, 0, "", "image", null, 4, true,
                    ImageLoader.DEFAULT_MAX_PIXELS);
            Dataset<Row> ranked = CapFilt.rank(rows, settings, HadoopSettings.of(spark.sparkContext().hadoopConfiguration()))
                    .cache();
            // Spark's commit protocol: the folder is whole once _SUCCESS is in it; it is never overwritten
            CapFilt.pairs(ranked, "image").write().json(args[3]);
            spark.read().json(args[3]).orderBy("image", "rank").collectAsList().forEach(r -> System.out.printf(
                    "%-40s %d  itc %6.3f  %s%n", r.getString(r.fieldIndex("image")), r.getLong(r.fieldIndex("rank")),
                    r.getDouble(r.fieldIndex("itc")), r.getString(r.fieldIndex("answer"))));
            ranked.where("error IS NOT NULL").collectAsList().forEach(r ->
                    System.out.println("failed: " + r.getString(r.fieldIndex("error"))));
        }
    }
}
