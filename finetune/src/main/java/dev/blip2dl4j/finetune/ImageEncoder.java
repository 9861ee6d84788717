package dev.blip2dl4j.finetune;

import dev.blip2dl4j.config.VisionConfig;
import dev.blip2dl4j.graphs.Blip2Graph;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.VisionTransformer;
import dev.blip2dl4j.graphs.Weights;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * The frozen image encoder on its own: pixel values to the {@code image_embeds} that a
 * {@link StageTwoGraph} with {@link StageTwoGraph.ImageInput#EMBEDDINGS} reads. Stage two never changes
 * the encoder, so each image is encoded once, however many epochs see it.
 */
public final class ImageEncoder {
    private static final String OUTPUT = "image_embeds";

    private final SameDiff sd;

    private ImageEncoder(SameDiff sd) {
        this.sd = sd;
    }

    public static ImageEncoder build(VisionConfig config, Weights weights) {
        SameDiff sd = Layers.newSameDiff();
        int size = config.imageSize();
        SDVariable pixels = sd.placeHolder(Blip2Graph.PIXEL_VALUES, DataType.FLOAT, -1, 3, size, size);
        sd.identity(OUTPUT, VisionTransformer.build(new Layers(sd, weights), config, pixels).lastHiddenState());
        return new ImageEncoder(sd);
    }

    /** {@code [batch, tokens, hidden]} (after post_layernorm) for {@code pixelValues [batch, 3, size, size]}. */
    public INDArray encode(INDArray pixelValues) {
        return sd.output(Map.of(Blip2Graph.PIXEL_VALUES, pixelValues), OUTPUT).get(OUTPUT);
    }
}
