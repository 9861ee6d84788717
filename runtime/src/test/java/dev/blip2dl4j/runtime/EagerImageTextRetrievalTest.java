package dev.blip2dl4j.runtime;

import dev.blip2dl4j.graphs.ImageTextRetrieval;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.testing.Fixture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static dev.blip2dl4j.testing.Closeness.ACTIVATION_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.BATCH_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.EAGER_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.check;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The eager ITM and ITC heads against transformers (the padded batch of two captions and each caption alone) and
 * against the graphs, from both checkpoint formats.
 */
class EagerImageTextRetrievalTest {

    private static Fixture load(String source) {
        return source.equals("lavis") ? Fixture.loadLavis("itm") : Fixture.load("itm");
    }

    /** Each caption of the fixture's padded batch cut to its own length. */
    private static List<long[]> captions(Fixture fixture) {
        INDArray ids = fixture.ref("itm_input_ids");
        INDArray mask = fixture.ref("itm_attention_mask");
        List<long[]> rows = new ArrayList<>();
        for (int i = 0; i < ids.size(0); i++) {
            rows.add(Arrays.copyOf(ids.getRow(i).toLongVector(), mask.getRow(i).sumNumber().intValue()));
        }
        return rows;
    }

    private static INDArray row(INDArray a, int row) {
        return a.get(NDArrayIndex.interval(row, row + 1));
    }

    @ParameterizedTest(name = "via {0}")
    @ValueSource(strings = {"safetensors", "lavis"})
    void matchingEqualsTransformersAndTheGraph(String source) {
        Fixture fixture = load(source);
        EagerImageTextRetrieval retrieval = new EagerImageTextRetrieval(fixture.config(), fixture.weights());
        INDArray vision = fixture.ref("vision_last_hidden_state");
        INDArray imageTwice = Nd4j.concat(0, vision, vision);
        INDArray ids = fixture.ref("itm_input_ids");
        INDArray mask = fixture.ref("itm_attention_mask");
        String what = "eager itm via " + source + ": ";

        EagerImageTextRetrieval.Matching padded = retrieval.matching(imageTwice,
                new EagerImageTextRetrieval.Texts(ids, mask));
        // padded rows included: the same positions attend to the same keys as in transformers
        check(what + "itm_query_output", fixture.ref("itm_query_output"), padded.qformerOutput(),
                ACTIVATION_TOLERANCE);
        check(what + "itm_logits", fixture.ref("itm_logits"), padded.logits(), ACTIVATION_TOLERANCE);

        Map<String, INDArray> graph = runGraphMatching(fixture, imageTwice, ids, mask);
        check(what + "itm_query_output vs graph", graph.get("output"), padded.qformerOutput(), EAGER_TOLERANCE);
        check(what + "itm_logits vs graph", graph.get("logits"), padded.logits(), EAGER_TOLERANCE);

        // the captions as the zoo gives them: unpadded ids, padded here
        EagerImageTextRetrieval.Texts texts = EagerImageTextRetrieval.Texts.padded(captions(fixture));
        check(what + "padded here vs the fixture's padding", fixture.ref("itm_logits"),
                retrieval.matching(imageTwice, texts).logits(), ACTIVATION_TOLERANCE);
        for (int caption = 0; caption < 2; caption++) {
            EagerImageTextRetrieval.Texts alone = EagerImageTextRetrieval.Texts.padded(
                    List.of(captions(fixture).get(caption)));
            assertNull(alone.attentionMask(), "one text is not padded");
            INDArray aloneLogits = retrieval.matching(vision, alone).logits();
            check(what + "itm_logits_unpadded[" + caption + "]", row(fixture.ref("itm_logits_unpadded"), caption),
                    aloneLogits, ACTIVATION_TOLERANCE);
            check(what + "padded batch row " + caption + " vs alone", aloneLogits, row(padded.logits(), caption),
                    BATCH_TOLERANCE);
        }
    }

    @ParameterizedTest(name = "via {0}")
    @ValueSource(strings = {"safetensors", "lavis"})
    void contrastEqualsTransformers(String source) {
        Fixture fixture = load(source);
        EagerImageTextRetrieval retrieval = new EagerImageTextRetrieval(fixture.config(), fixture.weights());
        INDArray vision = fixture.ref("vision_last_hidden_state");
        String what = "eager itc via " + source + ": ";

        INDArray image = retrieval.imageSide(vision);
        INDArray text = retrieval.textSide(new EagerImageTextRetrieval.Texts(fixture.ref("itm_input_ids"),
                fixture.ref("itm_attention_mask")));
        check(what + "itc_image_embeds", fixture.ref("itc_image_embeds"), image, ACTIVATION_TOLERANCE);
        check(what + "itc_text_embeds", fixture.ref("itc_text_embeds"), text, ACTIVATION_TOLERANCE);
        INDArray similarity = EagerImageTextRetrieval.similarity(image, text);
        check(what + "itc_logits_per_image", fixture.ref("itc_logits_per_image"), similarity, ACTIVATION_TOLERANCE);

        INDArray twoImages = retrieval.imageSide(Nd4j.concat(0, vision, vision));
        for (int i = 0; i < 2; i++) {
            check(what + "batch of 2 images, row " + i, image, row(twoImages, i), BATCH_TOLERANCE);
        }
        for (int caption = 0; caption < 2; caption++) {
            INDArray alone = retrieval.textSide(EagerImageTextRetrieval.Texts.padded(
                    List.of(captions(fixture).get(caption))));
            check(what + "caption " + caption + " alone vs padded", row(text, caption), alone, BATCH_TOLERANCE);
        }
    }

    @Test
    void aQFormerWithoutTextLayersRefusesText() {
        Fixture fixture = Fixture.load("opt");
        EagerQFormer qformer = new EagerQFormer(fixture.config().qformer(), fixture.weights());
        INDArray text = Nd4j.zeros(DataType.FLOAT, 1, 3, fixture.config().qformer().hiddenSize());
        assertThrows(IllegalArgumentException.class, () -> qformer.forward(null, text, null));
    }

    /** The graphs' ITM over the same inputs: the Q-Former output and the logits. */
    private static Map<String, INDArray> runGraphMatching(Fixture fixture, INDArray image, INDArray ids,
                                                          INDArray mask) {
        SameDiff sd = Layers.newSameDiff();
        SDVariable imageIn = sd.placeHolder("image_embeds", DataType.FLOAT, -1, -1,
                fixture.config().vision().hiddenSize());
        SDVariable idsIn = sd.placeHolder("input_ids", DataType.INT64, -1, -1);
        SDVariable maskIn = sd.placeHolder("attention_mask", DataType.INT64, -1, -1);
        ImageTextRetrieval.Matching itm = ImageTextRetrieval.matching(new Layers(sd, fixture.weights()),
                fixture.config(), imageIn, idsIn, maskIn);
        Map<String, INDArray> out = sd.output(Map.of("image_embeds", image, "input_ids", ids, "attention_mask", mask),
                itm.qformerOutput().name(), itm.logits().name());
        return Map.of("output", out.get(itm.qformerOutput().name()), "logits", out.get(itm.logits().name()));
    }
}
