package dev.blip2dl4j.runtime;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.Blip2Parameters;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.List;

/**
 * The graphs' {@code ImageTextRetrieval} run eagerly (transformers' {@code Blip2ForImageTextRetrieval} after its
 * vision model): image-text matching (ITM), {@code itm_head} averaged over the queries that have read the image
 * and the text together, and image-text contrast (ITC), the best cosine between the projected query outputs of an
 * image and the projected [CLS] output of a text read alone. The Q-Former is {@link EagerQFormer}'s; the text
 * embeddings (word plus absolute position, no norm of their own) are gathered here. A batch of texts of different
 * lengths runs at once, padded on the right and masked as transformers' processor pads them.
 */
public final class EagerImageTextRetrieval {
    /** {@code F.normalize}'s floor on the norm. */
    private static final float NORM_EPS = 1e-12f;

    /**
     * @param inputIds      {@code [batch, seq]} token ids
     * @param attentionMask {@code [batch, seq]}, 1 for a token and 0 for padding; null where no row is padded
     */
    public record Texts(INDArray inputIds, INDArray attentionMask) {
        /** The texts' ids padded on the right to the longest (with id 0, masked), without a mask if none is padded. */
        public static Texts padded(List<long[]> ids) {
            int longest = ids.stream().mapToInt(row -> row.length).max().orElse(0);
            long[][] padded = new long[ids.size()][longest];
            float[][] mask = new float[ids.size()][longest];
            boolean anyPadded = false;
            for (int b = 0; b < ids.size(); b++) {
                long[] row = ids.get(b);
                System.arraycopy(row, 0, padded[b], 0, row.length);
                for (int t = 0; t < row.length; t++) {
                    mask[b][t] = 1;
                }
                anyPadded |= row.length < longest;
            }
            return new Texts(Nd4j.createFromArray(padded), anyPadded ? Nd4j.createFromArray(mask) : null);
        }
    }

    /**
     * @param qformerOutput the Q-Former's last hidden state over the queries and the text {@code [batch, queries +
     *                      seq, hidden]}
     * @param logits        {@code [batch, 2]}: (no match, match)
     */
    public record Matching(INDArray qformerOutput, INDArray logits) {
    }

    private final Blip2Config config;
    private final EagerQFormer qformer;
    private final INDArray wordEmbeddings;
    private final INDArray positionEmbeddings;
    private final Linear itmHead;
    private final Linear visionProjection;
    private final Linear textProjection;

    /** Binds every parameter now, so that a missing one fails here rather than mid-batch. */
    public EagerImageTextRetrieval(Blip2Config config, Weights weights) {
        this.config = config;
        qformer = new EagerQFormer(config.qformer(), weights);
        wordEmbeddings = weights.get(Blip2Parameters.textWordEmbeddings());
        positionEmbeddings = weights.get(Blip2Parameters.textPositionEmbeddings());
        itmHead = Linear.of(weights, Blip2Parameters.itmHead());
        visionProjection = Linear.of(weights, Blip2Parameters.visionProjection());
        textProjection = Linear.of(weights, Blip2Parameters.textProjection());
    }

    /** ITM of image row i of {@code imageEmbeds [batch, imageSeq, visionHidden]} with text row i. */
    public Matching matching(INDArray imageEmbeds, Texts texts) {
        int batch = (int) imageEmbeds.size(0);
        if (texts.inputIds().size(0) != batch) {
            throw new IllegalArgumentException("matching pairs image i with text i: " + batch + " images, "
                    + texts.inputIds().size(0) + " texts");
        }
        int queries = config.numQueryTokens();
        int width = config.qformer().hiddenSize();
        INDArray joint = qformer.forward(imageEmbeds, textEmbeds(texts.inputIds()), texts.attentionMask())
                .lastHiddenState();
        INDArray queryRows = joint.get(NDArrayIndex.all(), NDArrayIndex.interval(0, queries), NDArrayIndex.all())
                .dup('c').reshape((long) batch * queries, width);
        INDArray perQuery = Nd4j.create(DataType.FLOAT, (long) batch * queries, 2);
        itmHead.apply(queryRows, perQuery);
        return new Matching(joint, perQuery.reshape(batch, queries, 2).mean(1));
    }

    /** ITC image side: each query's output, projected and normalised, {@code [batch, queries, dim]}. */
    public INDArray imageSide(INDArray imageEmbeds) {
        INDArray queries = qformer.forward(imageEmbeds).lastHiddenState();
        long rows = queries.size(0) * queries.size(1);
        INDArray projected = Nd4j.create(DataType.FLOAT, rows, config.imageTextHiddenSize());
        visionProjection.apply(queries.reshape(rows, queries.size(2)), projected);
        return normalize(projected).reshape(queries.size(0), queries.size(1), config.imageTextHiddenSize());
    }

    /** ITC text side: the [CLS] output of each text read alone, projected and normalised, {@code [texts, dim]}. */
    public INDArray textSide(Texts texts) {
        INDArray output = qformer.forward(null, textEmbeds(texts.inputIds()), texts.attentionMask()).lastHiddenState();
        INDArray cls = output.get(NDArrayIndex.all(), NDArrayIndex.point(0), NDArrayIndex.all()).dup('c');
        INDArray projected = Nd4j.create(DataType.FLOAT, cls.size(0), config.imageTextHiddenSize());
        textProjection.apply(cls, projected);
        return normalize(projected);
    }

    /**
     * {@code [images, texts]}: for each pair the largest cosine between one of the image's query embeddings
     * {@code [images, queries, dim]} and the text's embedding {@code [texts, dim]} (both from the sides above).
     */
    public static INDArray similarity(INDArray imageSide, INDArray textSide) {
        long images = imageSide.size(0);
        long queries = imageSide.size(1);
        INDArray perQuery = imageSide.reshape(images * queries, imageSide.size(2)).mmul(textSide.transpose());
        return perQuery.reshape(images, queries, textSide.size(0)).max(1);
    }

    /**
     * {@code Blip2TextEmbeddings}: the word embedding of each id plus the absolute position embedding of its place,
     * counted from 0, {@code [batch, seq, hidden]}.
     */
    private INDArray textEmbeds(INDArray inputIds) {
        int batch = (int) inputIds.size(0);
        int seq = (int) inputIds.size(1);
        long positions = positionEmbeddings.size(0);
        if (seq > positions) {
            throw new BadInputException("a text of " + seq + " tokens: the Q-Former reads at most " + positions
                    + "; shorten it");
        }
        long vocabulary = wordEmbeddings.size(0);
        long[] flat = inputIds.reshape((long) batch * seq).toLongVector();
        int[] rows = new int[flat.length];
        int[] places = new int[flat.length];
        for (int i = 0; i < flat.length; i++) {
            if (flat[i] < 0 || flat[i] >= vocabulary) {
                throw new IllegalArgumentException("token id " + flat[i] + " is outside the Q-Former's vocabulary of "
                        + vocabulary);
            }
            rows[i] = (int) flat[i];
            places[i] = i % seq;
        }
        INDArray embeds = Nd4j.create(DataType.FLOAT, (long) batch * seq, config.qformer().hiddenSize());
        EagerLayers.gatherRows(wordEmbeddings, rows, embeds, false);
        EagerLayers.gatherRows(positionEmbeddings, places, embeds, true);
        return embeds.reshape(batch, seq, config.qformer().hiddenSize());
    }

    /** {@code F.normalize(x, dim=-1)} on rows, in place: {@code x / max(|x|, 1e-12)}. */
    private static INDArray normalize(INDArray rows) {
        INDArray norms = rows.norm2(1);
        Transforms.max(norms, NORM_EPS, false);
        return rows.diviColumnVector(norms.reshape(norms.length(), 1));
    }
}
