package dev.blip2dl4j.convert.tensor;

import dev.blip2dl4j.tensor.Shapes;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.BadInputException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

/**
 * One tensor of a checkpoint as its file describes it: name, element type, shape and where its
 * little-endian bytes lie. Nothing is read until asked for.
 */
public record SourceTensor(String name, DType dtype, long[] shape, StorageView view) {

    public SourceTensor {
        shape = shape.clone();
        long[] strides = view.strides();
        String where = "tensor '" + name + "' (" + dtype + " " + Arrays.toString(shape) + ", strides "
                + Arrays.toString(strides) + ")";
        if (strides.length != shape.length) {
            throw new BadInputException(view.file(), "tensor '" + name + "' has " + shape.length
                    + " dimensions but " + strides.length + " strides");
        }
        if (view.elementOffset() < 0 || Arrays.stream(shape).anyMatch(d -> d < 0)
                || Arrays.stream(strides).anyMatch(d -> d < 0)) {
            throw new BadInputException(view.file(), where + " has a negative size, stride or offset ("
                    + view.elementOffset() + ")");
        }
        long needed;
        try {
            Math.multiplyExact(Shapes.numel(shape), dtype.size()); // byteSize() must be exact too
            needed = Math.multiplyExact(lastElement(shape, strides, view.elementOffset()) + 1, dtype.size());
        } catch (ArithmeticException e) {
            throw new BadInputException(view.file(), where + " is too large to address: its bytes overflow 64"
                    + " bits, so the file is corrupt");
        }
        if (Shapes.numel(shape) > 0 && needed > view.storageBytes()) {
            throw new BadInputException(view.file(), where + " needs " + needed + " bytes of its storage, which"
                    + " holds only " + view.storageBytes());
        }
    }

    /** The element offset of the view's last element: where the storage must reach. */
    private static long lastElement(long[] shape, long[] strides, long offset) {
        long last = offset;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == 0) {
                return offset;
            }
            last = Math.addExact(last, Math.multiplyExact(shape[i] - 1, strides[i]));
        }
        return last;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        return Shapes.numel(shape);
    }

    public long byteSize() {
        return Math.multiplyExact(numel(), dtype.size());
    }

    /** Whether the bytes lie in one run, row-major, so that they can be copied without gathering. */
    public boolean isContiguous() {
        long[] strides = view.strides();
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }

    /** File offset of the first byte (of the first element). */
    public long dataOffset() {
        return view.storageOffset() + view.elementOffset() * dtype.size();
    }

    /**
     * Reads the whole tensor into memory, row-major and little-endian. For small tensors, tests and the
     * transforms that combine tensors; conversion streams large ones instead.
     */
    public ByteBuffer readFully() {
        if (byteSize() > Integer.MAX_VALUE - 64) {
            throw new BadInputException(view.file(), "tensor '" + name + "' is too large to hold in one buffer");
        }
        try (FileChannel channel = FileChannel.open(view.file(), StandardOpenOption.READ)) {
            if (isContiguous()) {
                return readRegion(channel, dataOffset(), (int) byteSize());
            }
            return gather(readRegion(channel, view.storageOffset(), (int) view.storageBytes()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tensor '" + name + "' from " + view.file(), e);
        }
    }

    /** Copies a strided view of a storage held in memory into a new row-major buffer. */
    public ByteBuffer gather(ByteBuffer storage) {
        int elementSize = dtype.size();
        ByteBuffer out = ByteBuffer.allocate((int) byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        long[] strides = view.strides();
        long[] index = new long[shape.length];
        long n = numel();
        for (long i = 0; i < n; i++) {
            long element = view.elementOffset();
            for (int d = 0; d < shape.length; d++) {
                element += index[d] * strides[d];
            }
            int from = (int) (element * elementSize);
            for (int b = 0; b < elementSize; b++) {
                out.put(storage.get(from + b));
            }
            for (int d = shape.length - 1; d >= 0; d--) {
                if (++index[d] < shape[d]) {
                    break;
                }
                index[d] = 0;
            }
        }
        return out.flip();
    }

    private ByteBuffer readRegion(FileChannel channel, long offset, int length) throws IOException {
        if (offset + length > channel.size()) {
            throw new BadInputException(view.file(), "tensor '" + name + "' lies past the end of the file (needs bytes "
                    + offset + ".." + (offset + length) + ", the file has " + channel.size() + ")");
        }
        ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, offset + buffer.position()) < 0) {
                throw new BadInputException(view.file(), "file ended while reading tensor '" + name + "'");
            }
        }
        return buffer.flip();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SourceTensor t && name.equals(t.name) && dtype == t.dtype
                && Arrays.equals(shape, t.shape) && view.equals(t.view);
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
