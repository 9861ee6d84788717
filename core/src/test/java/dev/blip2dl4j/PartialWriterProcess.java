package dev.blip2dl4j;

import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.tensor.DType;

import java.nio.file.Path;
import java.util.List;

/**
 * A process that starts writing an artifact, says so on stdout and then waits to be killed: what a convert, a
 * pull's conversion or a fine-tune's final write leaves when killed in the middle.
 */
public final class PartialWriterProcess {
    public static void main(String[] args) throws Exception {
        ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(Path.of(args[0]), List.of(), false));
        ArtifactWriter.TensorOutput tensor = writer.beginTensor("t", DType.F32, new long[]{1 << 20});
        tensor.write(new byte[1 << 20], 0, 1 << 20);
        System.out.println("writing");
        System.out.flush();
        Thread.sleep(120_000);
    }
}
