package dev.blip2dl4j.arrays;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.safetensors.SafetensorsFile;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** A small float32 safetensors file (a reference bundle's gradients or parameters) read whole into arrays. */
public final class SafetensorsArrays {
    private SafetensorsArrays() {
    }

    /** Every tensor of the file by name, in file order. */
    public static Map<String, INDArray> read(Path file) {
        Map<String, INDArray> arrays = new LinkedHashMap<>();
        for (SourceTensor tensor : SafetensorsFile.open(file).tensors()) {
            if (tensor.dtype() != DType.F32) {
                throw new BadInputException(file, "tensor '" + tensor.name() + "' is " + tensor.dtype()
                        + "; reference tensors are float32");
            }
            float[] values = new float[Math.toIntExact(tensor.numel())];
            tensor.readFully().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
            arrays.put(tensor.name(), Nd4j.create(values, tensor.shape(), 'c'));
        }
        return arrays;
    }
}
