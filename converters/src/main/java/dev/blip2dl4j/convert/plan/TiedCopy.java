package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.convert.tensor.SourceTensor;

/**
 * A source tensor that the model ties to another one (OPT's lm_head to the token embeddings, T5's
 * embed_tokens to shared). It is not stored; the conversion checks that it holds the same values and
 * warns if not, since the model uses the tensor it is tied to, as transformers does.
 */
public record TiedCopy(SourceTensor source, String canonicalName, String tiedTo) {
}
