package dev.blip2dl4j.convert.tensor;

import java.nio.file.Path;
import java.util.List;

/**
 * A checkpoint opened for reading: its tensors' names, types, shapes and locations, read from the
 * file headers only. Data is read later, tensor by tensor, so that a 15 GB checkpoint is never in
 * memory at once.
 */
public interface TensorSource {

    /** What this is, for messages: "safetensors file model.safetensors", "PyTorch checkpoint x.pth". */
    String description();

    /** The files whose bytes the tensors come from, in the order their tensors are listed. */
    List<Path> files();

    /** Every tensor, ordered by file and then by position in the file. Names are unique. */
    List<SourceTensor> tensors();
}
