package dev.blip2dl4j.runtime;

import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.model.Labels;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * BLIP-2's language-modelling loss through a frozen Flan-T5 and its gradient with respect to the projected Q-Former
 * queries in front of the prompt, eagerly, as {@link EagerOptLoss} does for OPT: the backward pass computes no
 * weight gradient, only the input gradient through every block (one product per weight, read in its storage
 * type), from the loss through the decoder (into the encoder output, which every decoder block's cross-attention
 * reads) and through the encoder to its input.
 *
 * <p>The loss is transformers' for {@code Blip2ForConditionalGeneration} with T5: the encoder reads the queries and
 * the prompt, the decoder reads the labels shifted right (the caller's {@code decoderInputIds}) and its position t
 * predicts label t; the mean is taken over the labels that are not -100. The forward pass is {@link EagerT5}'s
 * ({@link EagerT5#encode}, {@link EagerT5#teacherForced}), recording a {@link T5Tape}; the lm_head runs on the
 * scored positions only. T5's attention scales no scores and adds a relative position bias:
 * {@link EagerAttention#backward} with scale 1 and the bias as its additive mask.
 */
public final class EagerT5Loss {
    private final EagerT5 model;
    private final T5Config config;
    private final Workspace work = new Workspace();

    public EagerT5Loss(EagerT5 model) {
        this.model = model;
        this.config = model.config();
    }

    /** The loss alone (a forward pass, nothing recorded). Arguments as for {@link #lossAndGradient}. */
    public double loss(INDArray prefix, INDArray inputIds, INDArray attentionMask, INDArray decoderInputIds,
                       INDArray labels) {
        return run(prefix, inputIds, attentionMask, decoderInputIds, labels, false).loss();
    }

    /**
     * @param prefix          {@code [batch, prefix, d_model]}: what the encoder reads before the prompt, always attended
     * @param inputIds        {@code [batch, seq]}, integers: the prompt
     * @param attentionMask   {@code [batch, seq]}, 1 = token, 0 = padding
     * @param decoderInputIds {@code [batch, target]}, integers: the labels shifted right, from decoder_start_token_id
     * @param labels          {@code [batch, target]}, integers, {@link Labels#IGNORE_INDEX} where nothing is learned
     */
    public PrefixLoss lossAndGradient(INDArray prefix, INDArray inputIds, INDArray attentionMask,
                                  INDArray decoderInputIds, INDArray labels) {
        return run(prefix, inputIds, attentionMask, decoderInputIds, labels, true);
    }

    private PrefixLoss run(INDArray prefix, INDArray inputIds, INDArray attentionMask, INDArray decoderInputIds,
                       INDArray labels, boolean backward) {
        int width = config.dModel();
        if (prefix.rank() != 3 || prefix.size(2) != width) {
            throw new IllegalArgumentException("prefix of shape " + Arrays.toString(prefix.shape())
                    + " where [batch, prefix, " + width + "] is expected");
        }
        int batch = (int) prefix.size(0);
        int prefixLength = (int) prefix.size(1);
        long[] promptShape = inputIds.shape();
        long[] targetShape = labels.shape();
        if (promptShape.length != 2 || promptShape[0] != batch || !Arrays.equals(promptShape, attentionMask.shape())
                || targetShape.length != 2 || targetShape[0] != batch
                || !Arrays.equals(targetShape, decoderInputIds.shape())) {
            throw new IllegalArgumentException("ids and attention mask must be [" + batch + ", seq], decoder ids and "
                    + "labels [" + batch + ", target]; got " + Arrays.toString(promptShape) + ", "
                    + Arrays.toString(attentionMask.shape()) + ", " + Arrays.toString(decoderInputIds.shape())
                    + " and " + Arrays.toString(targetShape));
        }
        int seq = prefixLength + (int) promptShape[1];
        long[] targets = Arrays.stream(labels.castTo(DataType.INT64).toLongMatrix()).flatMapToLong(Arrays::stream)
                .toArray();
        int[] scored = IntStream.range(0, targets.length).filter(i -> targets[i] != Labels.IGNORE_INDEX).toArray();
        if (scored.length == 0) {
            throw new IllegalArgumentException("no label to learn from: every label is " + Labels.IGNORE_INDEX);
        }
        INDArray embeds = PromptInputs.embeddings(prefix, model.shared(), inputIds.castTo(DataType.INT64).toLongMatrix());
        float[][] mask = EagerLayers.maskRows(PromptInputs.attentionMask(prefixLength, attentionMask), batch, seq);
        long[][] decoderIds = decoderInputIds.castTo(DataType.INT64).toLongMatrix();
        try (T5Tape tape = backward ? new T5Tape(config.numLayers(), config.numDecoderLayers()) : null) {
            INDArray encoded = model.encode(embeds.reshape((long) batch * seq, width), batch, seq, mask, tape);
            INDArray hidden = model.teacherForced(encoded, mask, decoderIds, tape);
            encoded.close();
            INDArray scoredHidden = work.get("scored", scored.length, width);
            EagerLayers.gatherRows(hidden, scored, scoredHidden, false);
            double headScale = model.headScale();
            if (headScale != 1.0) {
                EagerLayers.scale(scoredHidden, headScale);
            }
            INDArray logits = work.get("logits", scored.length, config.vocabSize());
            model.head().apply(scoredHidden, logits);
            long[] scoredTargets = Arrays.stream(scored).mapToLong(i -> targets[i]).toArray();
            double loss = EagerOptLoss.crossEntropy(logits, scoredTargets, backward);
            if (!backward) {
                return new PrefixLoss(loss, null);
            }
            return new PrefixLoss(loss, backward(tape, logits, scoredHidden, scored, batch, prefixLength, seq,
                    decoderIds[0].length));
        } finally {
            embeds.close();
        }
    }

    /** From d loss / d logits (in {@code logits}) to d loss / d prefix. */
    private INDArray backward(T5Tape tape, INDArray logits, INDArray scoredHidden, int[] scored, int batch,
                              int prefixLength, int seq, int target) {
        int width = config.dModel();
        double eps = config.layerNormEpsilon();
        model.head().backwardToInput(logits, scoredHidden, model.headScale(), false);
        INDArray dHidden = Nd4j.zeros(DataType.FLOAT, (long) batch * target, width);
        EagerOptLoss.scatterRows(scoredHidden, scored, dHidden);
        INDArray gradient = Nd4j.zeros(DataType.FLOAT, (long) batch * target, width);
        EagerLayers.rmsNormBackward(tape.decoderFinalInput, model.decoderFinalNorm(), eps, dHidden, gradient);
        dHidden.close();
        INDArray dEncoded = Nd4j.zeros(DataType.FLOAT, (long) batch * seq, width);
        try (EagerAttention self = new EagerAttention(config.numHeads(), config.dKv(), target, target);
             EagerAttention cross = new EagerAttention(config.numHeads(), config.dKv(), target, seq)) {
            for (int i = config.numDecoderLayers() - 1; i >= 0; i--) {
                EagerT5.DecoderBlock block = model.decoderBlock(i);
                T5Tape.Block record = tape.decoder[i];
                feedForwardBackward(block.feedForwardNorm(), block.feedForward(), record, gradient);
                crossAttentionBackward(block, record, cross, tape.crossMask, gradient, dEncoded);
                attentionBackward(block.selfNorm(), block.self(), record, self, tape.decoderBias, gradient);
            }
        }
        gradient.close();
        INDArray dInput = Nd4j.zeros(DataType.FLOAT, (long) batch * seq, width);
        EagerLayers.rmsNormBackward(tape.encoderFinalInput, model.encoderFinalNorm(), eps, dEncoded, dInput);
        dEncoded.close();
        try (EagerAttention self = new EagerAttention(config.numHeads(), config.dKv(), seq, seq)) {
            for (int i = config.numLayers() - 1; i >= 0; i--) {
                EagerT5.EncoderBlock block = model.encoderBlock(i);
                T5Tape.Block record = tape.encoder[i];
                feedForwardBackward(block.feedForwardNorm(), block.feedForward(), record, dInput);
                attentionBackward(block.attentionNorm(), block.attention(), record, self, tape.encoderBias, dInput);
            }
        }
        INDArray prefixGradient = dInput.reshape(batch, seq, width)
                .get(NDArrayIndex.all(), NDArrayIndex.interval(0, prefixLength), NDArrayIndex.all()).dup('c');
        dInput.close();
        return prefixGradient;
    }

    /**
     * {@code gradient} (d loss / d the residual stream after {@code x += ff(rmsNorm(x))}) becomes d loss / d x in
     * place; gated: {@code ff = wo(act(wi_0 n) * wi_1 n)}.
     */
    private void feedForwardBackward(INDArray norm, EagerT5.FeedForward ff, T5Tape.Block record, INDArray gradient) {
        long rows = gradient.size(0);
        INDArray dHidden = work.get("dHidden", rows, config.dFf());
        INDArray dNormed = work.get("dNormed", rows, config.dModel());
        ff.wo().backwardToInput(gradient, dHidden, 1.0, false);
        if (ff.wi1() != null) {
            // d gate = dh * act(a); d act = dh * gate
            INDArray dGate = work.get("dGate", rows, config.dFf());
            dGate.assign(record.preActivation);
            EagerLayers.activation(config.denseActFn(), dGate, work);
            EagerLayers.multiply(dGate, dHidden);
            EagerLayers.multiply(dHidden, record.gate);
            EagerLayers.activationBackward(config.denseActFn(), dHidden, record.preActivation, work);
            ff.wi0().backwardToInput(dHidden, dNormed, 1.0, false);
            ff.wi1().backwardToInput(dGate, dNormed, 1.0, true);
        } else {
            EagerLayers.activationBackward(config.denseActFn(), dHidden, record.preActivation, work);
            ff.wi0().backwardToInput(dHidden, dNormed, 1.0, false);
        }
        EagerLayers.rmsNormBackward(record.feedForwardInput, norm, config.layerNormEpsilon(), dNormed, gradient);
    }

    /** The same for {@code x += o(attention(rmsNorm(x)))}, self-attention with the additive {@code bias}. */
    private void attentionBackward(INDArray norm, EagerT5.Attention attention, T5Tape.Block record,
                                   EagerAttention heads, INDArray bias, INDArray gradient) {
        long rows = gradient.size(0);
        int inner = config.innerDim();
        INDArray dContext = work.get("dContext", rows, inner);
        INDArray dQ = work.get("dQ", rows, inner);
        INDArray dK = work.get("dK", rows, inner);
        INDArray dV = work.get("dV", rows, inner);
        INDArray dNormed = work.get("dNormed", rows, config.dModel());
        attention.o().backwardToInput(gradient, dContext, 1.0, false);
        heads.backward(record.q, record.k, record.v, 1.0, dContext, dQ, dK, dV, bias);
        attention.q().backwardToInput(dQ, dNormed, 1.0, false);
        attention.k().backwardToInput(dK, dNormed, 1.0, true);
        attention.v().backwardToInput(dV, dNormed, 1.0, true);
        EagerLayers.rmsNormBackward(record.input, norm, config.layerNormEpsilon(), dNormed, gradient);
    }

    /**
     * The same for {@code x += o(attention(q(rmsNorm(x)), k(encoded), v(encoded)))}; the keys' and values' gradients
     * go on to the encoder output, added to {@code dEncoded}.
     */
    private void crossAttentionBackward(EagerT5.DecoderBlock block, T5Tape.Block record, EagerAttention heads,
                                        INDArray mask, INDArray gradient, INDArray dEncoded) {
        long rows = gradient.size(0);
        int inner = config.innerDim();
        INDArray dContext = work.get("dContext", rows, inner);
        INDArray dQ = work.get("dQ", rows, inner);
        INDArray dK = work.get("dCrossKeys", dEncoded.size(0), inner);
        INDArray dV = work.get("dCrossValues", dEncoded.size(0), inner);
        INDArray dNormed = work.get("dNormed", rows, config.dModel());
        block.cross().o().backwardToInput(gradient, dContext, 1.0, false);
        heads.backward(record.crossQ, record.crossKeys, record.crossValues, 1.0, dContext, dQ, dK, dV, mask);
        block.cross().k().backwardToInput(dK, dEncoded, 1.0, true);
        block.cross().v().backwardToInput(dV, dEncoded, 1.0, true);
        block.cross().q().backwardToInput(dQ, dNormed, 1.0, false);
        EagerLayers.rmsNormBackward(record.crossInput, block.crossNorm(), config.layerNormEpsilon(), dNormed,
                gradient);
    }
}
