package dev.blip2dl4j.runtime;

import dev.blip2dl4j.config.QFormerConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.FloatBuffer;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Stage two's trained part, eagerly: the Q-Former's query path ({@link EagerQFormer}) and the language projection,
 * their forward pass recording what the backward pass needs ({@link Pass}), and the backward pass from the projected
 * queries' gradient to every parameter they read. Products go to BLAS ({@code dX = dY W}, {@code dW = dY^T X}); the
 * norms, GELU and softmax backward are loops. It is the math of PyTorch's autograd through transformers'
 * {@code Blip2QFormerModel} (post-LN layers, exact GELU), which the fixtures' gradients check.
 *
 * <p>The parameters are those the Q-Former and the projection were built over, read at each pass: updating them in
 * place (an optimizer) is what trains them. Gradients come back keyed by those arrays.
 */
public final class EagerQFormerBackward {
    private final EagerQFormer qformer;
    private final Linear projection;
    private final QFormerConfig config;
    private final Workspace work = new Workspace();

    public EagerQFormerBackward(EagerQFormer qformer, Linear projection) {
        this.qformer = qformer;
        this.projection = projection;
        this.config = qformer.config();
    }

    /** A forward pass: its output and what its backward pass reads; closing frees it all. */
    public static final class Pass implements AutoCloseable {
        private final QFormerTape tape;
        private final EagerAttention self;
        private final EagerAttention cross;
        /** The Q-Former's output rows {@code [batch * queries, hidden]}, the projection's input. */
        private final INDArray lastHidden;
        private final INDArray projected;

        private Pass(QFormerTape tape, EagerAttention self, EagerAttention cross, INDArray lastHidden,
                     INDArray projected) {
            this.tape = tape;
            this.self = self;
            this.cross = cross;
            this.lastHidden = lastHidden;
            this.projected = projected;
        }

        /** The projected queries {@code [batch, queries, languageWidth]}: the language model's prefix. */
        public INDArray projected() {
            return projected;
        }

        @Override
        public void close() {
            tape.close();
            self.close();
            cross.close();
        }
    }

    /** The projected queries reading {@code imageEmbeds [batch, imageSeq, encoderHidden]}, keeping the activations. */
    public Pass forward(INDArray imageEmbeds) {
        int batch = (int) imageEmbeds.size(0);
        int imageLength = (int) imageEmbeds.size(1);
        int queries = (int) qformer.queryTokens().size(0);
        long rows = (long) batch * queries;
        long languageWidth = projection.shape()[0];
        QFormerTape tape = new QFormerTape();
        INDArray lastHidden = tape.keep(qformer.forward(imageEmbeds, false, tape).lastHiddenState()
                .reshape(rows, config.hiddenSize()));
        INDArray projected = tape.keep(Nd4j.create(DataType.FLOAT, rows, languageWidth));
        projection.apply(lastHidden, projected);
        return new Pass(tape, new EagerAttention(config.numAttentionHeads(), config.headDim(), queries, queries),
                new EagerAttention(config.numAttentionHeads(), config.headDim(), queries, imageLength), lastHidden,
                projected.reshape(batch, queries, languageWidth));
    }

    /**
     * @param dProjected d loss / d {@link Pass#projected()}, {@code [batch, queries, languageWidth]}
     * @return d loss / d parameter for every parameter the pass read, keyed by the parameter's array
     */
    public Map<INDArray, INDArray> backward(Pass pass, INDArray dProjected) {
        Map<INDArray, INDArray> gradients = new IdentityHashMap<>();
        long rows = pass.lastHidden.size(0);
        INDArray dOut = dProjected.castTo(DataType.FLOAT).dup('c').reshape('c', rows, dProjected.size(2));
        INDArray dHidden = Nd4j.create(DataType.FLOAT, rows, config.hiddenSize());
        linearBackward(projection, pass.lastHidden, dOut, dHidden, false, gradients);
        dOut.close();
        List<EagerQFormer.Layer> layers = qformer.layers();
        for (int i = layers.size() - 1; i >= 0; i--) {
            EagerQFormer.Layer layer = layers.get(i);
            QFormerTape.Layer record = pass.tape.layers.get(i);
            dHidden = feedForwardBackward(layer.feedForward(), record.feedForward(), dHidden, gradients);
            if (layer.crossAttention() != null) {
                dHidden = attentionBackward(layer.crossAttention(), pass.cross, record.crossAttention(),
                        pass.tape.image, dHidden, gradients);
            }
            dHidden = attentionBackward(layer.selfAttention(), pass.self, record.selfAttention(), null, dHidden,
                    gradients);
        }
        // the normalised query tokens were repeated for every image: their gradient is the sum over the images
        int queries = (int) qformer.queryTokens().size(0);
        INDArray dNormed = dHidden.reshape(rows / queries, queries, config.hiddenSize()).sum(0);
        INDArray dTokens = Nd4j.zeros(DataType.FLOAT, queries, config.hiddenSize());
        LayerNorm norm = qformer.embeddingNorm();
        EagerLayers.layerNormBackward(qformer.queryTokens(), norm.weight(), norm.eps(), dNormed, dTokens,
                gradient(gradients, norm.weight()), gradient(gradients, norm.bias()));
        INDArray tokens = qformer.queryTokensParameter();
        gradients.put(tokens, dTokens.reshape(tokens.shape()));
        dHidden.close();
        dNormed.close();
        return gradients;
    }

    /** From d loss / d the block's output (after its norm) to d loss / d its input; its parameters' gradients. */
    private INDArray feedForwardBackward(EagerQFormer.FeedForward ffn, QFormerTape.FeedForward record, INDArray dOut,
                                         Map<INDArray, INDArray> gradients) {
        INDArray dSum = normBackward(ffn.norm(), record.sum(), dOut, gradients);
        INDArray dInput = dSum.dup();
        INDArray dActivated = work.get("dActivated", dSum.size(0), config.intermediateSize());
        linearBackward(ffn.output(), record.activated(), dSum, dActivated, false, gradients);
        EagerLayers.activationBackward("gelu", dActivated, record.preActivation(), work);
        linearBackward(ffn.intermediate(), record.input(), dActivated, dInput, true, gradients);
        dSum.close();
        dOut.close();
        return dInput;
    }

    /** The same for an attention block; {@code image} is what a cross-attention read, null for self-attention. */
    private INDArray attentionBackward(EagerQFormer.Attention layer, EagerAttention attention,
                                       QFormerTape.Attention record, INDArray image, INDArray dOut,
                                       Map<INDArray, INDArray> gradients) {
        INDArray dSum = normBackward(layer.norm(), record.sum(), dOut, gradients);
        INDArray dInput = dSum.dup();
        long rows = dSum.size(0);
        long keyRows = record.k().size(0);
        int width = config.hiddenSize();
        try (INDArray dContext = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray dQ = Nd4j.create(DataType.FLOAT, rows, width);
             INDArray dK = Nd4j.create(DataType.FLOAT, keyRows, width);
             INDArray dV = Nd4j.create(DataType.FLOAT, keyRows, width)) {
            linearBackward(layer.dense(), record.context(), dSum, dContext, false, gradients);
            attention.backward(record.q(), record.k(), record.v(), scale(), dContext, dQ, dK, dV, null);
            linearBackward(layer.query(), record.input(), dQ, dInput, true, gradients);
            // cross-attention's keys and values read the frozen image: no gradient goes there
            INDArray keysValues = image == null ? record.input() : image;
            INDArray dKeysValues = image == null ? dInput : null;
            linearBackward(layer.key(), keysValues, dK, dKeysValues, true, gradients);
            linearBackward(layer.value(), keysValues, dV, dKeysValues, true, gradients);
        }
        dSum.close();
        dOut.close();
        return dInput;
    }

    /** d loss / d the norm's input (a new array) from d loss / d its output; the norm's parameters' gradients. */
    private INDArray normBackward(LayerNorm norm, INDArray input, INDArray dOut, Map<INDArray, INDArray> gradients) {
        INDArray dInput = Nd4j.zeros(DataType.FLOAT, input.shape());
        EagerLayers.layerNormBackward(input, norm.weight(), norm.eps(), dOut, dInput, gradient(gradients, norm.weight()),
                gradient(gradients, norm.bias()));
        return dInput;
    }

    /**
     * {@code y = x W^T + b} backwards: {@code dW = dY^T x}, {@code db = sum(dY)} into the gradients, and
     * {@code dX = dY W} written into {@code dInput} (added where {@code accumulate}; skipped where it is null).
     */
    private static void linearBackward(Linear linear, INDArray input, INDArray dOutput, INDArray dInput,
                                       boolean accumulate, Map<INDArray, INDArray> gradients) {
        if (dInput != null) {
            linear.backwardToInput(dOutput, dInput, 1.0, accumulate);
        }
        // each weight is read once per pass: its gradient is this one product (no zeros to add onto)
        INDArray dWeight = Nd4j.createUninitialized(DataType.FLOAT, linear.weight().shape(), 'c');
        if (gradients.put(linear.weight(), dWeight) != null) {
            throw new IllegalStateException("a weight read twice in one pass: its gradient would need a sum");
        }
        Blas.gemm(dOutput, true, input, false, dWeight, 1.0, 0.0);
        if (linear.bias() != null) {
            FloatBuffer d = EagerLayers.floats(dOutput);
            FloatBuffer db = EagerLayers.floats(gradient(gradients, linear.bias()));
            int width = (int) dOutput.size(1);
            double[] sums = new double[width];
            for (int r = 0; r < dOutput.size(0); r++) {
                for (int i = 0; i < width; i++) {
                    sums[i] += d.get(r * width + i);
                }
            }
            for (int i = 0; i < width; i++) {
                db.put(i, db.get(i) + (float) sums[i]);
            }
        }
    }

    /** The gradient array of a parameter, zeros until something is added. */
    private static INDArray gradient(Map<INDArray, INDArray> gradients, INDArray parameter) {
        return gradients.computeIfAbsent(parameter, p -> Nd4j.zeros(DataType.FLOAT, p.shape()));
    }

    private double scale() {
        return 1 / Math.sqrt(config.headDim());
    }
}
