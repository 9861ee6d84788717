package dev.blip2dl4j.runtime;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What T5's decoder steps read besides their own tokens: the encoder output, each decoder layer's
 * cross-attention keys and values of it (projected once, {@code [batch, heads, encoderSeq, d_kv]}), the
 * encoder's padding as an additive mask, and the decoder's self-attention {@link KvCache}. One per
 * sequence batch, filled by {@link EagerT5#prefill}; not for use from several threads.
 */
public final class T5Cache {
    private final KvCache self;
    private INDArray encoderOutput;
    private INDArray[] crossKeys;
    private INDArray[] crossValues;
    private INDArray crossMask;

    T5Cache(KvCache self) {
        this.self = self;
    }

    /** Decoder positions run so far. */
    public int length() {
        return self.length();
    }

    public int batch() {
        return self.batch();
    }

    /** The encoder's last hidden state {@code [batch, encoderSeq, d_model]}, after its final RMSNorm. */
    public INDArray encoderOutput() {
        return encoderOutput;
    }

    /** Keeps rows {@code rows[0], rows[1], ...} in that order, any row any number of times (see {@link KvCache#select}). */
    public void select(int... rows) {
        self.select(rows);
        encoderOutput = KvCache.selectRows(encoderOutput, rows);
        crossMask = KvCache.selectRows(crossMask, rows);
        for (int layer = 0; layer < crossKeys.length; layer++) {
            crossKeys[layer] = KvCache.selectRows(crossKeys[layer], rows);
            crossValues[layer] = KvCache.selectRows(crossValues[layer], rows);
        }
    }

    boolean isEncoded() {
        return encoderOutput != null;
    }

    void encoded(INDArray encoderOutput, INDArray[] crossKeys, INDArray[] crossValues, INDArray crossMask) {
        this.encoderOutput = encoderOutput;
        this.crossKeys = crossKeys;
        this.crossValues = crossValues;
        this.crossMask = crossMask;
    }

    KvCache self() {
        return self;
    }

    INDArray crossKeys(int layer) {
        return crossKeys[layer];
    }

    INDArray crossValues(int layer) {
        return crossValues[layer];
    }

    /** {@code [batch, 1, 1, encoderSeq]}. */
    INDArray crossMask() {
        return crossMask;
    }
}
