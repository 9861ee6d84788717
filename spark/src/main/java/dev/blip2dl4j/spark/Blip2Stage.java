package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.image.ImageLoader;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import scala.collection.JavaConverters;
import scala.collection.Seq;

import java.util.Arrays;
import java.util.List;

/**
 * What every BLIP-2 stage shares: the model ({@link ModelReference}, loaded once per executor by
 * {@link ExecutorModels}), the image column (a path or URI any Hadoop FileSystem reads, or the bytes of a
 * {@code binaryFile} source's {@code content}), the batch size, how images are decoded, and the error column.
 * Each partition is answered in batches of {@code batchSize} images, rows in their order, every input column
 * passed through; a row whose image or text cannot be used gets its error (naming the input and the problem)
 * and null outputs, and every other row is answered.
 */
public abstract class Blip2Stage extends Transformer implements DefaultParamsWritable {
    private final String uid;
    private final Param<String> model;
    private final Param<String> modelDtype;
    private final Param<String> imageCol;
    private final Param<String> errorCol;
    private final IntParam batchSize;
    private final BooleanParam exifTranspose;
    private final LongParam maxImagePixels;

    protected Blip2Stage(String uid) {
        this.uid = uid;
        model = new Param<>(this, "model", "a catalogue name (pulled into each executor's hub cache) or the path or "
                + "URI of a .b2z artifact on any Hadoop FileSystem (copied once per executor)");
        modelDtype = new Param<>(this, "modelDtype", "for a catalogue name: the storage type to convert it into "
                + "(float32, bfloat16, float16, int8)");
        imageCol = new Param<>(this, "imageCol", "the image column: a path or URI (string) or the file's bytes (binary)");
        errorCol = new Param<>(this, "errorCol", "the output column of each row's error (null when the row was answered)");
        batchSize = new IntParam(this, "batchSize", "images per batch through the model", ParamValidators.inRange(1, 1024));
        exifTranspose = new BooleanParam(this, "exifTranspose", "turn images upright by their EXIF orientation, "
                + "as transformers' load_image does");
        maxImagePixels = new LongParam(this, "maxImagePixels", "images with more pixels are refused before decoding",
                ParamValidators.gtEq(1));
        setDefault(imageCol, "path");
        setDefault(errorCol, "error");
        setDefault(batchSize, 8);
        setDefault(exifTranspose, true);
        setDefault(maxImagePixels, ImageLoader.DEFAULT_MAX_PIXELS);
    }

    @Override
    public String uid() {
        return uid;
    }

    public Param<String> model() {
        return model;
    }

    public Param<String> modelDtype() {
        return modelDtype;
    }

    public Param<String> imageCol() {
        return imageCol;
    }

    public Param<String> errorCol() {
        return errorCol;
    }

    public IntParam batchSize() {
        return batchSize;
    }

    public BooleanParam exifTranspose() {
        return exifTranspose;
    }

    public LongParam maxImagePixels() {
        return maxImagePixels;
    }

    public Blip2Stage setModel(String value) {
        set(model, value);
        return this;
    }

    public Blip2Stage setModelDtype(String value) {
        set(modelDtype, value);
        return this;
    }

    public Blip2Stage setImageCol(String value) {
        set(imageCol, value);
        return this;
    }

    public Blip2Stage setErrorCol(String value) {
        set(errorCol, value);
        return this;
    }

    public Blip2Stage setBatchSize(int value) {
        set(batchSize, value);
        return this;
    }

    public Blip2Stage setExifTranspose(boolean value) {
        set(exifTranspose, value);
        return this;
    }

    public Blip2Stage setMaxImagePixels(long value) {
        set(maxImagePixels, value);
        return this;
    }

    public ModelReference modelReference() {
        if (!isDefined(model)) {
            throw new BadInputException(getClass().getSimpleName() + ": no model set (setModel: a catalogue name or "
                    + "the path of a .b2z artifact)");
        }
        return new ModelReference(getOrDefault(model), isDefined(modelDtype) ? getOrDefault(modelDtype) : null);
    }

    /** The images as the tasks read them. */
    public ImageInput imageInput(StructType schema) {
        String column = getOrDefault(imageCol);
        DataType type = field(schema, column).dataType();
        boolean bytes = type.equals(DataTypes.BinaryType);
        if (!bytes && !type.equals(DataTypes.StringType)) {
            throw new BadInputException("the image column " + column + " is " + type.simpleString()
                    + ": it must hold paths or URIs (string) or the files' bytes (binary)");
        }
        // binaryFile's rows name their file in "path": errors name it rather than the row
        int name = bytes && Arrays.asList(schema.fieldNames()).contains("path")
                && field(schema, "path").dataType().equals(DataTypes.StringType) ? schema.fieldIndex("path") : -1;
        return new ImageInput(schema.fieldIndex(column), bytes, name, (boolean) getOrDefault(exifTranspose),
                (long) getOrDefault(maxImagePixels));
    }

    /** The columns this stage adds before the error column. */
    protected abstract List<StructField> outputFields();

    /** What the tasks run on each batch (checks the input columns it reads). */
    protected abstract BatchTask task(StructType schema);

    @Override
    public StructType transformSchema(StructType schema) {
        imageInput(schema);
        task(schema);
        StructType out = schema;
        for (StructField f : outputFields()) {
            out = out.add(requireNew(out, f));
        }
        return out.add(requireNew(out, DataTypes.createStructField(getOrDefault(errorCol), DataTypes.StringType, true)));
    }

    @Override
    public Dataset<Row> transform(Dataset<?> dataset) {
        StructType schema = dataset.schema();
        StructType out = transformSchema(schema);
        PartitionRunner runner = new PartitionRunner(modelReference(),
                HadoopSettings.of(dataset.sparkSession().sparkContext().hadoopConfiguration()), imageInput(schema),
                task(schema), outputFields().size(), (int) getOrDefault(batchSize));
        return dataset.toDF().mapPartitions(runner, Encoders.row(out));
    }

    @Override
    public Blip2Stage copy(ParamMap extra) {
        return defaultCopy(extra);
    }

    /** A column the stage reads: it must exist, with the type it takes. */
    protected static StructField field(StructType schema, String column) {
        if (!Arrays.asList(schema.fieldNames()).contains(column)) {
            throw new BadInputException("no column " + column + " in the input (its columns: "
                    + String.join(", ", schema.fieldNames()) + ")");
        }
        return schema.apply(column);
    }

    /** A string column the stage reads, by index. */
    protected static int stringColumn(StructType schema, String column, String what) {
        DataType type = field(schema, column).dataType();
        if (!type.equals(DataTypes.StringType)) {
            throw new BadInputException("the " + what + " column " + column + " is " + type.simpleString()
                    + ": it must be a string");
        }
        return schema.fieldIndex(column);
    }

    /** A list as an array column's value: Spark's row encoder takes Scala sequences, not Java lists. */
    protected static <T> Seq<T> array(List<T> values) {
        return JavaConverters.asScalaBuffer(values);
    }

    private static StructField requireNew(StructType schema, StructField f) {
        if (Arrays.asList(schema.fieldNames()).contains(f.name())) {
            throw new BadInputException("the output column " + f.name() + " is already in the input: name another");
        }
        return f;
    }
}
