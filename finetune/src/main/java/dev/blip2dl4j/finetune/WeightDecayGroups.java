package dev.blip2dl4j.finetune;

/** Which trained parameters AdamW's weight decay applies to: the parameter groups of the optimizer. */
public enum WeightDecayGroups {
    /** Every trained parameter decays ({@code --decay-all}; the fixtures' reference step). */
    ALL,
    /**
     * LAVIS's groups (RunnerBase.optimizer): no decay for parameters with fewer than 2 dimensions or whose
     * LAVIS name holds "bias", "ln" or "bn". Among the stage-two parameters those are the biases and norm
     * weights, whose Hugging Face names (the ones we carry) say bias, LayerNorm or layernorm; the 2-D weights
     * and the query tokens decay.
     */
    LAVIS;

    public boolean decays(String name, long[] shape) {
        return switch (this) {
            case ALL -> true;
            case LAVIS -> shape.length >= 2 && !name.contains("bias") && !name.contains("LayerNorm")
                    && !name.contains("layernorm");
        };
    }
}
