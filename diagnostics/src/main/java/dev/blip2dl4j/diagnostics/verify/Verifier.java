package dev.blip2dl4j.diagnostics.verify;

import dev.blip2dl4j.arrays.ReferenceBundle;
import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.graphs.Blip2Graph;
import dev.blip2dl4j.graphs.T5;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.zoo.Blip2;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Recomputes, from a reference bundle's raw inputs, every output of the bundle this build can compute,
 * and compares each with the reference: what {@code blip2 verify} runs, and the proof that a converted
 * model computes what the original computes.
 */
public final class Verifier {
    /** fixtures/README.md: float32 rounding moves activations and logits by a few 1e-6 at most. */
    public static final double ACTIVATION_TOLERANCE = 1e-4;

    /** One compared output. */
    public record Check(String name, long[] shape, double maxAbsDiff, double tolerance) {
        public boolean passed() {
            return maxAbsDiff <= tolerance;
        }
    }

    /**
     * @param checks     one per output compared
     * @param notChecked outputs of the bundle this build does not compute (yet), besides the inputs
     */
    public record Report(List<Check> checks, List<String> notChecked) {
        public boolean passed() {
            return !checks.isEmpty() && checks.stream().allMatch(Check::passed);
        }
    }

    private final Blip2Config config;
    private final StorageTolerance tolerance;
    /** Null for int8 products: the graphs read float32 weights, and an int8 matrix is never widened whole. */
    private final Blip2Graph graph;
    private final ReferenceBundle bundle;
    private final Path dump;
    private final Map<String, Check> checks = new LinkedHashMap<>();

    private Verifier(Blip2Config config, Weights weights, ReferenceBundle bundle, Path dump) {
        this.config = config;
        this.tolerance = StorageTolerance.of(config, weights);
        this.graph = tolerance.storage() == DType.I8 ? null : Blip2Graph.build(config, weights);
        this.bundle = bundle;
        this.dump = dump;
    }

    /**
     * Compares the graphs' outputs, from the bundle's pixel values and ids.
     *
     * @param dump a folder to write every computed output to, under the bundle's file names; or null
     */
    public static Report verify(Blip2Config config, Weights weights, ReferenceBundle bundle, Path dump) {
        return new Verifier(config, weights, bundle, dump).run();
    }

    /**
     * Compares the graphs' outputs, then, as far as the bundle has them, the whole path from the image file
     * and the raw text: pixel values from the image, ids from the prompt and captions, generated ids and
     * per-step top-5 scores, ITM and ITC from raw captions.
     *
     * @param image the bundle's image, or null to find it as reference.json names it (relative to the
     *              bundle's parent folder)
     */
    public static Report verify(Blip2 model, ReferenceBundle bundle, Path image, Path dump) {
        Verifier verifier = new Verifier(model.config(), model.weights(), bundle, dump);
        Report graphs = verifier.run();
        List<String> skipped = new ArrayList<>();
        new EndToEndChecks(model, bundle, image, verifier.tolerance, verifier::record, skipped::add).run();
        List<String> notChecked = new ArrayList<>(graphs.notChecked().stream().filter(n -> !verifier.checks.containsKey(n)).toList());
        notChecked.addAll(skipped);
        return new Report(List.copyOf(verifier.checks.values()), notChecked);
    }

    private void record(Check check) {
        checks.put(check.name(), check);
    }

    private Report run() {
        Set<String> inputs = Set.of("pixel_values", "input_ids", "attention_mask", "itm_input_ids", "itm_attention_mask",
                "loss_input_ids", "loss_attention_mask", "loss_labels");
        List<String> notChecked = new ArrayList<>();
        if (graph == null) {
            notChecked.add("the graphs' outputs (the graphs read float32 weights; int8 products run eagerly, "
                    + "checked from the image and the prompt)");
        } else if (config.kind() == ModelKind.CONDITIONAL_GENERATION) {
            conditionalGeneration();
        } else {
            retrieval();
        }
        for (String name : bundle.names()) {
            if (!checks.containsKey(name) && !inputs.contains(name)) {
                notChecked.add(name);
            }
        }
        return new Report(List.copyOf(checks.values()), notChecked);
    }

    private void conditionalGeneration() {
        Map<String, INDArray> feed = new HashMap<>();
        feed.put(Blip2Graph.PIXEL_VALUES, bundle.require("pixel_values"));
        feed.put(Blip2Graph.INPUT_IDS, bundle.require("input_ids"));
        feed.put(Blip2Graph.ATTENTION_MASK, bundle.require("attention_mask"));
        if (config.text() instanceof T5Config t5) {
            feed.put(Blip2Graph.DECODER_INPUT_IDS, decoderStart(t5, feed.get(Blip2Graph.INPUT_IDS).size(0)));
        }
        compareAll(feed);
        if (config.text() instanceof T5Config t5 && bundle.has("loss_logits")) {
            Map<String, INDArray> loss = new HashMap<>(feed);
            loss.put(Blip2Graph.INPUT_IDS, bundle.require("loss_input_ids"));
            loss.put(Blip2Graph.ATTENTION_MASK, bundle.require("loss_attention_mask"));
            loss.put(Blip2Graph.DECODER_INPUT_IDS, T5.shiftRight(bundle.require("loss_labels"), t5));
            compare("loss_logits", graph.run(loss, List.of("logits")).get("logits"));
        }
    }

    private void retrieval() {
        INDArray pixels = bundle.require("pixel_values");
        INDArray ids = bundle.require("itm_input_ids");
        INDArray mask = bundle.require("itm_attention_mask");
        Map<String, INDArray> feed = new HashMap<>(Map.of(Blip2Graph.PIXEL_VALUES, pixels,
                Blip2Graph.INPUT_IDS, ids, Blip2Graph.ATTENTION_MASK, mask));
        List<String> matching = List.of("itm_logits", "itm_query_output");
        compareAll(feed, matching);
        // matching pairs image i with text i: the image once per caption
        feed.put(Blip2Graph.PIXEL_VALUES, Nd4j.repeat(pixels, (int) ids.size(0)));
        Map<String, INDArray> paired = graph.run(feed, matching.stream().filter(bundle::has).toList());
        paired.forEach(this::compare);
        if (bundle.has("itm_logits_unpadded")) {
            List<INDArray> rows = new ArrayList<>();
            for (int i = 0; i < ids.size(0); i++) {
                long length = mask.getRow(i).sumNumber().longValue();
                INDArray row = ids.get(NDArrayIndex.interval(i, i + 1), NDArrayIndex.interval(0, length));
                INDArray rowMask = mask.get(NDArrayIndex.interval(i, i + 1), NDArrayIndex.interval(0, length));
                rows.add(graph.run(Map.of(Blip2Graph.PIXEL_VALUES, pixels, Blip2Graph.INPUT_IDS, row.dup(),
                        Blip2Graph.ATTENTION_MASK, rowMask.dup()), List.of("itm_logits")).get("itm_logits"));
            }
            compare("itm_logits_unpadded", Nd4j.concat(0, rows.toArray(INDArray[]::new)));
        }
    }

    /** Runs the graph once for every output it has that the bundle has, except {@code excluded}. */
    private void compareAll(Map<String, INDArray> feed, List<String> excluded) {
        List<String> wanted = graph.outputNames().stream()
                .filter(bundle::has).filter(n -> !excluded.contains(n)).toList();
        graph.run(feed, wanted).forEach(this::compare);
    }

    private void compareAll(Map<String, INDArray> feed) {
        compareAll(feed, List.of());
    }

    /** T5's decoder input for one step: decoder_start_token_id per row. */
    private INDArray decoderStart(T5Config t5, long batch) {
        JsonNode given = bundle.json().get("decoder_input_ids");
        long start = given != null && given.isArray() && given.size() > 0 ? given.get(0).asLong() : t5.decoderStartTokenId();
        return Nd4j.valueArrayOf(new long[]{batch, 1}, start, DataType.INT64);
    }

    private void compare(String name, INDArray computed) {
        INDArray expected = bundle.require(name);
        double diff = Double.POSITIVE_INFINITY;
        double largest = expected.castTo(DataType.DOUBLE).amaxNumber().doubleValue();
        if (Arrays.equals(expected.shape(), computed.shape())) {
            diff = expected.castTo(DataType.DOUBLE).sub(computed.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
            if (Double.isNaN(diff)) {
                diff = Double.POSITIVE_INFINITY;
            }
        }
        checks.put(name, new Check(name, computed.shape(), diff, tolerance.of(ACTIVATION_TOLERANCE, largest)));
        if (dump != null) {
            write(name, computed);
        }
    }

    private void write(String name, INDArray array) {
        Path file = dump.resolve(bundle.fileName(name));
        try {
            Files.createDirectories(file.getParent());
            Nd4j.writeAsNumpy(array.castTo(DataType.FLOAT), new File(file.toString()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }
}
