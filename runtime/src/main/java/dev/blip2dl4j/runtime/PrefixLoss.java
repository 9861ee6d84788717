package dev.blip2dl4j.runtime;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A frozen language model's loss over a batch whose input starts with a trained prefix (BLIP-2's projected
 * queries), and the gradient with respect to that prefix only: what stage-two training needs from OPT
 * ({@link EagerOptLoss}) and Flan-T5 ({@link EagerT5Loss}).
 *
 * @param loss     the mean cross-entropy over the scored labels
 * @param gradient d loss / d prefix, {@code [batch, prefix, width]}; null when only the loss was asked for
 */
public record PrefixLoss(double loss, INDArray gradient) {
}
