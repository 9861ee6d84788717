package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.convert.tensor.TensorSource;

/** A checkpoint and what it is to the model: one of the parts a conversion assembles. */
public record RoledSource(SourceRole role, TensorSource source) {
}
