package dev.blip2dl4j.examples;

import dev.blip2dl4j.spark.Blip2Captioner;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Captions every image of a folder with a Spark ML Pipeline in local mode: the folder read by Spark's
 * {@code binaryFile} source, the captioner as the pipeline's stage, one caption (or one error) per file.
 *
 * <pre>examples/run SparkCaptionFolder tiny-opt.b2z fixtures/images-pil/images</pre>
 */
public final class SparkCaptionFolder {
    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: SparkCaptionFolder MODEL FOLDER   (MODEL: a .b2z artifact or a catalogue name)");
            System.exit(2);
        }
        try (SparkSession spark = SparkSession.builder().master("local[2]").appName("caption-folder")
                .config("spark.ui.enabled", "false").getOrCreate()) {
            Dataset<Row> images = spark.read().format("binaryFile").option("recursiveFileLookup", "true")
                    .load(args[1]);
            Blip2Captioner captioner = new Blip2Captioner();
            captioner.setMaxNewTokens(20).setNumBeams(3).setImageCol("content").setModel(args[0]).setBatchSize(4);
            PipelineModel pipeline = new Pipeline().setStages(new PipelineStage[]{captioner}).fit(images);
            for (Row row : pipeline.transform(images).select("path", "caption", "error").orderBy("path").collectAsList()) {
                System.out.println(row.getString(0) + "\t" + (row.isNullAt(2) ? row.getString(1) : "ERROR " + row.getString(2)));
            }
        }
    }
}
