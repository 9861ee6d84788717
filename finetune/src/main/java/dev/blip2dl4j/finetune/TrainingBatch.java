package dev.blip2dl4j.finetune;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;

/**
 * One batch of stage-two examples, as transformers' {@code Blip2ForConditionalGeneration} takes them with
 * labels.
 *
 * @param image         the frozen image encoder's output {@code [batch, tokens, visionHidden]}
 * @param inputIds      {@code [batch, seq]} int64: for OPT prompt and answer, for T5 the encoder's prompt
 * @param attentionMask {@code [batch, seq]}, 1 = token, 0 = padding
 * @param labels        int64, -100 where a token does not count: for OPT {@code [batch, seq]} aligned with the
 *                      ids (the model shifts them: position t predicts label t+1); for T5 the decoder's
 *                      targets {@code [batch, targetSeq]}
 */
public record TrainingBatch(INDArray image, INDArray inputIds, INDArray attentionMask, INDArray labels) {
    public TrainingBatch {
        if (inputIds.rank() != 2 || !Arrays.equals(inputIds.shape(), attentionMask.shape())) {
            throw new IllegalArgumentException("input ids and attention mask must both be [batch, seq]; got "
                    + Arrays.toString(inputIds.shape()) + " and " + Arrays.toString(attentionMask.shape()));
        }
        if (labels.rank() != 2 || labels.size(0) != inputIds.size(0) || image.size(0) != inputIds.size(0)) {
            throw new IllegalArgumentException("image, ids and labels must have the same batch size; got "
                    + image.size(0) + ", " + inputIds.size(0) + " and " + labels.size(0));
        }
    }

    public long size() {
        return inputIds.size(0);
    }
}
