package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Collection;
import java.util.Locale;

/**
 * What a {@code blip2 spark} job writes: a folder of Parquet or JSON Lines part files, as Spark writes them
 * ({@code part-*}, then {@code _SUCCESS}). The project's output policy (core's {@code OutputFile}) in Spark's terms:
 * checked before any work starts (never an input, never an existing output without {@code --overwrite}); written
 * through Spark's commit protocol (each task's file is committed once, so a retried task adds no rows and a failed
 * one none) into a hidden staging folder beside the target, {@code .NAME.<pid>.partial}, which is renamed onto the
 * target only when the job has committed: a reader finds the whole output, or the previous one, or none.
 */
final class JobOutput {
    enum Format {
        PARQUET("parquet"), JSONL("json");

        final String source;

        Format(String source) {
            this.source = source;
        }
    }

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT",
            description = "The output folder (Parquet or JSON Lines part files); never an input, never replaced without --overwrite.")
    String output;

    @Option(names = "--format", paramLabel = "parquet|jsonl",
            description = "The output's format (default: by OUT's extension, .parquet or .jsonl).")
    String format;

    @Option(names = "--overwrite", description = "Replace an existing OUT (once the new one is complete).")
    boolean overwrite;

    /** An output checked and ready to be written. */
    record Target(Path path, Format format, FileSystem fs) {
        /** Writes the rows through Spark's commit protocol, then puts them in place of what was there. */
        void write(Dataset<Row> rows) {
            Path staging = sibling(path, ".partial");
            try {
                fs.delete(staging, true);   // a staging folder with our process id is a dead process's
                rows.write().mode(SaveMode.ErrorIfExists).format(format.source).option("ignoreNullFields", false)
                        .save(staging.toString());
                if (fs.exists(path)) {
                    Path previous = sibling(path, ".previous");
                    fs.delete(previous, true);
                    move(path, previous);
                    move(staging, path);
                    fs.delete(previous, true);
                } else {
                    move(staging, path);
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write " + path, e);
            } finally {
                try {
                    fs.delete(staging, true);
                } catch (IOException ignored) {
                    // a hidden folder named for this process; the next write of the same output with our id deletes it
                }
            }
        }

        private void move(Path from, Path to) throws IOException {
            if (!fs.rename(from, to)) {
                throw new IOException("cannot rename " + from + " to " + to);
            }
        }

        /** The rows of the written output. */
        Dataset<Row> read(SparkSession spark) {
            return spark.read().format(format.source).load(path.toString());
        }

        private static Path sibling(Path target, String suffix) {
            return new Path(target.getParent(), "." + target.getName() + "." + ProcessHandle.current().pid() + suffix);
        }
    }

    /**
     * The output, checked against the policy before any work: its format known, not one of {@code localInputs}
     * (nor inside or around one), not existing unless {@code --overwrite}.
     */
    Target check(SparkSession spark, Collection<java.nio.file.Path> localInputs) {
        Format f = format();
        try {
            Path path = new Path(output);
            FileSystem fs = path.getFileSystem(spark.sparkContext().hadoopConfiguration());
            path = fs.makeQualified(path);
            if ("file".equals(fs.getScheme())) {
                java.nio.file.Path local = java.nio.file.Path.of(path.toUri()).normalize();
                for (java.nio.file.Path input : localInputs) {
                    java.nio.file.Path in = input.toAbsolutePath().normalize();
                    if (local.startsWith(in) || in.startsWith(local)) {
                        throw new BadInputException(output + " is " + (local.equals(in) ? "an input of this job"
                                : local.startsWith(in) ? "inside the input " + input : "around the input " + input)
                                + ": it is never overwritten; give another output path");
                    }
                }
            }
            if (fs.exists(path) && !overwrite) {
                throw new BadInputException(output + " already exists and is not replaced (--overwrite replaces it); "
                        + "give another output path");
            }
            if (path.getParent() != null && !fs.exists(path.getParent())) {
                throw new BadInputException(output + " cannot be written: " + path.getParent() + " is not a directory");
            }
            return new Target(path, f, fs);
        } catch (IOException e) {
            throw new BadInputException(output + " cannot be written (" + e.getMessage() + ")");
        } catch (IllegalArgumentException e) {
            throw new BadInputException(output + " is not a path or URI (" + e.getMessage() + ")");
        }
    }

    private Format format() {
        String name = format != null ? format.toLowerCase(Locale.ROOT) : JobInput.extension(output);
        return switch (name) {
            case "parquet" -> Format.PARQUET;
            case "jsonl", "json", "ndjson" -> Format.JSONL;
            default -> throw new BadInputException(format != null ? "--format must be parquet or jsonl, not " + format
                    : output + ": cannot tell the output's format from its name; give --format parquet or jsonl");
        };
    }
}
