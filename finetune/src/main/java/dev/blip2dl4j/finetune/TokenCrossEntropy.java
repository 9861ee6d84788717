package dev.blip2dl4j.finetune;

import dev.blip2dl4j.model.Labels;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * PyTorch's {@code CrossEntropyLoss(ignore_index=-100, reduction="mean")} as a graph: the mean, over the
 * targets that are not -100, of minus the log-probability of the target token.
 *
 * <p>The log-softmax is built from primitives: SameDiff's {@code logSoftmax} cannot be differentiated in
 * 1.0.0-M2.1 (gradient creation throws), and reductions take positive axes only (docs/DESIGN.md "DL4J M2.1 pitfalls").
 */
final class TokenCrossEntropy {
    private TokenCrossEntropy() {
    }

    /**
     * @param logits  {@code [rows, vocab]}
     * @param targets {@code [rows]} int64 token ids, -100 where a row does not count
     * @return the scalar mean loss (NaN when no row counts, as in PyTorch)
     */
    static SDVariable mean(SameDiff sd, SDVariable logits, SDVariable targets, int vocab) {
        // subtracting the row maximum keeps exp() finite; its gradient cancels out exactly in the maths
        SDVariable shifted = logits.sub(logits.max(true, 1));
        SDVariable logProbs = shifted.sub(sd.math().log(sd.math().exp(shifted).sum(true, 1)));
        SDVariable counted = sd.neq(targets, (double) Labels.IGNORE_INDEX).castTo(DataType.FLOAT);
        // an ignored target's one-hot row is all zeros (out of range) and its weight 0 besides
        SDVariable picked = logProbs.mul(sd.oneHot(targets, vocab, 1, 1.0, 0.0, DataType.FLOAT)).sum(false, 1);
        return picked.mul(counted).sum().neg().div(counted.sum());
    }
}
