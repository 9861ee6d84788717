package dev.blip2dl4j.spark;

import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.image.DecodedImage;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import scala.collection.Seq;

import java.util.ArrayList;
import java.util.List;

/**
 * Each row's image as the language model sees it, as {@code Blip2.imageFeatures} gives it: the Q-Former's query
 * outputs, one array of {@code width} floats per query. Output columns (defaults): {@code features},
 * {@code error}.
 */
public class Blip2FeatureExtractor extends Blip2Stage {
    private final Param<String> featuresCol;

    public Blip2FeatureExtractor() {
        this(Identifiable.randomUID("blip2FeatureExtractor"));
    }

    public Blip2FeatureExtractor(String uid) {
        super(uid);
        featuresCol = new Param<>(this, "featuresCol", "the output column of the features: [queries][width] floats");
        setDefault(featuresCol, "features");
    }

    public Param<String> featuresCol() {
        return featuresCol;
    }

    public Blip2FeatureExtractor setFeaturesCol(String value) {
        set(featuresCol, value);
        return this;
    }

    @Override
    protected List<StructField> outputFields() {
        return List.of(DataTypes.createStructField(getOrDefault(featuresCol),
                DataTypes.createArrayType(DataTypes.createArrayType(DataTypes.FloatType, false), false), true));
    }

    @Override
    protected BatchTask task(StructType schema) {
        return new FeaturesTask();
    }

    record FeaturesTask() implements BatchTask {
        @Override
        public List<Object[]> run(Blip2 model, List<DecodedImage> images, List<Row> rows) {
            INDArray features = model.imageFeatures(images).castTo(DataType.FLOAT);
            List<Object[]> out = new ArrayList<>();
            for (int b = 0; b < images.size(); b++) {
                List<Seq<Float>> queries = new ArrayList<>();
                for (float[] query : features.slice(b).toFloatMatrix()) {
                    List<Float> values = new ArrayList<>(query.length);
                    for (float v : query) {
                        values.add(v);
                    }
                    queries.add(array(values));
                }
                out.add(new Object[]{array(queries)});
            }
            return out;
        }
    }

    public static MLReader<Blip2FeatureExtractor> read() {
        return new DefaultParamsReader<>();
    }

    public static Blip2FeatureExtractor load(String path) {
        return read().load(path);
    }
}
