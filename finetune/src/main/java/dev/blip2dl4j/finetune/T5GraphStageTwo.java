package dev.blip2dl4j.finetune;

import dev.blip2dl4j.model.Labels;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.graphs.Blip2Graph;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.QFormer;
import dev.blip2dl4j.graphs.T5;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerVision;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.OutputStream;
import java.io.PrintStream;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The stage-two loss with Flan-T5, as one SameDiff graph (the Q-Former and projection, the language model,
 * {@link TokenCrossEntropy}) that SameDiff differentiates.
 */
public final class T5GraphStageTwo implements StageTwoLoss {
    /**
     * {@code [batch, tokens, visionHidden]}: the frozen image encoder's output ({@link EagerVision}), computed
     * outside the graph: nothing trainable depends on the encoder, and inside the graph SameDiff would also
     * differentiate it (its matrix products' backward computes the frozen weights' gradients too).
     */
    private static final String IMAGE_EMBEDS = "image_embeds";
    /** {@code [batch, rows]} int64, the label each decoder position is scored against, -100 = not scored. */
    private static final String TARGETS = "targets";
    private static final String LOSS = "loss";

    /** For the decoder's input: the labels shifted right. */
    private final T5Config t5;
    /** The trained parameters by name, in the order they are first read: the graph's own variables. */
    private final Map<String, INDArray> parameters;
    private final SameDiff sd;

    T5GraphStageTwo(Blip2Config config, Weights weights) {
        TrainableCopies copies = new TrainableCopies(weights);
        SameDiff sd = Layers.newSameDiff();
        Layers nn = new Layers(sd, copies, name -> !TrainableCopies.trains(name));
        SDVariable imageEmbeds = sd.placeHolder(IMAGE_EMBEDS, DataType.FLOAT, -1, config.vision().numPositions(),
                config.vision().hiddenSize());
        QFormer.Output qformer = QFormer.build(nn, config.qformer(), imageEmbeds);
        SDVariable ids = sd.placeHolder(Blip2Graph.INPUT_IDS, DataType.INT64, -1, -1);
        SDVariable mask = sd.placeHolder(Blip2Graph.ATTENTION_MASK, DataType.INT64, -1, -1);
        SDVariable targets = sd.placeHolder(TARGETS, DataType.INT64, -1, -1);
        SDVariable decoderIds = sd.placeHolder(Blip2Graph.DECODER_INPUT_IDS, DataType.INT64, -1, -1);
        Blip2Graph.LanguageModelInput input = Blip2Graph.languageModelInput(nn, config, qformer.lastHiddenState(),
                ids, mask);
        T5Config t5 = (T5Config) config.text();
        T5.Output lm = T5.build(nn, t5, input.embeds(), input.attentionMask(), decoderIds);
        SDVariable logits = sd.reshape(lm.logits(), -1, config.text().vocabSize());
        sd.setLossVariables(sd.identity(LOSS, TokenCrossEntropy.mean(sd, logits, sd.reshape(targets, -1),
                config.text().vocabSize())));
        sd.convertToVariables(copies.copied().keySet().stream().map(sd::getVariable).toList());
        createGradientFunction(sd);
        // the graph's variables are its own arrays: those are what training updates
        Map<String, INDArray> parameters = new LinkedHashMap<>();
        copies.copied().keySet().forEach(name -> parameters.put(name, sd.getVariable(name).getArr()));
        this.t5 = t5;
        this.parameters = parameters;
        this.sd = sd;
    }

    /**
     * Builds the backward graph now rather than on the first step. SameDiff prints a line to standard output
     * for every op it differentiates, and no logger setting stops it; the command line's standard output is
     * its result, so the lines go nowhere.
     */
    private static void createGradientFunction(SameDiff sd) {
        PrintStream out = System.out;
        System.setOut(new PrintStream(OutputStream.nullOutputStream()));
        try {
            sd.createGradFunction();
        } finally {
            System.setOut(out);
        }
    }

    @Override
    public Map<String, INDArray> parameters() {
        return Collections.unmodifiableMap(parameters);
    }

    @Override
    public double loss(TrainingBatch batch) {
        return sd.output(feed(batch), LOSS).get(LOSS).getDouble(0);
    }

    @Override
    public LossAndGradients gradients(TrainingBatch batch) {
        OutAndGrad result = sd.calculateGradientsAndOutputs(feed(batch), List.of(LOSS), trainableNames());
        return new LossAndGradients(result.getOutputs().get(LOSS).getDouble(0), result.getGradients());
    }

    /** The placeholders for {@code batch}: the labels become the targets and, shifted, the decoder's input. */
    private Map<String, INDArray> feed(TrainingBatch batch) {
        Map<String, INDArray> feed = new HashMap<>();
        feed.put(IMAGE_EMBEDS, batch.image());
        feed.put(Blip2Graph.INPUT_IDS, batch.inputIds().castTo(DataType.INT64));
        feed.put(Blip2Graph.ATTENTION_MASK, batch.attentionMask().castTo(DataType.INT64));
        INDArray labels = batch.labels().castTo(DataType.INT64);
        feed.put(Blip2Graph.DECODER_INPUT_IDS, T5.shiftRight(labels, t5));
        feed.put(TARGETS, labels);
        if (labels.neq(Labels.IGNORE_INDEX).castTo(DataType.INT32).sumNumber().longValue() == 0) {
            throw new IllegalArgumentException("the batch has no label to learn from: every label is "
                    + Labels.IGNORE_INDEX);
        }
        return feed;
    }
}
