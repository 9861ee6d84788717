package dev.blip2dl4j.diagnostics.bench;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.OptParameters;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.arrays.ArtifactWeights;
import dev.blip2dl4j.graphs.Blip2Graph;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.OptDecoder;
import dev.blip2dl4j.graphs.QFormer;
import dev.blip2dl4j.graphs.T5;
import dev.blip2dl4j.graphs.VisionTransformer;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import dev.blip2dl4j.zoo.generate.ImageEncoder;
import dev.blip2dl4j.zoo.generate.Generator;
import dev.blip2dl4j.zoo.generate.LanguageModel;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Times BLIP-2's stages on an artifact, under the names and definitions of the PyTorch peer
 * ({@code shared/bench/torch_peer.py bench}), one JSON line per stage, so that a script can report
 * our time as a ratio to the peer's measured in the same run: {@code load_weights}, {@code vision}
 * (pixels to the post-LayerNorm last hidden state), {@code qformer} (queries attending to the image
 * tokens), {@code lm_prefill} (projection, prompt embeddings, the LM over queries + prompt, the last
 * position's logits), {@code lm_decode_per_token} (after an untimed prefill, {@value #DECODE_STEPS}
 * cached single-token steps, each with the LM head and argmax; the mean per token),
 * {@code caption_end_to_end} (pixels to {@value #DECODE_STEPS} greedy tokens through {@link Blip2}), and
 * {@code full_forward} (image and prompt through the whole composed graph); and stages defined where their
 * code lives ({@link Stage}: the stage-two {@code train_step} is in the finetune module, which this one
 * cannot see).
 *
 * <p>Every stage but the last times the eager execution that inference uses ({@link ImageEncoder}, the eager
 * language model), or with {@link Options#graph} the SameDiff graph, so that
 * both can be reported; the graphs have no cache, so decoding is eager only.
 */
public final class StageBenchmark {
    public static final List<String> STAGES = List.of("vision", "qformer", "lm_prefill", "lm_decode_per_token",
            "caption_end_to_end", "full_forward");
    /** The peer's default {@code --new-tokens}. */
    static final int DECODE_STEPS = 20;

    /**
     * @param profile after timing a stage, run it once more with an op profile, printed to stderr
     * @param graph    time the SameDiff graphs instead of the eager executions
     * @param resident decode and caption with the language model's weights copied into memory
     * @param batch    examples per training step ({@code train_step}; the other stages run one)
     */
    public record Options(int repeats, int warmup, int promptTokens, long seed, Set<String> stages, boolean profile,
                          boolean graph, boolean resident, int batch) {
    }

    /** A stage of another module: built once from the model, then one run of it is what is timed. */
    public interface Stage {
        /**
         * @param pixels the benchmark's random image {@code [1, 3, size, size]}
         * @return one run of the stage
         */
        Runnable prepare(Blip2Config config, ArtifactWeights weights, INDArray pixels, Options options);

        /** What the stage's JSON line says besides the times (tokens, parameters). */
        Map<String, Object> details(Blip2Config config, Options options);
    }

    private final Options options;
    private final PrintWriter out;
    private final Map<String, Stage> others;

    private StageBenchmark(Options options, PrintWriter out, Map<String, Stage> others) {
        this.options = options;
        this.out = out;
        this.others = others;
    }

    public static void run(Path artifact, Options options, PrintWriter out) {
        run(artifact, options, out, Map.of());
    }

    /** @param others stages of other modules by name, run after these ones when {@code options} names them */
    public static void run(Path artifact, Options options, PrintWriter out, Map<String, Stage> others) {
        new StageBenchmark(options, out, others).run(artifact);
    }

    private void run(Path artifact) {
        long started = System.nanoTime();
        try (ArtifactWeights weights = ArtifactWeights.open(artifact)) {
            Blip2Config config = weights.config();
            // binding every weight (memory-mapped) into what runs the stages is what "loading" costs
            ImageEncoder encoder = new ImageEncoder(config, weights);
            Graphs graphs = new Graphs(config, weights, options.graph());
            emit("load_weights", List.of((System.nanoTime() - started) / 1e9), Map.of("rss_mib", rssMib("VmRSS")));

            Nd4j.getRandom().setSeed(options.seed());
            int size = config.vision().imageSize();
            INDArray pixels = Nd4j.randn(DataType.FLOAT, 1, 3, size, size);
            // the other modules' stages (training) bring their own: computing these would touch weights they never read
            if (STAGES.stream().anyMatch(options.stages()::contains)) {
                inferenceStages(artifact, config, weights, encoder, graphs, pixels);
            }
            for (Map.Entry<String, Stage> other : others.entrySet()) {
                if (options.stages().contains(other.getKey())) {
                    Runnable stage = other.getValue().prepare(config, weights, pixels, options);
                    emit(other.getKey(), measure(() -> {
                        stage.run();
                        return null;
                    }), other.getValue().details(config, options));
                }
            }
        }
    }

    /** This module's stages, those of {@link #STAGES} that the options name. */
    private void inferenceStages(Path artifact, Blip2Config config, ArtifactWeights weights, ImageEncoder encoder,
                                 Graphs graphs, INDArray pixels) {
        INDArray prompt = Nd4j.createFromArray(randomIds(config)).reshape(1, options.promptTokens());
        INDArray mask = Nd4j.ones(DataType.INT64, 1, options.promptTokens());
        INDArray image = encoder.imageEmbeds(pixels);
        INDArray queries = encoder.queries(image);

        String execution = options.graph() ? "graph" : "eager";
        if (options.stages().contains("vision")) {
            List<Double> times = options.graph()
                    ? time("vision", graphs.vision, Map.of("pixel_values", pixels), "image")
                    : time("vision", () -> encoder.imageEmbeds(pixels));
            emit("vision", times, Map.of("tokens", image.size(1), "execution", '"' + execution + '"'));
        }
        if (options.stages().contains("qformer")) {
            List<Double> times = options.graph()
                    ? time("qformer", graphs.qformer, Map.of("image", image), "queries")
                    : time("qformer", () -> encoder.queries(image));
            emit("qformer", times, Map.of("tokens", queries.size(1), "execution", '"' + execution + '"'));
        }
        // only when asked for: with --resident it copies the language model (10.6 GB at full size)
        if (options.stages().contains("lm_prefill") || options.stages().contains("lm_decode_per_token")) {
            try (LanguageRun lm = new LanguageRun(config, weights, encoder, prompt.toLongVector(),
                    options.resident())) {
                languageStages(lm, graphs, queries, prompt, mask);
            }
        }
        if (options.stages().contains("caption_end_to_end")) {
            emit("caption_end_to_end", captionEndToEnd(artifact, pixels, prompt.toLongVector()),
                    Map.of("tokens", DECODE_STEPS, "execution", "\"eager\"", "weights", weightsNote()));
        }
        if (options.stages().contains("full_forward")) {
            Blip2Graph whole = Blip2Graph.build(config, weights);
            Map<String, INDArray> feed = new java.util.HashMap<>(Map.of(Blip2Graph.PIXEL_VALUES, pixels,
                    Blip2Graph.INPUT_IDS, prompt, Blip2Graph.ATTENTION_MASK, mask));
            if (config.text() instanceof T5Config) {
                feed.put(Blip2Graph.DECODER_INPUT_IDS, Nd4j.zeros(DataType.INT64, 1, 1));
            }
            emit("full_forward", time("full_forward", whole.sameDiff(), feed, "logits"),
                    Map.of("tokens", queries.size(1) + options.promptTokens()));
        }
    }

    /**
     * The stages as separate graphs, so that each is timed alone, as the peer times them; vision and qformer
     * (null unless asked for) only to time them against their eager executions.
     */
    private static final class Graphs {
        final SameDiff vision;
        final SameDiff qformer;
        final SameDiff prefill = Layers.newSameDiff();

        Graphs(Blip2Config config, ArtifactWeights weights, boolean withEncoders) {
            vision = withEncoders ? visionGraph(config, weights) : null;
            qformer = withEncoders ? qformerGraph(config, weights) : null;

            Layers l = new Layers(prefill, weights);
            SDVariable queries = prefill.placeHolder("queries", DataType.FLOAT, -1, config.numQueryTokens(),
                    config.qformer().hiddenSize());
            SDVariable ids = prefill.placeHolder("input_ids", DataType.INT64, -1, -1);
            SDVariable mask = prefill.placeHolder("attention_mask", DataType.INT64, -1, -1);
            int width = config.text().hiddenSize();
            SDVariable projected = prefill.reshape(l.linear(prefill.reshape(queries, -1, config.qformer().hiddenSize()),
                    "language_projection"), -1, config.numQueryTokens(), width);
            SDVariable fullMask = prefill.concat(1, prefill.onesLike(projected).mean(false, 2), mask.castTo(DataType.FLOAT));
            if (config.text() instanceof OptConfig opt) {
                SDVariable embeds = OptDecoder.prependQueries(l, projected, OptDecoder.embedTokens(l, ids));
                SDVariable hidden = OptDecoder.build(l, opt, embeds, fullMask).lastHiddenState();
                // the last position's logits only, as generation needs and the peer times
                SDVariable last = prefill.gather(hidden, l.size(hidden, 1).sub(1L).castTo(DataType.INT64).reshape(1), 1);
                prefill.mmul(prefill.reshape(last, -1, opt.wordEmbedProjDim()),
                        l.param(OptParameters.embedTokens()), false, true, false).rename("logits");
            } else {
                SDVariable embeds = prefill.concat(1, projected, T5.embedTokens(l, ids));
                SDVariable decoderIds = prefill.placeHolder("decoder_input_ids", DataType.INT64, -1, -1);
                T5.build(l, (T5Config) config.text(), embeds, fullMask, decoderIds).logits().rename("logits");
            }
        }

        private static SameDiff visionGraph(Blip2Config config, ArtifactWeights weights) {
            SameDiff sd = Layers.newSameDiff();
            int size = config.vision().imageSize();
            VisionTransformer.build(new Layers(sd, weights), config.vision(),
                    sd.placeHolder("pixel_values", DataType.FLOAT, -1, 3, size, size)).lastHiddenState().rename("image");
            return sd;
        }

        private static SameDiff qformerGraph(Blip2Config config, ArtifactWeights weights) {
            SameDiff sd = Layers.newSameDiff();
            SDVariable image = sd.placeHolder("image", DataType.FLOAT, -1, config.vision().numPositions(),
                    config.vision().hiddenSize());
            QFormer.build(new Layers(sd, weights), config.qformer(), image).lastHiddenState().rename("queries");
            return sd;
        }
    }

    private long[] randomIds(Blip2Config config) {
        java.util.Random random = new java.util.Random(options.seed());
        long[] ids = new long[options.promptTokens()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = 4 + random.nextInt(config.text().vocabSize() - 4);
        }
        return ids;
    }

    /** Times an eager stage, then profiles one more run if asked. */
    private List<Double> time(String stage, Supplier<?> run) {
        List<Double> times = measure(run);
        if (options.profile()) {
            EagerProfile.run(stage, run::get, System.err);
        }
        return times;
    }

    /** Times {@code output} of {@code sd}, then profiles one more run if asked. */
    private List<Double> time(String stage, SameDiff sd, Map<String, INDArray> feed, String output) {
        List<Double> times = measure(() -> sd.output(feed, output));
        if (options.profile()) {
            OpProfile profile = new OpProfile();
            sd.setListeners(profile);
            long t = System.nanoTime();
            sd.output(feed, output);
            profile.print(stage, (System.nanoTime() - t) / 1e9, System.err);
            sd.setListeners();
        }
        return times;
    }

    /** lm_prefill and lm_decode_per_token, on one language model (the graph's prefill with --graph). */
    private void languageStages(LanguageRun lm, Graphs graphs, INDArray queries, INDArray prompt, INDArray mask) {
        if (options.stages().contains("lm_prefill")) {
            Map<String, INDArray> feed = new java.util.HashMap<>(Map.of("queries", queries, "input_ids", prompt,
                    "attention_mask", mask));
            if (lm.encoderDecoder()) {
                feed.put("decoder_input_ids", Nd4j.zeros(DataType.INT64, 1, 1));
            }
            List<Double> times = options.graph() ? time("lm_prefill", graphs.prefill, feed, "logits")
                    : measure(() -> lm.prefill(queries));
            emit("lm_prefill", times, Map.of("tokens", queries.size(1) + options.promptTokens(),
                    "execution", options.graph() ? "\"graph\"" : "\"eager\""));
        }
        if (options.stages().contains("lm_decode_per_token")) {
            decodePerToken(lm, queries);
        }
    }

    /**
     * The peer's decode stage: after an untimed prefill, {@value #DECODE_STEPS} cached single-token greedy steps;
     * emits the mean per token, and the median time of each step across repeats, so that a cost growing with
     * the cache shows (the first against the last step: {@code growth}).
     */
    private void decodePerToken(LanguageRun lm, INDArray queries) {
        List<Double> means = new ArrayList<>();
        List<List<Double>> perStep = new ArrayList<>();
        for (int step = 0; step < DECODE_STEPS; step++) {
            perStep.add(new ArrayList<>());
        }
        for (int i = 0; i < options.warmup() + options.repeats(); i++) {
            LanguageModel.Started started = lm.prefill(queries);
            long token = Generator.argmax(started.logits()[0]);
            long total = 0;
            for (int step = 0; step < DECODE_STEPS; step++) {
                long t = System.nanoTime();
                token = Generator.argmax(started.decoder().step(new long[]{token})[0]);
                long spent = System.nanoTime() - t;
                total += spent;
                if (i >= options.warmup()) {
                    perStep.get(step).add(spent / 1e9);
                }
            }
            if (i >= options.warmup()) {
                means.add(total / 1e9 / DECODE_STEPS);
            }
        }
        List<String> medians = perStep.stream().map(times -> String.format(Locale.ROOT, "%.4f", median(times))).toList();
        double growth = median(perStep.get(DECODE_STEPS - 1)) / median(perStep.get(0));
        emit("lm_decode_per_token", means, Map.of("tokens", DECODE_STEPS, "execution", "\"eager\"", "weights", weightsNote(),
                "step_median_s", "[" + String.join(", ", medians) + "]",
                "last_to_first", String.format(Locale.ROOT, "%.3f", growth)));
    }

    /**
     * The peer's caption stage: pixels to {@value #DECODE_STEPS} greedy tokens (no early stop) through what
     * {@code blip2 caption} runs, {@link Blip2}, with the artifact loaded as a user loads it.
     */
    private List<Double> captionEndToEnd(Path artifact, INDArray pixels, long[] prompt) {
        try (Blip2 model = Blip2.load(artifact).residentLanguageModel(options.resident())) {
            // no end-of-sequence token: exactly DECODE_STEPS tokens, as the peer runs
            GenerationConfig greedy = GenerationConfig.defaults(List.of(), null).withMaxNewTokens(DECODE_STEPS);
            return measure(() -> model.generate(pixels, List.of(prompt), greedy));
        }
    }

    private String weightsNote() {
        return options.resident() ? "\"resident\"" : "\"mapped\"";
    }

    private static double median(List<Double> times) {
        List<Double> sorted = new ArrayList<>(times);
        Collections.sort(sorted);
        return sorted.size() % 2 == 1 ? sorted.get(sorted.size() / 2)
                : (sorted.get(sorted.size() / 2 - 1) + sorted.get(sorted.size() / 2)) / 2;
    }

    private List<Double> measure(Supplier<?> stage) {
        for (int i = 0; i < options.warmup(); i++) {
            stage.get();
        }
        List<Double> times = new ArrayList<>();
        for (int i = 0; i < options.repeats(); i++) {
            long t = System.nanoTime();
            stage.get();
            times.add((System.nanoTime() - t) / 1e9);
        }
        return times;
    }

    private void emit(String name, List<Double> times, Map<String, Object> extra) {
        List<Double> sorted = new ArrayList<>(times);
        Collections.sort(sorted);
        double median = median(times);
        StringBuilder line = new StringBuilder();
        line.append(String.format("{\"name\": \"%s\", \"median_s\": %.4f, \"min_s\": %.4f, \"max_s\": %.4f, \"repeats\": %d, "
                        + "\"peak_rss_mib\": %d", name, median, sorted.get(0), sorted.get(sorted.size() - 1), times.size(),
                rssMib("VmHWM")));
        extra.forEach((k, v) -> line.append(", \"").append(k).append("\": ").append(v));
        line.append(", \"threads\": ").append(System.getenv().getOrDefault("OMP_NUM_THREADS", "?")).append('}');
        out.println(line);
        out.flush();
        resetPeakRss();
    }

    /** From /proc/self/status: VmRSS now, or VmHWM, the peak since the last reset. */
    private static long rssMib(String field) {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith(field + ":")) {
                    return Long.parseLong(l.replaceAll("[^0-9]", "")) / 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    /** Writing 5 to clear_refs resets VmHWM (Linux), so each stage reports its own peak. */
    private static void resetPeakRss() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException | UnsupportedOperationException ignored) {
            // not Linux, or not allowed: peaks then accumulate, which the output shows
        }
    }
}
