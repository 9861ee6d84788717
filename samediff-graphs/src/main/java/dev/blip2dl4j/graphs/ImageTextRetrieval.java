package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.Blip2Parameters;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The stage-one heads on the Q-Former (transformers' {@code Blip2ForImageTextRetrieval} after its vision
 * model): image-text matching (ITM), a two-way classifier over the queries that have read both the image
 * and the text, and image-text contrast (ITC), cosine similarity between separately embedded images and
 * texts. Inputs are the vision model's {@code last_hidden_state} {@code [batch, imageSeq, visionHidden]} and
 * BERT token ids with their attention mask {@code [batch, seq]}.
 */
public final class ImageTextRetrieval {
    /** {@code F.normalize}'s floor on the norm. */
    private static final float NORM_EPS = 1e-12f;

    private ImageTextRetrieval() {
    }

    /**
     * @param qformerOutput the Q-Former's last hidden state over {@code cat(queries, text)}
     * @param logits        {@code [batch, 2]}: (no match, match)
     */
    public record Matching(SDVariable qformerOutput, SDVariable logits) {
    }

    /**
     * @param qformerOutput the Q-Former's output for the queries alone {@code [batch, queries, hidden]}
     * @param embeds        L2-normalised {@code vision_projection} of each query {@code [batch, queries, dim]}
     */
    public record ImageSide(SDVariable qformerOutput, SDVariable embeds) {
    }

    /**
     * @param qformerOutput the Q-Former's output for the text alone {@code [batch, seq, hidden]}
     * @param embeds        L2-normalised {@code text_projection} of the [CLS] row {@code [batch, dim]}
     */
    public record TextSide(SDVariable qformerOutput, SDVariable embeds) {
    }

    /**
     * @param logitsPerImage {@code [images, texts]}: the best cosine over the image's queries, no temperature
     * @param logitsPerText  its transpose
     */
    public record Contrast(ImageSide image, TextSide text, SDVariable logitsPerImage, SDVariable logitsPerText) {
    }

    /**
     * ITM of image {@code i} with text {@code i} (both batches the same size): the queries and the text run
     * through the Q-Former together, and {@code itm_head}'s logits are averaged over the query positions.
     */
    public static Matching matching(Layers nn, Blip2Config config, SDVariable imageEmbeds, SDVariable inputIds,
                                    SDVariable attentionMask) {
        SameDiff sd = nn.sd();
        int queries = config.numQueryTokens();
        SDVariable text = QFormerTextEmbeddings.build(nn, inputIds);
        SDVariable joint = QFormer.build(nn, config.qformer(), imageEmbeds, text, attentionMask).lastHiddenState();
        // the first `queries` positions; end mask 0b101: the batch and hidden axes run to their ends
        SDVariable queryOutput = sd.stridedSlice(joint, new long[]{0, 0, 0}, new long[]{0, queries, 0},
                new long[]{1, 1, 1}, 0, 0b101, 0, 0, 0);
        SDVariable queryRows = sd.reshape(queryOutput, -1, config.qformer().hiddenSize());
        SDVariable perQuery = sd.reshape(nn.linear(queryRows, Blip2Parameters.itmHead()), -1, queries, 2);
        return new Matching(joint, perQuery.mean(false, 1));
    }

    /** ITC image side: each query's view of the image, projected and normalised. */
    public static ImageSide imageSide(Layers nn, Blip2Config config, SDVariable imageEmbeds) {
        SameDiff sd = nn.sd();
        SDVariable queries = QFormer.build(nn, config.qformer(), imageEmbeds).lastHiddenState();
        SDVariable rows = sd.reshape(queries, -1, config.qformer().hiddenSize());
        SDVariable embeds = sd.reshape(normalize(nn, nn.linear(rows, Blip2Parameters.visionProjection())),
                -1, config.numQueryTokens(), config.imageTextHiddenSize());
        return new ImageSide(queries, embeds);
    }

    /** ITC text side: the Q-Former's [CLS] output for the text alone, projected and normalised. */
    public static TextSide textSide(Layers nn, Blip2Config config, SDVariable inputIds, SDVariable attentionMask) {
        SameDiff sd = nn.sd();
        SDVariable text = QFormerTextEmbeddings.build(nn, inputIds);
        SDVariable output = QFormer.text(nn, config.qformer(), text, attentionMask).lastHiddenState();
        // shrink mask 0b010 drops the sequence axis: [batch, hidden]
        SDVariable cls = sd.stridedSlice(output, new long[]{0, 0, 0}, new long[]{0, 1, 0}, new long[]{1, 1, 1},
                0, 0b101, 0, 0, 0b010);
        return new TextSide(output, normalize(nn, nn.linear(cls, Blip2Parameters.textProjection())));
    }

    /** ITC of every image with every text. */
    public static Contrast contrast(Layers nn, Blip2Config config, SDVariable imageEmbeds, SDVariable inputIds,
                                    SDVariable attentionMask) {
        ImageSide image = imageSide(nn, config, imageEmbeds);
        TextSide text = textSide(nn, config, inputIds, attentionMask);
        SDVariable perImage = similarity(nn, image.embeds(), text.embeds());
        return new Contrast(image, text, perImage, perImage.permute(1, 0));
    }

    /**
     * {@code [images, texts]}: for each pair the largest cosine between one of the image's query embeddings
     * {@code [images, queries, dim]} and the text embedding {@code [texts, dim]} (both already normalised).
     */
    public static SDVariable similarity(Layers nn, SDVariable imageEmbeds, SDVariable textEmbeds) {
        SameDiff sd = nn.sd();
        SDVariable queries = nn.size(imageEmbeds, 1);
        SDVariable perQuery = sd.mmul(sd.reshape(imageEmbeds, nn.shape(-1, nn.size(imageEmbeds, 2))), textEmbeds,
                false, true, false);
        SDVariable grouped = sd.reshape(perQuery, nn.shape(-1, queries, nn.size(textEmbeds, 0)));
        return sd.max(grouped, false, 1);
    }

    /** {@code F.normalize(x, dim=-1)} on rows: {@code x / max(|x|, 1e-12)}. */
    private static SDVariable normalize(Layers nn, SDVariable rows) {
        SDVariable norm = rows.norm2(true, 1);
        return rows.div(nn.sd().max(norm, nn.constant(Nd4j.scalar(NORM_EPS))));
    }
}
