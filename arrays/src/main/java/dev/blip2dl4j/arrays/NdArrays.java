package dev.blip2dl4j.arrays;

import dev.blip2dl4j.tensor.Shapes;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.indexer.FloatIndexer;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Little-endian tensor bytes as float32 INDArrays: a mapped float32 tensor without a copy. */
public final class NdArrays {
    private NdArrays() {
    }

    /**
     * A float32 array over {@code bytes}. Direct (memory-mapped) float32 bytes are wrapped in place: the
     * array is a view of the mapping, which it keeps reachable. Other types are converted (half types
     * are a storage format; the CPU computes in float32).
     */
    public static INDArray float32(ByteBuffer bytes, DType dtype, long[] shape) {
        if (!dtype.isFloatingPoint()) {
            throw new IllegalArgumentException(dtype + " is not a floating-point type: read it in its type");
        }
        long n = Shapes.numel(shape);
        if (dtype == DType.F32 && bytes.isDirect()) {
            FloatPointer pointer = new FloatPointer(bytes.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer());
            DataBuffer buffer = Nd4j.createBuffer(pointer, DataType.FLOAT, n, FloatIndexer.create(pointer));
            return Nd4j.create(buffer, shape, Nd4j.getStrides(shape, 'c'), 0, 'c', DataType.FLOAT);
        }
        float[] values = new float[Math.toIntExact(n)];
        byte[] raw = new byte[bytes.remaining()];
        bytes.duplicate().get(raw);
        if (dtype == DType.F32) {
            ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
        } else {
            byte[] converted = new byte[values.length * 4];
            FloatConversion.convert(raw, 0, dtype, converted, 0, DType.F32, values.length, false);
            ByteBuffer.wrap(converted).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
        }
        return Nd4j.create(values, shape, 'c');
    }

    /** The little-endian bytes of a float32 array in row-major order: its own where it is contiguous. */
    public static ByteBuffer bytes(INDArray values) {
        INDArray dense = values.ordering() == 'c' && values.elementWiseStride() == 1 ? values : values.dup('c');
        ByteBuffer all = dense.data().asNio();
        int from = Math.toIntExact(dense.offset() * Float.BYTES);
        return all.position(from).limit(from + Math.toIntExact(dense.length() * Float.BYTES)).slice()
                .order(ByteOrder.LITTLE_ENDIAN);
    }
}
