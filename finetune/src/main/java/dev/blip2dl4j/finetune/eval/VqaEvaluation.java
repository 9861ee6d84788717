package dev.blip2dl4j.finetune.eval;

import dev.blip2dl4j.finetune.data.VqaExample;
import dev.blip2dl4j.finetune.data.VqaPrompt;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import dev.blip2dl4j.zoo.image.DecodedImage;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * A model's answers to VQA examples, generated as LAVIS evaluates VQA ({@link #generation}: the same prompt and
 * end of answer as in training, 5 beams and at most 10 new tokens by default), scored by {@link VqaAccuracy}.
 *
 * @param accuracy   the mean VQA accuracy, 0 to 1
 * @param exactMatch the fraction of exact matches with the answer trained on
 */
public record VqaEvaluation(double accuracy, double exactMatch, List<Prediction> predictions) {

    /** One example's answer and scores. */
    public record Prediction(VqaExample example, String prompt, String answer, double accuracy, boolean exactMatch) {
    }

    /**
     * How LAVIS's {@code predict_answers} generates an answer: beam search, at most {@code maxNewTokens}; for OPT
     * at least one new token, no length penalty, and the end at {@link VqaPrompt#OPT_ANSWER_END}, where training
     * taught a fine-tuned model to stop (at {@code </s>} it would run on to the token limit); for Flan-T5 a
     * length penalty of -1 and the model's own end.
     */
    public static GenerationConfig generation(Blip2 model, int beams, int maxNewTokens) {
        GenerationConfig base = model.generationDefaults().withBeams(beams, 1).withMaxNewTokens(maxNewTokens);
        if (!model.config().useDecoderOnlyLanguageModel()) {
            return base.withPenalties(base.repetitionPenalty(), base.noRepeatNgramSize(), base.minNewTokens(), -1,
                    base.earlyStopping());
        }
        return base.withPenalties(base.repetitionPenalty(), base.noRepeatNgramSize(), 1, 0, base.earlyStopping())
                .withEosTokenIds(List.of(VqaPrompt.optAnswerEndId(model.tokenizer())));
    }

    /**
     * @param batchSize images per generation call
     * @param progress  told how many examples are done after each batch
     */
    public static VqaEvaluation run(Blip2 model, List<VqaExample> examples, VqaPrompt prompt, GenerationConfig generation,
                                    int batchSize, IntConsumer progress) {
        List<Prediction> predictions = new ArrayList<>();
        double accuracy = 0;
        int exact = 0;
        for (int start = 0; start < examples.size(); start += batchSize) {
            List<VqaExample> batch = examples.subList(start, Math.min(start + batchSize, examples.size()));
            List<DecodedImage> images = new ArrayList<>();
            List<String> prompts = new ArrayList<>();
            for (VqaExample e : batch) {
                images.add(model.loadImage(e.image()));
                prompts.add(prompt.format(e.question()));
            }
            List<Caption> answers = model.caption(images, prompts, generation);
            for (int i = 0; i < batch.size(); i++) {
                VqaExample e = batch.get(i);
                String answer = answers.get(i).text();
                double score = VqaAccuracy.accuracy(answer, e.answers());
                boolean match = VqaAccuracy.exactMatch(answer, e.answer());
                predictions.add(new Prediction(e, prompts.get(i), answer, score, match));
                accuracy += score;
                exact += match ? 1 : 0;
            }
            progress.accept(predictions.size());
        }
        int n = Math.max(1, predictions.size());
        return new VqaEvaluation(accuracy / n, (double) exact / n, List.copyOf(predictions));
    }
}
