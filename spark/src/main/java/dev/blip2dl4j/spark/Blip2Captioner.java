package dev.blip2dl4j.spark;

import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.Identifiable;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.types.StructType;

/**
 * Captions each row's image, as {@code blip2 caption} does; with a prompt column, continues each row's prompt
 * ("a photo of" ...). Output columns (defaults): {@code caption}, {@code caption_ids}, {@code caption_score},
 * {@code error}.
 */
public class Blip2Captioner extends GeneratingStage {
    private final Param<String> promptCol;

    public Blip2Captioner() {
        this(Identifiable.randomUID("blip2Captioner"));
    }

    public Blip2Captioner(String uid) {
        super(uid, "caption");
        promptCol = new Param<>(this, "promptCol", "if set, the column of each row's prompt (null: no prompt)");
    }

    public Param<String> promptCol() {
        return promptCol;
    }

    public Blip2Captioner setPromptCol(String value) {
        set(promptCol, value);
        return this;
    }

    @Override
    protected BatchTask task(StructType schema) {
        return generateTask(isDefined(promptCol) ? stringColumn(schema, getOrDefault(promptCol), "prompt") : -1,
                "prompt", false);
    }

    public static MLReader<Blip2Captioner> read() {
        return new DefaultParamsReader<>();
    }

    public static Blip2Captioner load(String path) {
        return read().load(path);
    }
}
