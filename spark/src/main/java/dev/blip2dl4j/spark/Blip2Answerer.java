package dev.blip2dl4j.spark;

import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.types.StructType;

/**
 * Answers each row's question about its image, as {@code blip2 vqa} does (the question in the model's template:
 * "Question: {} Answer:" for OPT, "Question: {} Short answer:" for Flan-T5). Output columns (defaults):
 * {@code answer}, {@code answer_ids}, {@code answer_score}, {@code error}; a null question is that row's error.
 */
public class Blip2Answerer extends GeneratingStage {
    private final Param<String> questionCol;

    public Blip2Answerer() {
        this(Identifiable.randomUID("blip2Answerer"));
    }

    public Blip2Answerer(String uid) {
        super(uid, "answer");
        questionCol = new Param<>(this, "questionCol", "the column of each row's question");
        setDefault(questionCol, "question");
    }

    public Param<String> questionCol() {
        return questionCol;
    }

    public Blip2Answerer setQuestionCol(String value) {
        set(questionCol, value);
        return this;
    }

    @Override
    protected BatchTask task(StructType schema) {
        return generateTask(stringColumn(schema, getOrDefault(questionCol), "question"), "question", true);
    }

    public static MLReader<Blip2Answerer> read() {
        return new DefaultParamsReader<>();
    }

    public static Blip2Answerer load(String path) {
        return read().load(path);
    }
}
