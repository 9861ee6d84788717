package dev.blip2dl4j.zoo;

/**
 * How well a text describes an image, by the retrieval model's two heads.
 *
 * @param itmProbability the image-text matching head's probability that they match (softmax of its two logits)
 * @param itcScore       the contrastive head's similarity: the highest cosine between the image's query
 *                       embeddings and the text's [CLS] embedding, in [-1, 1]
 */
public record Match(double itmProbability, double itcScore) {
}
