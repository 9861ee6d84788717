package dev.blip2dl4j.diagnostics.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.arrays.ArtifactWeights;
import dev.blip2dl4j.graphs.Blip2Graph;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.OptDecoder;
import dev.blip2dl4j.graphs.QFormer;
import dev.blip2dl4j.graphs.T5;
import dev.blip2dl4j.graphs.VisionTransformer;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.generate.Decoder;
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
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Times BLIP-2's stages on an artifact, under the names and definitions of the PyTorch peer's {@code bench}
 * (docs/DESIGN.md "Benchmarks"), one JSON line per stage, so that a script can report
 * our time as a ratio to the peer's measured in the same run: {@code load_weights}, {@code vision}
 * (pixels to the post-LayerNorm last hidden state), {@code qformer} (queries attending to the image
 * tokens), {@code lm_prefill} (projection, prompt embeddings, the LM over queries + prompt, the last
 * position's logits), {@code lm_decode_per_token} (after an untimed prefill, {@value #DECODE_STEPS}
 * cached single-token steps, each with the LM head and argmax; the mean per token),
 * {@code caption_end_to_end} (pixels to {@value #DECODE_STEPS} greedy tokens through {@link Blip2}), and
 * {@code full_forward} (image and prompt through the whole composed graph); and, only when named, the stage-two
 * {@code train_step} ({@link TrainStepBenchmark}) and {@code lm_logits_error} ({@link LogitsError}: the language
 * model's logits against a float32 reference artifact's, with the time it took).
 *
 * <p>Every inference stage but the last times the eager execution that inference uses ({@link ImageEncoder}, the eager
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
     * @param batch     examples per training step ({@code train_step}; the other stages run one)
     * @param reference the float32 artifact that {@code lm_logits_error} compares against (null without that stage)
     * @param dumpLogits the folder where {@code lm_logits_error} writes its inputs and both models' logits as .npy
     *                   (null: none)
     */
    public record Options(int repeats, int warmup, int promptTokens, long seed, Set<String> stages, boolean profile,
                          boolean graph, boolean resident, int batch, Path reference, Path dumpLogits) {
    }

    /** Lines spaced as the peer's {@code json.dumps} writes them: {@code {"name": "vision", "median_s": 1.4188, ...}}. */
    private static final ObjectWriter JSON = new ObjectMapper().writer(new DefaultPrettyPrinter(
            Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                    .withObjectEntrySpacing(Separators.Spacing.AFTER).withArrayValueSpacing(Separators.Spacing.AFTER))
            .withObjectIndenter(DefaultPrettyPrinter.NopIndenter.instance)
            .withArrayIndenter(DefaultPrettyPrinter.NopIndenter.instance));

    private final Options options;
    private final PrintWriter out;

    private StageBenchmark(Options options, PrintWriter out) {
        this.options = options;
        this.out = out;
    }

    public static void run(Path artifact, Options options, PrintWriter out) {
        new StageBenchmark(options, out).run(artifact);
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
            // train_step brings its own: computing these would touch weights it never reads
            if (STAGES.stream().anyMatch(options.stages()::contains)) {
                inferenceStages(artifact, config, weights, encoder, graphs, pixels);
            }
            if (options.stages().contains(LogitsError.NAME)) {
                logitsError(config, weights, pixels);
            }
            if (options.stages().contains(TrainStepBenchmark.NAME)) {
                Runnable step = TrainStepBenchmark.prepare(config, weights, pixels, options);
                emit(TrainStepBenchmark.NAME, measure(() -> {
                    step.run();
                    return null;
                }), TrainStepBenchmark.details(options));
            }
        }
    }

    private void logitsError(Blip2Config config, ArtifactWeights weights, INDArray pixels) {
        if (options.reference() == null) {
            throw new BadInputException(LogitsError.NAME + " compares against a float32 artifact: name it with --reference");
        }
        long t = System.nanoTime();
        LogitsError.Result error = LogitsError.measure(config, weights, options.reference(), pixels, options.seed(),
                options.dumpLogits());
        Map<String, Object> details = new LinkedHashMap<>();
        details.put("tokens", LogitsError.TOKENS);
        details.put("relative_rms", error.relativeRms());
        details.put("top1_agreement", error.top1Agreement());
        details.put("max_abs_diff", error.maxAbsDiff());
        details.put("reference", options.reference().toString());
        emit(LogitsError.NAME, List.of((System.nanoTime() - t) / 1e9), details);
    }

    /** This module's stages, those of {@link #STAGES} that the options name. */
    private void inferenceStages(Path artifact, Blip2Config config, ArtifactWeights weights, ImageEncoder encoder,
                                 Graphs graphs, INDArray pixels) {
        INDArray prompt = Nd4j.createFromArray(randomIds(config, options.promptTokens(), options.seed()))
                .reshape(1, options.promptTokens());
        INDArray mask = Nd4j.ones(DataType.INT64, 1, options.promptTokens());
        // caption_end_to_end encodes through its own Blip2 and mapping: encoding here too for it alone would count
        // the image encoder's and the Q-Former's pages twice in its peak RSS
        boolean encodes = options.stages().stream().anyMatch(s -> STAGES.contains(s) && !s.equals("caption_end_to_end"));
        INDArray image = encodes ? encoder.imageEmbeds(pixels) : null;
        INDArray queries = encodes ? encoder.queries(image) : null;

        String execution = options.graph() ? "graph" : "eager";
        if (options.stages().contains("vision")) {
            List<Double> times = options.graph()
                    ? time("vision", graphs.vision, Map.of("pixel_values", pixels), "image")
                    : time("vision", () -> encoder.imageEmbeds(pixels));
            emit("vision", times, Map.of("tokens", image.size(1), "execution", execution));
        }
        if (options.stages().contains("qformer")) {
            List<Double> times = options.graph()
                    ? time("qformer", graphs.qformer, Map.of("image", image), "queries")
                    : time("qformer", () -> encoder.queries(image));
            emit("qformer", times, Map.of("tokens", queries.size(1), "execution", execution));
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
                    Map.of("tokens", DECODE_STEPS, "execution", "eager", "weights", weightsNote()));
        }
        if (options.stages().contains("full_forward")) {
            Blip2Graph whole = Blip2Graph.build(config, weights);
            Map<String, INDArray> feed = new HashMap<>(Map.of(Blip2Graph.PIXEL_VALUES, pixels,
                    Blip2Graph.INPUT_IDS, prompt, Blip2Graph.ATTENTION_MASK, mask));
            if (config.text() instanceof T5Config) {
                feed.put(Blip2Graph.DECODER_INPUT_IDS, Nd4j.zeros(DataType.INT64, 1, 1));
            }
            emit("full_forward", time("full_forward", whole.sameDiff(), feed, "logits"),
                    Map.of("tokens", queries.size(1) + options.promptTokens()));
        }
    }

    /**
     * The stages as separate graphs, so that each is timed alone, as the peer times them, against their eager
     * executions: built only for {@code --graph} (binding them widens narrower weights whole, and int8 not at all).
     */
    private static final class Graphs {
        final SameDiff vision;
        final SameDiff qformer;
        final SameDiff prefill;

        Graphs(Blip2Config config, ArtifactWeights weights, boolean graph) {
            vision = graph ? visionGraph(config, weights) : null;
            qformer = graph ? qformerGraph(config, weights) : null;
            prefill = graph ? prefillGraph(config, weights) : null;
        }

        /** The composition Blip2Graph gives the language model, from the Q-Former's output fed as a placeholder. */
        private static SameDiff prefillGraph(Blip2Config config, ArtifactWeights weights) {
            SameDiff prefill = Layers.newSameDiff();
            Layers nn = new Layers(prefill, weights);
            SDVariable queries = prefill.placeHolder("queries", DataType.FLOAT, -1, config.numQueryTokens(),
                    config.qformer().hiddenSize());
            SDVariable ids = prefill.placeHolder(Blip2Graph.INPUT_IDS, DataType.INT64, -1, -1);
            SDVariable mask = prefill.placeHolder(Blip2Graph.ATTENTION_MASK, DataType.INT64, -1, -1);
            Blip2Graph.LanguageModelInput input = Blip2Graph.languageModelInput(nn, config, queries, ids, mask);
            if (config.text() instanceof OptConfig opt) {
                SDVariable hidden = OptDecoder.build(nn, opt, input.embeds(), input.attentionMask()).lastHiddenState();
                // the last position's logits only, as generation needs and the peer times
                SDVariable lastIndex = nn.size(hidden, 1).sub(1L).castTo(DataType.INT64).reshape(1);
                SDVariable last = prefill.gather(hidden, lastIndex, 1);
                OptDecoder.lmHead(nn, opt, prefill.reshape(last, -1, opt.wordEmbedProjDim())).rename("logits");
            } else {
                SDVariable decoderIds = prefill.placeHolder(Blip2Graph.DECODER_INPUT_IDS, DataType.INT64, -1, -1);
                T5.build(nn, (T5Config) config.text(), input.embeds(), input.attentionMask(), decoderIds).logits()
                        .rename("logits");
            }
            return prefill;
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

    /** {@code count} token ids drawn by {@code seed}, clear of the first 4 (OPT's and T5's special tokens). */
    static long[] randomIds(Blip2Config config, int count, long seed) {
        Random random = new Random(seed);
        long[] ids = new long[count];
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
            Map<String, INDArray> feed = new HashMap<>(Map.of("queries", queries, Blip2Graph.INPUT_IDS, prompt,
                    Blip2Graph.ATTENTION_MASK, mask));
            if (lm.encoderDecoder()) {
                feed.put(Blip2Graph.DECODER_INPUT_IDS, Nd4j.zeros(DataType.INT64, 1, 1));
            }
            List<Double> times = options.graph() ? time("lm_prefill", graphs.prefill, feed, "logits")
                    : time("lm_prefill", () -> lm.prefill(queries));
            emit("lm_prefill", times, Map.of("tokens", queries.size(1) + options.promptTokens(),
                    "execution", options.graph() ? "graph" : "eager"));
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
        if (options.profile()) {
            Decoder decoder = lm.prefill(queries).decoder();
            EagerProfile.run("lm_decode_per_token (" + DECODE_STEPS + " steps)", () -> {
                long token = 0;
                for (int step = 0; step < DECODE_STEPS; step++) {
                    token = Generator.argmax(decoder.step(new long[]{token})[0]);
                }
            }, System.err);
        }
        List<BigDecimal> medians = perStep.stream().map(times -> rounded(median(times), 4)).toList();
        double growth = median(perStep.get(DECODE_STEPS - 1)) / median(perStep.get(0));
        emit("lm_decode_per_token", means, Map.of("tokens", DECODE_STEPS, "execution", "eager",
                "weights", weightsNote(), "step_median_s", medians, "last_to_first", rounded(growth, 3)));
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
        return options.resident() ? "resident" : "mapped";
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

    /** One JSON line: the times, the peak RSS, then {@code extra} (numbers, strings, lists of them). */
    private void emit(String name, List<Double> times, Map<String, Object> extra) {
        List<Double> sorted = new ArrayList<>(times);
        Collections.sort(sorted);
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("name", name);
        line.put("median_s", rounded(median(times), 4));
        line.put("min_s", rounded(sorted.get(0), 4));
        line.put("max_s", rounded(sorted.get(sorted.size() - 1), 4));
        line.put("repeats", times.size());
        line.put("peak_rss_mib", rssMib("VmHWM"));
        line.putAll(extra);
        String threads = System.getenv("OMP_NUM_THREADS");
        line.put("threads", threads != null && threads.matches("\\d+") ? Integer.valueOf(threads) : threads);
        try {
            out.println(JSON.writeValueAsString(line));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("bench line " + name + " cannot be written as JSON", e);
        }
        out.flush();
        resetPeakRss();
    }

    /** {@code value} to {@code digits} decimals; Jackson writes it as plain digits, whatever the locale. */
    private static BigDecimal rounded(double value, int digits) {
        return BigDecimal.valueOf(value).setScale(digits, RoundingMode.HALF_EVEN);
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
