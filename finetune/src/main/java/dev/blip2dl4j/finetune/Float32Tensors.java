package dev.blip2dl4j.finetune;

import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.tensor.DType;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;

/** Arrays into an artifact or a checkpoint as float32 tensors: little-endian, row-major, hashed as written. */
final class Float32Tensors {
    /** Elements per write: 4 MB of bytes at a time, whatever the tensor's size. */
    private static final int CHUNK = 1 << 20;

    private Float32Tensors() {
    }

    static void write(ArtifactWriter writer, String name, INDArray array) {
        INDArray values = array.dataType() == DataType.FLOAT && array.ordering() == 'c' && !array.isView()
                ? array : array.castTo(DataType.FLOAT).dup('c');
        ArtifactWriter.TensorOutput out = writer.beginTensor(name, DType.F32, array.shape());
        MessageDigest digest = Sha256.newDigest();
        long n = values.length();
        ByteBuffer bytes = ByteBuffer.allocate((int) Math.min(n, CHUNK) * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (long start = 0; start < n; start += CHUNK) {
            int count = (int) Math.min(CHUNK, n - start);
            bytes.clear();
            for (int i = 0; i < count; i++) {
                bytes.putFloat(values.data().getFloat(start + i));
            }
            out.write(bytes.array(), 0, count * 4);
            digest.update(bytes.array(), 0, count * 4);
        }
        String sha = Sha256.hex(digest);
        out.finish(() -> sha);
    }
}
