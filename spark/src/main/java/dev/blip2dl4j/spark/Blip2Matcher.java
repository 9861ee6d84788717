package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Match;
import dev.blip2dl4j.zoo.image.DecodedImage;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import java.util.ArrayList;
import java.util.List;

/**
 * How well each row's text describes its image, by a retrieval model ({@code Blip2ForImageTextRetrieval}), as
 * {@code blip2 match} says it: the ITM head's probability and the ITC similarity. Output columns (defaults):
 * {@code itm_probability}, {@code itc_score}, {@code error}; a null text is that row's error.
 */
public class Blip2Matcher extends Blip2Stage {
    private final Param<String> textCol;
    private final Param<String> itmCol;
    private final Param<String> itcCol;

    public Blip2Matcher() {
        this(Identifiable.randomUID("blip2Matcher"));
    }

    public Blip2Matcher(String uid) {
        super(uid);
        textCol = new Param<>(this, "textCol", "the column of each row's text");
        itmCol = new Param<>(this, "itmCol", "the output column of the ITM probability that image and text match");
        itcCol = new Param<>(this, "itcCol", "the output column of the ITC similarity, in [-1, 1]");
        setDefault(textCol, "text");
        setDefault(itmCol, "itm_probability");
        setDefault(itcCol, "itc_score");
    }

    public Param<String> textCol() {
        return textCol;
    }

    public Param<String> itmCol() {
        return itmCol;
    }

    public Param<String> itcCol() {
        return itcCol;
    }

    public Blip2Matcher setTextCol(String value) {
        set(textCol, value);
        return this;
    }

    public Blip2Matcher setItmCol(String value) {
        set(itmCol, value);
        return this;
    }

    public Blip2Matcher setItcCol(String value) {
        set(itcCol, value);
        return this;
    }

    @Override
    protected List<StructField> outputFields() {
        return List.of(DataTypes.createStructField(getOrDefault(itmCol), DataTypes.DoubleType, true),
                DataTypes.createStructField(getOrDefault(itcCol), DataTypes.DoubleType, true));
    }

    @Override
    protected BatchTask task(StructType schema) {
        return new MatchTask(stringColumn(schema, getOrDefault(textCol), "text"));
    }

    record MatchTask(int textColumn) implements BatchTask {
        @Override
        public List<Object[]> run(Blip2 model, List<DecodedImage> images, List<Row> rows) {
            List<String> texts = new ArrayList<>();
            for (Row row : rows) {
                if (row.isNullAt(textColumn)) {
                    throw new BadInputException("no text (its column is null)");
                }
                texts.add(row.getString(textColumn));
            }
            List<Object[]> out = new ArrayList<>();
            for (Match m : model.match(images, texts)) {
                out.add(new Object[]{m.itmProbability(), m.itcScore()});
            }
            return out;
        }
    }

    public static MLReader<Blip2Matcher> read() {
        return new DefaultParamsReader<>();
    }

    public static Blip2Matcher load(String path) {
        return read().load(path);
    }
}
