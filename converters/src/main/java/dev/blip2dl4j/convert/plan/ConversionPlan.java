package dev.blip2dl4j.convert.plan;

import java.nio.file.Path;
import java.util.List;

/**
 * Everything a conversion will write, decided before a byte is written: the tensors in the order to
 * write them, the tied copies to check, the source files to checksum and what was dropped, in words.
 */
public record ConversionPlan(List<PlannedTensor> tensors, List<TiedCopy> tiedCopies, List<Path> weightFiles,
                             StoragePolicy storage, List<String> notes) {
    public ConversionPlan {
        tensors = List.copyOf(tensors);
        tiedCopies = List.copyOf(tiedCopies);
        weightFiles = List.copyOf(weightFiles);
        notes = List.copyOf(notes);
    }
}
