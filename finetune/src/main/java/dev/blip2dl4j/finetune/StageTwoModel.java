package dev.blip2dl4j.finetune;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.graphs.Blip2Graph;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.QFormer;
import dev.blip2dl4j.graphs.T5;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerOpt;
import dev.blip2dl4j.runtime.EagerOptLoss;
import dev.blip2dl4j.runtime.EagerQFormer;
import dev.blip2dl4j.runtime.EagerQFormerBackward;
import dev.blip2dl4j.runtime.Linear;
import dev.blip2dl4j.runtime.EagerVision;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.OutputStream;
import java.io.PrintStream;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * BLIP-2's stage-two training model: the language-modelling loss of {@code Blip2ForConditionalGeneration}
 * (transformers 4.45, called with labels), with the image encoder and the language model frozen and the
 * Q-Former's query path, {@code query_tokens} and {@code language_projection} trained.
 *
 * <p>The frozen parts are bound to the model's weights as they are; the trained parameters are copies, so that
 * optimizer steps never write into the model's arrays. Which parameters train is decided by what the model reads: every parameter under {@code qformer.},
 * {@code query_tokens} or {@code language_projection.} that the query path uses. The Q-Former's text branch (only
 * in retrieval checkpoints) is never read, so it never trains.
 *
 * <p>The loss, as transformers computes it: OPT's logits of the text positions predict the next label
 * (position t predicts label t+1); T5's decoder reads the labels shifted right (start token, -100 read as
 * padding) and predicts them. Both take the mean cross-entropy over every label of the batch that is not
 * -100.
 *
 * <p>With OPT (BLIP-2's OPT-2.7b and 6.7b) the step runs eagerly, without a graph: the Q-Former and projection
 * forward and backward ({@link EagerQFormerBackward}), the language model's loss and its gradient with respect to
 * the projected queries only ({@link EagerOptLoss}): no gradient of the frozen weights, which a graph's matrix
 * products compute anyway (M2.1's {@code matmul_bp}; measured at full size, the graph's step took 2.6 times the
 * PyTorch peer's). With T5 the whole loss is a SameDiff graph.
 */
public final class StageTwoModel {
    /**
     * {@code [batch, tokens, visionHidden]}: the frozen image encoder's output ({@link EagerVision}), computed
     * outside the graph: nothing trainable depends on the encoder, and inside the graph SameDiff would also
     * differentiate it (its matrix products' backward computes the frozen weights' gradients too).
     */
    public static final String IMAGE_EMBEDS = "image_embeds";
    /** T5: {@code [batch, rows]} int64, the label each decoder position is scored against, -100 = not scored. */
    public static final String TARGETS = "targets";
    public static final String LOSS = "loss";

    private final Blip2Config config;
    /** The trained parameters by name, in the order they are first read. */
    private final Map<String, INDArray> parameters;
    /** T5's graph; null for OPT. */
    private final SameDiff sd;
    /** OPT's trained part and language model; null for T5. */
    private final EagerQFormerBackward queryPath;
    private final EagerOptLoss languageModel;

    private StageTwoModel(Blip2Config config, Map<String, INDArray> parameters, SameDiff sd,
                          EagerQFormerBackward queryPath, EagerOptLoss languageModel) {
        this.config = config;
        this.parameters = parameters;
        this.sd = sd;
        this.queryPath = queryPath;
        this.languageModel = languageModel;
    }

    /**
     * @param weights the model's; a step reads every frozen weight, so {@link dev.blip2dl4j.arrays.ResidentWeights}
     *                over an artifact's make steps faster (process memory on huge pages instead of file pages)
     *                at no cost in resident memory (the mapped pages a step touches stay resident too)
     */
    public static StageTwoModel build(Blip2Config config, Weights weights) {
        if (config.kind() != ModelKind.CONDITIONAL_GENERATION) {
            throw new IllegalArgumentException("stage-two training needs a Blip2ForConditionalGeneration model, not "
                    + config.kind().architecture());
        }
        TrainableCopies copies = new TrainableCopies(weights);
        if (config.text() instanceof OptConfig opt) {
            EagerQFormerBackward queryPath = new EagerQFormerBackward(new EagerQFormer(config.qformer(), copies),
                    Linear.of(copies, Blip2Parameters.languageProjection()));
            return new StageTwoModel(config, copies.copied, null, queryPath,
                    new EagerOptLoss(new EagerOpt(opt, weights)));
        }
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
        T5.Output lm = T5.build(nn, (T5Config) config.text(), input.embeds(), input.attentionMask(), decoderIds);
        SDVariable logits = sd.reshape(lm.logits(), -1, config.text().vocabSize());
        sd.setLossVariables(sd.identity(LOSS, TokenCrossEntropy.mean(sd, logits, sd.reshape(targets, -1),
                config.text().vocabSize())));
        sd.convertToVariables(copies.copied.keySet().stream().map(sd::getVariable).toList());
        createGradientFunction(sd);
        // the graph's variables are its own arrays: those are what training updates
        Map<String, INDArray> parameters = new LinkedHashMap<>();
        copies.copied.keySet().forEach(name -> parameters.put(name, sd.getVariable(name).getArr()));
        return new StageTwoModel(config, parameters, sd, null, null);
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

    public Blip2Config config() {
        return config;
    }

    /** The trained parameters' canonical names, in the order the model first reads them. */
    public List<String> trainableNames() {
        return List.copyOf(parameters.keySet());
    }

    /**
     * The trained parameters by name: the arrays the model reads, so that updating them in place is what
     * trains it.
     */
    public Map<String, INDArray> parameters() {
        return java.util.Collections.unmodifiableMap(parameters);
    }

    /** The mean loss of the batch. */
    public double loss(TrainingBatch batch) {
        if (languageModel != null) {
            try (EagerQFormerBackward.Pass pass = queryPath.forward(batch.image())) {
                return languageModel.loss(pass.projected(), batch.inputIds(), batch.attentionMask(), batch.labels());
            }
        }
        return sd.output(t5Feed(batch), LOSS).get(LOSS).getDouble(0);
    }

    /**
     * @param loss      the batch's mean loss
     * @param gradients d loss / d parameter for every trained parameter, by name
     */
    public record LossAndGradients(double loss, Map<String, INDArray> gradients) {
    }

    public LossAndGradients gradients(TrainingBatch batch) {
        if (languageModel != null) {
            try (EagerQFormerBackward.Pass pass = queryPath.forward(batch.image())) {
                EagerOptLoss.Result lm = languageModel.lossAndGradient(pass.projected(), batch.inputIds(),
                        batch.attentionMask(), batch.labels());
                Map<INDArray, INDArray> byArray = queryPath.backward(pass, lm.gradient());
                lm.gradient().close();
                Map<String, INDArray> gradients = new LinkedHashMap<>();
                parameters.forEach((name, array) -> gradients.put(name, byArray.get(array)));
                return new LossAndGradients(lm.loss(), gradients);
            }
        }
        OutAndGrad result = sd.calculateGradientsAndOutputs(t5Feed(batch), List.of(LOSS), trainableNames());
        return new LossAndGradients(result.getOutputs().get(LOSS).getDouble(0), result.getGradients());
    }

    /** T5's placeholders for {@code batch}: the labels become the targets and, shifted, the decoder's input. */
    private Map<String, INDArray> t5Feed(TrainingBatch batch) {
        Map<String, INDArray> feed = new HashMap<>();
        feed.put(IMAGE_EMBEDS, batch.image());
        feed.put(Blip2Graph.INPUT_IDS, batch.inputIds().castTo(DataType.INT64));
        feed.put(Blip2Graph.ATTENTION_MASK, batch.attentionMask().castTo(DataType.INT64));
        INDArray labels = batch.labels().castTo(DataType.INT64);
        feed.put(Blip2Graph.DECODER_INPUT_IDS, T5.shiftRight(labels, (T5Config) config.text()));
        feed.put(TARGETS, labels);
        if (labels.neq(TokenCrossEntropy.IGNORE_INDEX).castTo(DataType.INT32).sumNumber().longValue() == 0) {
            throw new IllegalArgumentException("the batch has no label to learn from: every label is "
                    + TokenCrossEntropy.IGNORE_INDEX);
        }
        return feed;
    }

    /**
     * The model's weights as training binds them: the stage-two parameters as copies (remembered, in the
     * order they are first read), everything else as it is.
     */
    private static final class TrainableCopies implements Weights {
        private final Weights weights;
        private final Map<String, INDArray> copied = new LinkedHashMap<>();

        TrainableCopies(Weights weights) {
            this.weights = weights;
        }

        static boolean trains(String name) {
            return Blip2Parameters.trainedInStageTwo(name);
        }

        @Override
        public INDArray get(String name) {
            return trains(name) ? copied.computeIfAbsent(name, weights::copy) : weights.get(name);
        }

        @Override
        public boolean contains(String name) {
            return weights.contains(name);
        }
    }
}
