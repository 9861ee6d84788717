package dev.blip2dl4j.runtime;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.indexing.SpecifiedIndex;

import java.nio.FloatBuffer;

/**
 * The keys and values of every position a batch of sequences has run through self-attention, per layer
 * {@code [batch, heads, capacity, headDim]}, so that a decode step computes K and V for its new position
 * only and attends over the stored ones. Every row holds the same number of positions ({@link #length});
 * rows shorter than others are padded on the left and masked by the caller's attention mask.
 *
 * <p>The arrays are allocated on the first forward pass (when the batch size is known) with room for
 * the capacity asked for, and doubled, copying, when a pass needs more. One cache per sequence batch;
 * not for use from several threads.
 */
public final class KvCache implements AutoCloseable {
    private final int layers;
    private final int heads;
    private final int headDim;
    private INDArray[] keys;
    private INDArray[] values;
    private int batch;
    private int capacity;
    private int length;

    /** @param capacity positions to make room for at first; more are made when needed */
    public KvCache(int layers, int heads, int headDim, int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be positive, got " + capacity);
        }
        this.layers = layers;
        this.heads = heads;
        this.headDim = headDim;
        this.capacity = capacity;
    }

    /** Positions stored per row. */
    public int length() {
        return length;
    }

    /** Rows (sequences); 0 before the first forward pass. */
    public int batch() {
        return batch;
    }

    public int capacity() {
        return capacity;
    }

    /**
     * Keeps rows {@code rows[0], rows[1], ...} in that order, any row any number of times: the batch
     * becomes {@code rows.length} (beam search reorders, duplicates and drops hypotheses this way).
     */
    public void select(int... rows) {
        if (keys == null) {
            throw new IllegalStateException("the cache is empty: nothing to select from");
        }
        for (int row : rows) {
            if (row < 0 || row >= batch) {
                throw new IndexOutOfBoundsException("row " + row + " of a cache of " + batch + " rows");
            }
        }
        for (int layer = 0; layer < layers; layer++) {
            keys[layer] = selectRows(keys[layer], rows);
            values[layer] = selectRows(values[layer], rows);
        }
        batch = rows.length;
    }

    /** Rows of a cache-like array along its first axis, as a new array; the old one is freed. */
    static INDArray selectRows(INDArray array, int[] rows) {
        INDArrayIndex[] index = new INDArrayIndex[array.rank()];
        index[0] = new SpecifiedIndex(rows);
        for (int i = 1; i < index.length; i++) {
            index[i] = NDArrayIndex.all();
        }
        INDArray selected = array.get(index).dup('c');
        if (array.closeable()) {
            array.close();
        }
        return selected;
    }

    /**
     * Makes room for {@code positions} more positions of {@code rows} rows: allocates on first use,
     * doubles the capacity (copying what is stored) when full. Returns where the new positions go.
     */
    int reserve(int rows, int positions) {
        if (keys == null) {
            batch = rows;
            capacity = Math.max(capacity, positions);
            keys = allocate(capacity);
            values = allocate(capacity);
            return 0;
        }
        if (rows != batch) {
            throw new IllegalArgumentException("a batch of " + rows + " rows for a cache of " + batch
                    + " (select rows to change the batch)");
        }
        int needed = length + positions;
        if (needed > capacity) {
            int grown = Math.max(2 * capacity, needed);
            INDArray[] newKeys = allocate(grown);
            INDArray[] newValues = allocate(grown);
            for (int layer = 0; layer < layers; layer++) {
                stored(newKeys[layer], length).assign(stored(keys[layer], length));
                stored(newValues[layer], length).assign(stored(values[layer], length));
                keys[layer].close();
                values[layer].close();
            }
            keys = newKeys;
            values = newValues;
            capacity = grown;
        }
        return length;
    }

    /**
     * Writes the keys and values of {@code seq} new positions per row, {@code k, v [batch * seq, heads * headDim]}
     * (row-major, as the projections produce them), at positions {@code at .. at + seq - 1} of a layer.
     */
    void store(int layer, int at, int seq, INDArray k, INDArray v) {
        copyIn(k, keys[layer], at, seq);
        copyIn(v, values[layer], at, seq);
    }

    /** A layer's keys {@code [batch, heads, capacity, headDim]}; positions from {@link #length} on are not set. */
    INDArray keys(int layer) {
        return keys[layer];
    }

    /** A layer's values, laid out as {@link #keys}. */
    INDArray values(int layer) {
        return values[layer];
    }

    /** Counts the positions a forward pass has stored in every layer. */
    void advance(int positions) {
        length += positions;
    }

    /** Frees the keys and values now rather than whenever the garbage collector gets to them; the cache is then empty. */
    @Override
    public void close() {
        if (keys != null) {
            for (int layer = 0; layer < layers; layer++) {
                keys[layer].close();
                values[layer].close();
            }
            keys = null;
            values = null;
            length = 0;
        }
    }

    private INDArray[] allocate(int positions) {
        INDArray[] arrays = new INDArray[layers];
        for (int layer = 0; layer < layers; layer++) {
            arrays[layer] = Nd4j.create(DataType.FLOAT, batch, heads, positions, headDim);
        }
        return arrays;
    }

    private void copyIn(INDArray rows, INDArray cache, int at, int seq) {
        FloatBuffer from = EagerLayers.floats(rows);
        FloatBuffer to = EagerLayers.floats(cache);
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                for (int h = 0; h < heads; h++) {
                    int source = ((b * seq + t) * heads + h) * headDim;
                    int target = ((b * heads + h) * capacity + at + t) * headDim;
                    to.put(target, from, source, headDim);
                }
            }
        }
    }

    private static INDArray stored(INDArray array, int upTo) {
        return array.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, upTo), NDArrayIndex.all());
    }
}
