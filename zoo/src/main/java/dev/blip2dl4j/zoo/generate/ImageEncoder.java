package dev.blip2dl4j.zoo.generate;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerQFormer;
import dev.blip2dl4j.runtime.EagerVision;
import dev.blip2dl4j.runtime.Linear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The image as generation feeds it to the language model: pixels through the vision encoder, the Q-Former's
 * queries over its output, and the language projection (of the conditional-generation model; the retrieval model
 * has the first two, its image features). Eager, as the language model runs: the same math as
 * the graphs (tests hold them together) at OpenBLAS's speed rather than SameDiff's.
 */
public final class ImageEncoder {
    private final Blip2Config config;
    private final EagerVision vision;
    private final EagerQFormer qformer;
    private final Linear projection;

    public ImageEncoder(Blip2Config config, Weights weights) {
        this.config = config;
        vision = new EagerVision(config.vision(), weights);
        qformer = new EagerQFormer(config.qformer(), weights);
        // the retrieval model has no language model to project to
        projection = config.kind() == ModelKind.CONDITIONAL_GENERATION
                ? Linear.of(weights, Blip2Parameters.languageProjection()) : null;
    }

    /** {@code pixelValues [batch, 3, size, size]} to the projected queries {@code [batch, queries, lm_hidden]}. */
    public INDArray languageInputs(INDArray pixelValues) {
        return project(queries(imageEmbeds(pixelValues)));
    }

    /** The vision encoder's last hidden state {@code [batch, tokens, vision_hidden]}. */
    public INDArray imageEmbeds(INDArray pixelValues) {
        return vision.forward(pixelValues).lastHiddenState();
    }

    /** The Q-Former's query outputs {@code [batch, queries, qformer_hidden]} over the image embeddings. */
    public INDArray queries(INDArray imageEmbeds) {
        return qformer.forward(imageEmbeds).lastHiddenState();
    }

    /** The language projection of the Q-Former's output {@code [batch, queries, qformer_hidden]}. */
    public INDArray project(INDArray queries) {
        long rows = queries.size(0) * queries.size(1);
        INDArray projected = Nd4j.create(DataType.FLOAT, rows, config.text().hiddenSize());
        projection.apply(queries.reshape(rows, queries.size(2)), projected);
        return projected.reshape(queries.size(0), queries.size(1), config.text().hiddenSize());
    }
}
