package dev.blip2dl4j.finetune;

import dev.blip2dl4j.model.Labels;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.finetune.data.VqaExample;
import dev.blip2dl4j.finetune.data.VqaPrompt;
import dev.blip2dl4j.zoo.text.Tokenizer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * VQA examples as a {@link TrainingBatch}, with the texts LAVIS trains BLIP-2 on:
 * <ul>
 * <li>OPT (Blip2OPT.forward): {@code prompt + " " + answer + "\n"} (the newline is OPT's end of text for
 *     BLIP-2) after OPT's {@code </s>}; the labels are the ids with the prompt's tokens (counted as the
 *     prompt alone tokenizes, its {@code </s>} included) and the padding set to -100, so that only the
 *     answer and the newline are learnt;</li>
 * <li>T5 (Blip2T5.forward): the prompt into the encoder, the answer with its {@code </s>} as the decoder's
 *     labels.</li>
 * </ul>
 * Rows are padded on the right (mask 0, labels -100), as LAVIS pads them for training.
 */
public final class VqaBatchEncoder {
    private final Blip2Config config;
    private final Tokenizer tokenizer;
    private final VqaPrompt prompt;

    public VqaBatchEncoder(Blip2Config config, Tokenizer tokenizer, VqaPrompt prompt) {
        this.config = config;
        this.tokenizer = tokenizer;
        this.prompt = prompt;
    }

    /** @param imageEmbeds the examples' images as the graph takes them, one row per example */
    public TrainingBatch encode(List<VqaExample> examples, INDArray imageEmbeds) {
        List<long[]> ids = new ArrayList<>();
        List<long[]> labels = new ArrayList<>();
        for (VqaExample e : examples) {
            String question = prompt.format(e.question());
            if (config.text() instanceof OptConfig) {
                String tooLong = trainingLengthProblem(e);
                if (tooLong != null) {
                    throw new BadInputException(e.file(), e.position() + ": " + tooLong);
                }
                long[] text = optText(e);
                int promptLength = tokenizer.encode(question).length;
                long[] l = text.clone();
                Arrays.fill(l, 0, Math.min(promptLength, l.length), Labels.IGNORE_INDEX);
                ids.add(text);
                labels.add(l);
            } else {
                ids.add(tokenizer.encode(question));
                labels.add(tokenizer.encode(e.answer()));
            }
        }
        long pad = config.text().padTokenId() == null ? 0 : config.text().padTokenId();
        return new TrainingBatch(imageEmbeds, padded(ids, pad), mask(ids), padded(labels, Labels.IGNORE_INDEX));
    }

    /**
     * Why the example cannot be trained on, or null: OPT has a fixed number of positions, and the image queries,
     * the prompt, the answer and its end must fit in them (T5's relative positions have no limit).
     */
    public String trainingLengthProblem(VqaExample e) {
        if (!(config.text() instanceof OptConfig opt)) {
            return null;
        }
        int tokens = optText(e).length;
        return config.numQueryTokens() + tokens <= opt.maxPositionEmbeddings() ? null
                : "the question and answer take " + tokens + " tokens; with the " + config.numQueryTokens()
                + " image queries that is more than OPT's " + opt.maxPositionEmbeddings() + " positions";
    }

    /**
     * Why the example's question cannot be answered with up to {@code newTokens} new tokens, or null: as
     * {@link #trainingLengthProblem}, for the prompt and the new tokens.
     */
    public String answerLengthProblem(VqaExample e, int newTokens) {
        if (!(config.text() instanceof OptConfig opt)) {
            return null;
        }
        int tokens = tokenizer.encode(prompt.format(e.question())).length;
        return config.numQueryTokens() + tokens + newTokens <= opt.maxPositionEmbeddings() ? null
                : "the question takes " + tokens + " tokens; with the " + config.numQueryTokens() + " image queries "
                + "and " + newTokens + " new tokens for the answer that is more than OPT's "
                + opt.maxPositionEmbeddings() + " positions";
    }

    /** What LAVIS trains OPT on: the prompt, a space, the answer and its end (a caption row: the caption and its end). */
    private long[] optText(VqaExample e) {
        String question = prompt.format(e.question());
        return tokenizer.encode((question.isEmpty() ? "" : question + " ") + e.answer() + VqaPrompt.OPT_ANSWER_END);
    }

    private static INDArray padded(List<long[]> rows, long value) {
        int longest = rows.stream().mapToInt(r -> r.length).max().orElse(0);
        long[][] out = new long[rows.size()][longest];
        for (int i = 0; i < rows.size(); i++) {
            Arrays.fill(out[i], value);
            System.arraycopy(rows.get(i), 0, out[i], 0, rows.get(i).length);
        }
        return Nd4j.createFromArray(out);
    }

    private static INDArray mask(List<long[]> rows) {
        List<long[]> ones = rows.stream().map(r -> {
            long[] m = new long[r.length];
            Arrays.fill(m, 1);
            return m;
        }).toList();
        return padded(ones, 0);
    }
}
