package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import dev.blip2dl4j.zoo.image.DecodedImage;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import dev.blip2dl4j.zoo.generate.GenerationOverrides;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import scala.collection.Seq;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The stages that generate text (captions, answers): transformers' generate() settings as parameters, named as
 * the command line's options; a setting not given is the model's own (its generation_config.json). The outputs:
 * the best sequence's text, ids (as {@code blip2 caption --json} gives them) and score, and optionally every
 * returned sequence (beams kept, or samples drawn).
 */
public abstract class GeneratingStage extends Blip2Stage {
    static final StructType SEQUENCE = new StructType(new StructField[]{
            DataTypes.createStructField("text", DataTypes.StringType, false),
            DataTypes.createStructField("ids", DataTypes.createArrayType(DataTypes.LongType, false), false),
            DataTypes.createStructField("score", DataTypes.DoubleType, false)});

    private final IntParam maxNewTokens;
    private final IntParam minNewTokens;
    private final IntParam numBeams;
    private final IntParam numReturnSequences;
    private final DoubleParam lengthPenalty;
    private final Param<String> earlyStopping;
    private final BooleanParam doSample;
    private final DoubleParam temperature;
    private final IntParam topK;
    private final DoubleParam topP;
    private final LongParam seed;
    private final DoubleParam repetitionPenalty;
    private final IntParam noRepeatNgramSize;
    private final Param<String> outputCol;
    private final Param<String> idsCol;
    private final Param<String> scoreCol;
    private final Param<String> sequencesCol;

    protected GeneratingStage(String uid, String output) {
        super(uid);
        maxNewTokens = new IntParam(this, "maxNewTokens", "tokens to generate at most");
        minNewTokens = new IntParam(this, "minNewTokens", "no end-of-sequence before this many new tokens");
        numBeams = new IntParam(this, "numBeams", "beam search with this many beams (1: greedy or sampling)");
        numReturnSequences = new IntParam(this, "numReturnSequences", "sequences per image (beams kept, or samples)");
        lengthPenalty = new DoubleParam(this, "lengthPenalty", "beam scores divided by length^x");
        earlyStopping = new Param<>(this, "earlyStopping", "when beam search stops: true, false or never");
        doSample = new BooleanParam(this, "doSample", "sample instead of taking the most likely token");
        temperature = new DoubleParam(this, "temperature", "sampling temperature");
        topK = new IntParam(this, "topK", "sample from the k most likely tokens (0: all)");
        topP = new DoubleParam(this, "topP", "sample from the most likely tokens up to probability p");
        seed = new LongParam(this, "seed", "seed for sampling (one per batch: the same batches give the same text)");
        repetitionPenalty = new DoubleParam(this, "repetitionPenalty", "above 1: tokens already generated are less likely");
        noRepeatNgramSize = new IntParam(this, "noRepeatNgramSize", "never repeat an n-gram of this size");
        outputCol = new Param<>(this, "outputCol", "the output column of the best sequence's text");
        idsCol = new Param<>(this, "idsCol", "the output column of the best sequence's ids (as transformers' generate returns them)");
        scoreCol = new Param<>(this, "scoreCol", "the output column of the best sequence's score (beam score, or "
                + "the sum of its tokens' log-probabilities)");
        sequencesCol = new Param<>(this, "sequencesCol", "if set, an output column of every returned sequence "
                + "(text, ids, score), best first");
        setDefault(outputCol, output);
        setDefault(idsCol, output + "_ids");
        setDefault(scoreCol, output + "_score");
    }

    public IntParam maxNewTokens() { return maxNewTokens; }
    public IntParam minNewTokens() { return minNewTokens; }
    public IntParam numBeams() { return numBeams; }
    public IntParam numReturnSequences() { return numReturnSequences; }
    public DoubleParam lengthPenalty() { return lengthPenalty; }
    public Param<String> earlyStopping() { return earlyStopping; }
    public BooleanParam doSample() { return doSample; }
    public DoubleParam temperature() { return temperature; }
    public IntParam topK() { return topK; }
    public DoubleParam topP() { return topP; }
    public LongParam seed() { return seed; }
    public DoubleParam repetitionPenalty() { return repetitionPenalty; }
    public IntParam noRepeatNgramSize() { return noRepeatNgramSize; }
    public Param<String> outputCol() { return outputCol; }
    public Param<String> idsCol() { return idsCol; }
    public Param<String> scoreCol() { return scoreCol; }
    public Param<String> sequencesCol() { return sequencesCol; }

    public GeneratingStage setMaxNewTokens(int value) { set(maxNewTokens, value); return this; }
    public GeneratingStage setMinNewTokens(int value) { set(minNewTokens, value); return this; }
    public GeneratingStage setNumBeams(int value) { set(numBeams, value); return this; }
    public GeneratingStage setNumReturnSequences(int value) { set(numReturnSequences, value); return this; }
    public GeneratingStage setLengthPenalty(double value) { set(lengthPenalty, value); return this; }
    public GeneratingStage setEarlyStopping(String value) { set(earlyStopping, value); return this; }
    public GeneratingStage setDoSample(boolean value) { set(doSample, value); return this; }
    public GeneratingStage setTemperature(double value) { set(temperature, value); return this; }
    public GeneratingStage setTopK(int value) { set(topK, value); return this; }
    public GeneratingStage setTopP(double value) { set(topP, value); return this; }
    public GeneratingStage setSeed(long value) { set(seed, value); return this; }
    public GeneratingStage setRepetitionPenalty(double value) { set(repetitionPenalty, value); return this; }
    public GeneratingStage setNoRepeatNgramSize(int value) { set(noRepeatNgramSize, value); return this; }
    public GeneratingStage setOutputCol(String value) { set(outputCol, value); return this; }
    public GeneratingStage setIdsCol(String value) { set(idsCol, value); return this; }
    public GeneratingStage setScoreCol(String value) { set(scoreCol, value); return this; }
    public GeneratingStage setSequencesCol(String value) { set(sequencesCol, value); return this; }

    /**
     * The settings given, over the model's on the executor. Checked here against transformers' defaults, so that a
     * value out of range is refused when the job is built, not once per row.
     */
    public GenerationOverrides generation() {
        GenerationOverrides o = new GenerationOverrides(opt(maxNewTokens), opt(minNewTokens), opt(numBeams),
                opt(numReturnSequences), opt(lengthPenalty), opt(earlyStopping), opt(doSample), opt(temperature),
                opt(topK), opt(topP), opt(seed), opt(repetitionPenalty), opt(noRepeatNgramSize));
        try {
            o.apply(GenerationConfig.defaults(List.of(), null));
        } catch (BadInputException e) {
            throw new BadInputException(getClass().getSimpleName() + ": " + e.getMessage());
        }
        return o;
    }

    @SuppressWarnings("unchecked")
    private <T> T opt(Param<?> param) {
        return isDefined(param) ? (T) getOrDefault(param) : null;
    }

    @Override
    protected List<StructField> outputFields() {
        List<StructField> fields = new ArrayList<>(Arrays.asList(
                DataTypes.createStructField(getOrDefault(outputCol), DataTypes.StringType, true),
                DataTypes.createStructField(getOrDefault(idsCol), DataTypes.createArrayType(DataTypes.LongType, false), true),
                DataTypes.createStructField(getOrDefault(scoreCol), DataTypes.DoubleType, true)));
        if (isDefined(sequencesCol)) {
            fields.add(DataTypes.createStructField(getOrDefault(sequencesCol), DataTypes.createArrayType(SEQUENCE, false), true));
        }
        return fields;
    }

    /** A caption's output values, in the order of {@link #outputFields()}. */
    static Object[] values(Caption caption, boolean sequences) {
        Caption.Sequence best = caption.sequences().get(0);
        Object[] v = new Object[sequences ? 4 : 3];
        v[0] = best.text();
        v[1] = ids(best.ids());
        v[2] = best.score();
        if (sequences) {
            v[3] = array(caption.sequences().stream().map(s -> RowFactory.create(s.text(), ids(s.ids()), s.score()))
                    .toList());
        }
        return v;
    }

    private static Seq<Long> ids(long[] ids) {
        return array(Arrays.stream(ids).boxed().toList());
    }

    /**
     * Generation for a batch: each row's prompt from its text column (a question goes into the model's question
     * template), or the empty prompt where the stage has no text column.
     */
    record GenerateTask(int textColumn, String what, boolean question, GenerationOverrides generation,
                        boolean sequences) implements BatchTask {
        @Override
        public List<Object[]> run(Blip2 model, List<DecodedImage> images, List<Row> rows) {
            List<String> prompts = new ArrayList<>();
            for (Row row : rows) {
                if (textColumn < 0) {
                    prompts.add("");
                } else if (row.isNullAt(textColumn)) {
                    if (question) {
                        throw new BadInputException("no " + what + " (its column is null)");
                    }
                    prompts.add("");
                } else {
                    prompts.add(question ? model.questionPrompt(row.getString(textColumn)) : row.getString(textColumn));
                }
            }
            GenerationConfig config = generation.apply(model.generationDefaults());
            if (config.maxNewTokens() != null) {
                return model.caption(images, prompts, config).stream().map(c -> values(c, sequences)).toList();
            }
            // transformers' max_length counts the padded prompt: rows of one prompt length go together, so that
            // each row gets the tokens it would get alone, whatever the batch
            Map<Integer, List<Integer>> byLength = new LinkedHashMap<>();
            for (int i = 0; i < prompts.size(); i++) {
                byLength.computeIfAbsent(model.tokenizer().encode(prompts.get(i)).length, k -> new ArrayList<>()).add(i);
            }
            Object[][] out = new Object[prompts.size()][];
            for (List<Integer> rowsOfLength : byLength.values()) {
                List<Caption> captions = model.caption(rowsOfLength.stream().map(images::get).toList(),
                        rowsOfLength.stream().map(prompts::get).toList(), config);
                for (int j = 0; j < rowsOfLength.size(); j++) {
                    out[rowsOfLength.get(j)] = values(captions.get(j), sequences);
                }
            }
            return Arrays.asList(out);
        }
    }

    /** The task of a stage whose prompt or question is in {@code textColumn} (-1: none). */
    protected BatchTask generateTask(int textColumn, String what, boolean question) {
        return new GenerateTask(textColumn, what, question, generation(), isDefined(sequencesCol));
    }
}
