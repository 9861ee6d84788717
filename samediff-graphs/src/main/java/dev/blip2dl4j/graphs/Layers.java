package dev.blip2dl4j.graphs;

import dev.blip2dl4j.model.AttentionMask;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.array.SingleThreadArrayHolder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.XwPlusB;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * The building blocks every BLIP-2 part is made of, from SameDiff primitives only: several built-ins
 * of DL4J 1.0.0-M2.1 are wrong for BLIP-2 (docs/DESIGN.md "DL4J M2.1 pitfalls"): {@code nn.gelu} is the
 * sigmoid approximation, {@code nn.layerNorm} has no epsilon, negative reduction axes with keepDims misbehave on rank >= 3,
 * and the attention ops take no causal mask or biases.
 *
 * <p>Activations inside a block are kept 2-D, {@code [rows, width]} with rows = batch x sequence, so
 * that every linear layer is one GEMM against the {@code [out, in]} weight (transposed operand, no
 * copy) and batch and sequence length stay graph dimensions; attention reshapes to
 * {@code [batch, heads, seq, headDim]} with the sequence length given by the caller.
 */
public final class Layers {
    private final SameDiff sd;
    private final Weights weights;
    private final Predicate<String> frozen;

    /** For an inference graph: nothing is differentiated. */
    public Layers(SameDiff sd, Weights weights) {
        this(sd, weights, name -> false);
    }

    /**
     * For a training graph: products with the weights that {@code frozen} names run as {@code xw_plus_b}, whose
     * backward is separate products, so that SameDiff computes only the input's gradient. The backward of
     * M2.1's {@code matmul} is one op, {@code matmul_bp}, that always computes both operands' gradients, the
     * frozen weight's too: for stage two at full size 10 GB of gradients that are thrown away, and as much work
     * again as the input's.
     */
    public Layers(SameDiff sd, Weights weights, Predicate<String> frozen) {
        this.sd = sd;
        this.weights = weights;
        this.frozen = frozen;
    }

    /**
     * A SameDiff for a model graph. Its default array holders are thread-safe by keeping a copy of every
     * constant, which doubles the resident memory of every weight bound (bench/README.md). These
     * hold the arrays as given (memory-mapped weights stay mapped); the price is that one graph serves one
     * thread at a time.
     */
    public static SameDiff newSameDiff() {
        SameDiff sd = SameDiff.create();
        sd.setArrayHolders(new SingleThreadArrayHolder(), new SingleThreadArrayHolder(), false);
        return sd;
    }

    public SameDiff sd() {
        return sd;
    }

    /**
     * The parameter of that canonical name as a graph constant (frozen; training turns the ones it
     * trains into variables). Bound once: asking again returns the same variable.
     */
    public SDVariable param(String name) {
        return constant(name, () -> weights.get(name));
    }

    /** The graph's constant of that name, made from {@code value} the first time it is asked for. */
    private SDVariable constant(String name, Supplier<INDArray> value) {
        return sd.hasVariable(name) ? sd.getVariable(name) : sd.constant(name, value.get());
    }

    public boolean hasParam(String name) {
        return weights.contains(name);
    }

    /** {@code x W^T + b} for {@code x [rows, in]} and the weight {@code prefix.weight [out, in]}. */
    public SDVariable linear(SDVariable x, String prefix) {
        return product(x, prefix + ".weight", hasParam(prefix + ".bias") ? prefix + ".bias" : null);
    }

    /** {@code x W^T (+ b)} for {@code x [rows, in]}, the parameter {@code weight [out, in]} and a bias or null. */
    public SDVariable product(SDVariable x, String weight, String bias) {
        if (frozen.test(weight)) {
            // xw_plus_b takes the weight as [in, out]: the transposed view of the same memory, and a zero bias
            // where the layer has none (both constants, so their gradients are never asked for)
            SDVariable w = constant(weight + ".T", () -> weights.get(weight).transpose());
            SDVariable b = bias != null ? param(bias)
                    : constant(weight + ".zero_bias", () -> Nd4j.zeros(DataType.FLOAT, weights.get(weight).size(0)));
            return new XwPlusB(sd, x, w, b).outputVariable();
        }
        SDVariable y = sd.mmul(x, param(weight), false, true, false);
        return bias != null ? y.add(param(bias)) : y;
    }

    /** LayerNorm over the last axis of {@code x [rows, width]}, with PyTorch's biased variance. */
    public SDVariable layerNorm(SDVariable x, String prefix, double eps) {
        SDVariable centred = x.sub(x.mean(true, 1));
        SDVariable variance = centred.mul(centred).mean(true, 1);
        SDVariable normed = centred.mul(sd.math().rsqrt(variance.add(eps)));
        return normed.mul(param(prefix + ".weight")).add(param(prefix + ".bias"));
    }

    /** T5's RMSNorm: no mean subtraction and no bias. */
    public SDVariable rmsNorm(SDVariable x, String weightName, double eps) {
        SDVariable meanSquare = x.mul(x).mean(true, 1);
        return x.mul(sd.math().rsqrt(meanSquare.add(eps))).mul(param(weightName));
    }

    /** GELU, the exact erf form: 0.5 x (1 + erf(x / sqrt 2)). */
    public SDVariable gelu(SDVariable x) {
        return x.mul(0.5).mul(sd.math().erf(x.mul(1 / Math.sqrt(2))).add(1.0));
    }

    /** transformers' {@code gelu_new}: the tanh approximation. */
    public SDVariable geluTanh(SDVariable x) {
        SDVariable inner = x.add(x.mul(x).mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
        return x.mul(0.5).mul(sd.math().tanh(inner).add(1.0));
    }

    /** The activation transformers' {@code ACT2FN} names {@code name}: relu, gelu (exact), gelu_new (tanh). */
    public SDVariable activation(String name, SDVariable x) {
        return switch (name) {
            case "relu" -> sd.nn().relu(x, 0);
            case "gelu" -> gelu(x);
            case "gelu_new" -> geluTanh(x);
            default -> throw new IllegalArgumentException("unsupported activation function \"" + name
                    + "\"; supported: relu, gelu, gelu_new");
        };
    }

    /** {@code [rows, heads*headDim]} to {@code [batch, heads, seq, headDim]}. */
    public SDVariable splitHeads(SDVariable x, SDVariable seq, int heads, int headDim) {
        return sd.reshape(x, shape(-1, seq, heads, headDim)).permute(0, 2, 1, 3);
    }

    /** {@code [batch, heads, seq, headDim]} back to {@code [rows, heads*headDim]}. */
    public SDVariable mergeHeads(SDVariable x, int heads, int headDim) {
        return sd.reshape(x.permute(0, 2, 1, 3), -1, (long) heads * headDim);
    }

    /**
     * softmax(q k^T * scale + mask) v, for {@code [batch, heads, seq, headDim]} inputs and an additive
     * mask broadcastable to {@code [batch, heads, seqQ, seqK]} (null: none).
     */
    public SDVariable attention(SDVariable q, SDVariable k, SDVariable v, SDVariable additiveMask, double scale) {
        SDVariable scores = sd.mmul(q, k, false, true, false);
        if (scale != 1.0) {
            scores = scores.mul(scale);
        }
        if (additiveMask != null) {
            scores = scores.add(additiveMask);
        }
        return sd.mmul(sd.nn().softmax(scores, 3), v);
    }

    /** {@code 0, 1, ..., n-1} as a float vector, for a length {@code n} only known when the graph runs. */
    public SDVariable arange(SDVariable n) {
        return sd.range(sd.constant(0L), n.castTo(DataType.LONG), sd.constant(1L), DataType.FLOAT);
    }

    /**
     * The additive causal mask {@code [1, 1, seq, seq]}: query i may attend to keys 0..i.
     */
    public SDVariable causalMask(SDVariable seq) {
        SDVariable positions = arange(seq);
        SDVariable future = sd.gt(sd.expandDims(positions, 0), sd.expandDims(positions, 1));
        return sd.reshape(future.castTo(DataType.FLOAT).mul(AttentionMask.MASKED), shape(1, 1, seq, seq));
    }

    /**
     * The additive key-padding mask {@code [batch, 1, 1, seq]} for a {@code [batch, seq]} attention mask
     * (1 = attend, 0 = padding; any numeric type).
     */
    public SDVariable paddingMask(SDVariable attentionMask) {
        SDVariable padding = attentionMask.castTo(DataType.FLOAT).rsub(1.0).mul(AttentionMask.MASKED);
        return sd.expandDims(sd.expandDims(padding, 1), 1);
    }

    /**
     * A LONG shape vector for {@code sd.reshape} whose entries are numbers or scalar graph variables
     * (a sequence length that is only known when the graph runs).
     */
    public SDVariable shape(Object... dims) {
        SDVariable[] parts = Arrays.stream(dims).map(d -> d instanceof SDVariable v
                ? sd.reshape(v.castTo(DataType.LONG), 1)
                : sd.constant(Nd4j.createFromArray(((Number) d).longValue()))).toArray(SDVariable[]::new);
        return sd.concat(0, parts);
    }

    /** The size of one dimension of {@code x} as a scalar graph variable. */
    public SDVariable size(SDVariable x, int dimension) {
        return sd.sizeAt(x, dimension);
    }

    /** A constant holding {@code array} (masks, position tables computed once). */
    public SDVariable constant(INDArray array) {
        return sd.constant(array);
    }
}
