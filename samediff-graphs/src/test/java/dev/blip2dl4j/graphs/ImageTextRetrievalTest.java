package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.graphs.ImageTextRetrieval;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.testing.Fixture;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;
import java.util.Map;

import static dev.blip2dl4j.testing.Closeness.ACTIVATION_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.BATCH_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.check;

/**
 * ITM and ITC heads of the retrieval model against transformers, from both checkpoint formats: the two
 * captions as a padded batch, and each caption alone without padding.
 */
class ImageTextRetrievalTest {

    /** Placeholders for the vision output and the BERT ids and mask (int64, as the tokenizer gives them). */
    private record Inputs(SameDiff sd, SDVariable image, SDVariable ids, SDVariable mask) {
        static Inputs create(Blip2Config config) {
            SameDiff sd = SameDiff.create();
            return new Inputs(sd,
                    sd.placeHolder("image_embeds", DataType.FLOAT, -1, -1, config.vision().hiddenSize()),
                    sd.placeHolder("input_ids", DataType.INT64, -1, -1),
                    sd.placeHolder("attention_mask", DataType.INT64, -1, -1));
        }

        Map<String, INDArray> run(INDArray image, INDArray ids, INDArray mask, SDVariable... outputs) {
            return sd.output(Map.of("image_embeds", image, "input_ids", ids, "attention_mask", mask),
                    java.util.Arrays.stream(outputs).map(SDVariable::name).toArray(String[]::new));
        }
    }

    private static Fixture load(String source) {
        return source.equals("lavis") ? Fixture.loadLavis("itm") : Fixture.load("itm");
    }

    /** Caption {@code row} of the padded batch, cut to its own length: ids and an all-ones mask. */
    private static INDArray[] unpadded(INDArray ids, INDArray mask, int row) {
        int length = mask.getRow(row).sumNumber().intValue();
        INDArrayIndex[] cut = {NDArrayIndex.interval(row, row + 1), NDArrayIndex.interval(0, length)};
        return new INDArray[]{ids.get(cut).dup(), mask.get(cut).dup()};
    }

    private static INDArray row(INDArray a, int row) {
        return a.get(NDArrayIndex.interval(row, row + 1));
    }

    @ParameterizedTest(name = "via {0}")
    @ValueSource(strings = {"safetensors", "lavis"})
    void imageTextMatching(String source) {
        Fixture fixture = load(source);
        Inputs in = Inputs.create(fixture.config());
        ImageTextRetrieval.Matching itm = ImageTextRetrieval.matching(
                new Layers(in.sd(), fixture.weights()), fixture.config(), in.image(), in.ids(), in.mask());

        INDArray vision = fixture.ref("vision_last_hidden_state");
        INDArray ids = fixture.ref("itm_input_ids");
        INDArray mask = fixture.ref("itm_attention_mask");
        String what = "itm via " + source + ": ";
        INDArray imageTwice = Nd4j.concat(0, vision, vision);
        Map<String, INDArray> padded = in.run(imageTwice, ids, mask, itm.qformerOutput(), itm.logits());
        check(what + "itm_query_output", fixture.ref("itm_query_output"), padded.get(itm.qformerOutput().name()),
                ACTIVATION_TOLERANCE);
        INDArray logits = padded.get(itm.logits().name());
        check(what + "itm_logits", fixture.ref("itm_logits"), logits, ACTIVATION_TOLERANCE);

        for (int caption = 0; caption < 2; caption++) {
            INDArray[] alone = unpadded(ids, mask, caption);
            INDArray aloneLogits = in.run(vision, alone[0], alone[1], itm.logits()).get(itm.logits().name());
            check(what + "itm_logits_unpadded[" + caption + "]", row(fixture.ref("itm_logits_unpadded"), caption),
                    aloneLogits, ACTIVATION_TOLERANCE);
            check(what + "padded batch row " + caption + " vs alone", aloneLogits, row(logits, caption),
                    BATCH_TOLERANCE);
        }
    }

    @ParameterizedTest(name = "via {0}")
    @ValueSource(strings = {"safetensors", "lavis"})
    void imageTextContrast(String source) {
        Fixture fixture = load(source);
        Inputs in = Inputs.create(fixture.config());
        ImageTextRetrieval.Contrast itc = ImageTextRetrieval.contrast(
                new Layers(in.sd(), fixture.weights()), fixture.config(), in.image(), in.ids(), in.mask());
        SDVariable[] outputs = {itc.image().qformerOutput(), itc.image().embeds(), itc.text().embeds(),
                itc.logitsPerImage(), itc.logitsPerText()};
        List<String> references = List.of("qformer_query_last_hidden_state", "itc_image_embeds", "itc_text_embeds",
                "itc_logits_per_image", "itc_logits_per_text");

        INDArray vision = fixture.ref("vision_last_hidden_state");
        INDArray ids = fixture.ref("itm_input_ids");
        INDArray mask = fixture.ref("itm_attention_mask");
        String what = "itc via " + source + ": ";
        Map<String, INDArray> one = in.run(vision, ids, mask, outputs);
        for (int i = 0; i < outputs.length; i++) {
            check(what + references.get(i), fixture.ref(references.get(i)), one.get(outputs[i].name()),
                    ACTIVATION_TOLERANCE);
        }

        // two copies of the image: each row as for the image alone
        Map<String, INDArray> twoImages = in.run(Nd4j.concat(0, vision, vision), ids, mask, outputs);
        for (int image = 0; image < 2; image++) {
            check(what + "batch of 2 images, row " + image + ", image embeds", one.get(itc.image().embeds().name()),
                    row(twoImages.get(itc.image().embeds().name()), image), BATCH_TOLERANCE);
            check(what + "batch of 2 images, row " + image + ", logits per image",
                    one.get(itc.logitsPerImage().name()), row(twoImages.get(itc.logitsPerImage().name()), image),
                    BATCH_TOLERANCE);
        }
        // each caption alone, unpadded: the same as its row of the padded batch
        for (int caption = 0; caption < 2; caption++) {
            INDArray[] alone = unpadded(ids, mask, caption);
            Map<String, INDArray> single = in.run(vision, alone[0], alone[1], itc.text().embeds(), itc.logitsPerText());
            check(what + "caption " + caption + " alone vs padded, text embeds",
                    row(one.get(itc.text().embeds().name()), caption), single.get(itc.text().embeds().name()),
                    BATCH_TOLERANCE);
            check(what + "caption " + caption + " alone vs padded, logits per text",
                    row(one.get(itc.logitsPerText().name()), caption), single.get(itc.logitsPerText().name()),
                    BATCH_TOLERANCE);
        }
    }
}
