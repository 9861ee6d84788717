package dev.blip2dl4j.examples;

import dev.blip2dl4j.arrays.ArtifactWeights;
import dev.blip2dl4j.graphs.Blip2Graph;
import dev.blip2dl4j.arrays.ReferenceBundle;
import dev.blip2dl4j.diagnostics.verify.Verifier;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Runs a converted model's graph on a reference bundle's inputs and checks every output against it.
 *
 * <pre>examples/run VerifyModel tiny-opt.b2z fixtures/blip2-tiny-opt</pre>
 */
public final class VerifyModel {
    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: VerifyModel MODEL.b2z BUNDLE_DIR");
            System.exit(2);
        }
        ReferenceBundle bundle = ReferenceBundle.open(Path.of(args[1]));
        try (ArtifactWeights weights = ArtifactWeights.open(Path.of(args[0]))) {
            // the graph: weights memory-mapped, outputs named as the bundle names them
            Blip2Graph graph = Blip2Graph.build(weights.config(), weights);
            Map<String, INDArray> image = graph.run(Map.of(Blip2Graph.PIXEL_VALUES, bundle.require("pixel_values")),
                    List.of("vision_last_hidden_state"));
            System.out.println("image features: " + Arrays.toString(image.get("vision_last_hidden_state").shape()));

            // everything the bundle has, compared
            Verifier.Report report = Verifier.verify(weights.config(), weights, bundle, null);
            report.checks().forEach(c -> System.out.printf("%-32s max abs diff %.2e  %s%n", c.name(), c.maxAbsDiff(),
                    c.passed() ? "PASS" : "FAIL"));
            System.exit(report.passed() ? 0 : 4);
        }
    }
}
