package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.cli.ImageArguments;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.when;

/**
 * What a {@code blip2 spark} job reads: image files, folders and glob patterns as {@code blip2 caption} takes
 * them (one row each, the path in the {@link #IMAGE} column), or a table of rows (Parquet, CSV with a header,
 * JSON Lines) whose image column holds paths or URIs. A table's relative paths are relative to its folder, as
 * {@code blip2 finetune} reads its JSONL.
 */
final class JobInput {
    /** The image column of rows made from file arguments, and the default of {@code --image-column}. */
    static final String IMAGE = "image";
    private static final Pattern ABSOLUTE = Pattern.compile("^([A-Za-z][A-Za-z0-9+.-]*:|/).*");

    @Parameters(paramLabel = "IMAGE", arity = "0..*",
            description = "Image files, folders of images, or glob patterns such as 'photos/*.jpg' (quoted); or --table.")
    List<String> images = new ArrayList<>();

    @Option(names = "--table", paramLabel = "FILE",
            description = "A table of rows instead: Parquet, CSV (with a header) or JSON Lines, by its extension or --table-format.")
    String table;

    @Option(names = "--table-format", paramLabel = "parquet|csv|jsonl", description = "The table's format (default: its extension's).")
    String tableFormat;

    @Option(names = "--image-column", defaultValue = IMAGE, paramLabel = "NAME",
            description = "The table's column of image paths or URIs (default: ${DEFAULT-VALUE}).")
    String imageColumn;

    @Option(names = "--partitions", paramLabel = "N",
            description = "Split the rows into N partitions (default: one per file split of a table; Spark's default parallelism for files).")
    Integer partitions;

    /** The rows; their image column is {@link #imageColumn()}. */
    Dataset<Row> read(SparkSession spark) {
        if (table != null && !images.isEmpty()) {
            throw new BadInputException("give image files or --table, not both");
        }
        if (table == null && images.isEmpty()) {
            throw new BadInputException("no input: give image files, folders or glob patterns, or --table FILE");
        }
        if (partitions != null && partitions < 1) {
            throw new BadInputException("--partitions must be at least 1, not " + partitions);
        }
        Dataset<Row> rows = table != null ? readTable(spark) : readFiles(spark);
        return partitions != null ? rows.repartition(partitions) : rows;
    }

    String imageColumn() {
        return table != null ? imageColumn : IMAGE;
    }

    /** The local paths the job reads (the table, or the image files), which its output may not be. */
    List<Path> localInputs() {
        if (table != null) {
            return hasScheme(table) ? List.of() : List.of(Path.of(table));
        }
        return images.stream().filter(name -> !name.contains("*") && !name.contains("?") && !name.contains("["))
                .map(Path::of).toList();
    }

    private Dataset<Row> readFiles(SparkSession spark) {
        List<Row> rows = ImageArguments.expand(images).stream()
                .map(p -> RowFactory.create(p.toAbsolutePath().normalize().toString())).toList();
        StructType schema = new StructType().add(IMAGE, DataTypes.StringType, false);
        int slices = partitions != null ? partitions : spark.sparkContext().defaultParallelism();
        // one row per file and slice from the list's order, so that a rerun splits them the same way
        return spark.createDataFrame(new org.apache.spark.api.java.JavaSparkContext(spark.sparkContext())
                .parallelize(rows, Math.max(1, Math.min(slices, rows.size()))), schema);
    }

    private Dataset<Row> readTable(SparkSession spark) {
        String format = tableFormat != null ? tableFormat.toLowerCase(Locale.ROOT) : extension(table);
        Dataset<Row> rows = switch (format) {
            case "parquet" -> spark.read().parquet(table);
            case "csv" -> spark.read().option("header", true).option("mode", "FAILFAST").csv(table);
            case "jsonl", "json", "ndjson" -> spark.read().option("mode", "FAILFAST").json(table);
            default -> throw new BadInputException("--table " + table + ": cannot tell its format from its name; "
                    + "give --table-format parquet, csv or jsonl");
        };
        if (!Arrays.asList(rows.schema().fieldNames()).contains(imageColumn)) {
            throw new BadInputException("--table " + table + ": no column " + imageColumn + " (its columns: "
                    + String.join(", ", rows.schema().fieldNames()) + "); name the image column with --image-column");
        }
        return hasScheme(table) ? rows : relativeToTable(rows);
    }

    /** A local table's relative image paths made absolute from its folder. */
    private Dataset<Row> relativeToTable(Dataset<Row> rows) {
        Path file = Path.of(table).toAbsolutePath().normalize();
        Path folder = Files.isDirectory(file) ? file : file.getParent();
        Column image = col(imageColumn);
        return rows.withColumn(imageColumn, when(image.rlike(ABSOLUTE.pattern()), image)
                .otherwise(concat(lit(folder + "/"), image)));
    }

    /** A URI (hdfs:, s3a:, file: ...), not a local path. */
    static boolean hasScheme(String location) {
        return ABSOLUTE.matcher(location).matches() && !location.startsWith("/");
    }

    static String extension(String name) {
        String last = name.replaceAll("/+$", "");
        int dot = last.lastIndexOf('.');
        return dot < 0 || dot < last.lastIndexOf('/') ? "" : last.substring(dot + 1).toLowerCase(Locale.ROOT);
    }
}
