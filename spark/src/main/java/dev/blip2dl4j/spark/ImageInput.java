package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.image.DecodedImage;
import dev.blip2dl4j.zoo.image.ImageLoader;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Row;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.Serializable;

/**
 * How a task gets a row's image: from a path or URI (read through Hadoop's FileSystem, so {@code hdfs:},
 * {@code s3a:} ... as well as local files) or from bytes already in the row, decoded as the zoo decodes files
 * ({@link ImageLoader}: Pillow's pixels, the same size limits).
 *
 * @param column        the image column's index
 * @param bytes         whether it holds the file's bytes (else a path or URI)
 * @param nameColumn    for bytes: a column naming the file (binaryFile's {@code path}), or -1
 * @param exifTranspose turn images upright by their EXIF orientation
 * @param maxPixels     images with more pixels are refused before decoding (and files larger than an image of
 *                      that many pixels can be, before reading them)
 */
public record ImageInput(int column, boolean bytes, int nameColumn, boolean exifTranspose, long maxPixels)
        implements Serializable {

    /** What errors call the row's image: its path, or its row. */
    public String name(Row row, long rowInPartition, int partition) {
        int named = bytes ? nameColumn : column;
        if (named >= 0 && !row.isNullAt(named)) {
            return row.getString(named);
        }
        return "the image of row " + rowInPartition + " of partition " + partition;
    }

    /** The row's image; a {@link BadInputException} saying what is wrong with it (without its name). */
    public DecodedImage read(Row row, Configuration hadoop) {
        if (row.isNullAt(column)) {
            throw new BadInputException("no image (the image column is null)");
        }
        byte[] data = bytes ? (byte[]) row.get(column) : readFile(row.getString(column), hadoop);
        return ImageLoader.load(data, exifTranspose, maxPixels);
    }

    private byte[] readFile(String location, Configuration hadoop) {
        long maxBytes = ImageLoader.maxBytes(maxPixels);
        try {
            Path path = new Path(location);
            FileSystem fs = path.getFileSystem(hadoop);
            FileStatus status = fs.getFileStatus(path);
            if (status.isDirectory()) {
                throw new BadInputException("is a folder, not an image file");
            }
            if (status.getLen() > maxBytes) {
                throw new BadInputException("the file has " + status.getLen() + " bytes, more than the " + maxBytes
                        + " an image of at most " + maxPixels + " pixels needs (maxImagePixels raises both)");
            }
            try (FSDataInputStream in = fs.open(path)) {
                return in.readNBytes((int) status.getLen());
            }
        } catch (FileNotFoundException e) {
            throw new BadInputException("no such file");
        } catch (IOException e) {
            throw new BadInputException("cannot read the file: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new BadInputException("not a path or URI: " + e.getMessage());
        }
    }
}
