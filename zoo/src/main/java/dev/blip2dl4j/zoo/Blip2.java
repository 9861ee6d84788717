package dev.blip2dl4j.zoo;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.convert.ArtifactFiles;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.arrays.ResidentWeights;
import dev.blip2dl4j.runtime.EagerImageTextRetrieval;
import dev.blip2dl4j.runtime.PromptInputs;
import dev.blip2dl4j.zoo.generate.Generation;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import dev.blip2dl4j.zoo.generate.Generator;
import dev.blip2dl4j.zoo.generate.ImageEncoder;
import dev.blip2dl4j.zoo.generate.LanguageModel;
import dev.blip2dl4j.zoo.hub.CatalogueEntry;
import dev.blip2dl4j.zoo.hub.Hub;
import dev.blip2dl4j.zoo.hub.HubSettings;
import dev.blip2dl4j.zoo.hub.PullListener;
import dev.blip2dl4j.zoo.image.DecodedImage;
import dev.blip2dl4j.zoo.image.ImageLoader;
import dev.blip2dl4j.zoo.image.ImageProcessor;
import dev.blip2dl4j.zoo.text.PromptTemplate;
import dev.blip2dl4j.zoo.text.Tokenizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * A BLIP-2 model and what it does: captions and answers ({@code Blip2ForConditionalGeneration} with OPT or
 * Flan-T5), image-text matching ({@code Blip2ForImageTextRetrieval}), image features. Every step from the
 * image file to the text reproduces transformers: Pillow-exact preprocessing, the tokenizer's own ids, the
 * graphs' activations (run eagerly, over the weights in their storage types), generate()'s search.
 *
 * <pre>{@code
 * try (Blip2 blip2 = Blip2.load(Path.of("blip2-opt-2.7b.b2z"))) {
 *     String caption = blip2.caption(Path.of("photo.jpg")).text();
 *     String answer = blip2.answer(Path.of("photo.jpg"), "what is the man holding?").text();
 * }
 * }</pre>
 *
 * One model serves one thread at a time (its bound layers and caches are reused between calls).
 */
public final class Blip2 implements AutoCloseable {
    /** The prompt templates users of BLIP-2 know: LAVIS's and the Hugging Face model cards'. */
    public static final PromptTemplate OPT_QUESTION_TEMPLATE = new PromptTemplate("Question: {} Answer:");
    public static final PromptTemplate T5_QUESTION_TEMPLATE = new PromptTemplate("Question: {} Short answer:");

    private final ModelFiles model;
    private final ImageProcessor processor;
    private final GenerationConfig generationDefaults;
    private Tokenizer tokenizer;
    private EagerImageTextRetrieval retrieval;
    private ImageEncoder imageEncoder;
    private LanguageModel languageModel;
    private boolean exifTranspose = true;
    private long maxImagePixels = ImageLoader.DEFAULT_MAX_PIXELS;
    private boolean residentLanguageModel;
    private ResidentWeights residentWeights;

    private Blip2(ModelFiles model) {
        this.model = model;
        this.processor = model.text("preprocessor_config.json").map(ImageProcessor::fromJson)
                .orElseGet(() -> ImageProcessor.fromJson("{}"));
        Blip2Config c = model.config();
        List<Long> eos = c.text().eosTokenId() == null ? List.of() : List.of(c.text().eosTokenId().longValue());
        Long pad = c.text().padTokenId() == null ? null : c.text().padTokenId().longValue();
        GenerationConfig defaults = GenerationConfig.defaults(eos, pad);
        this.generationDefaults = model.text("generation_config.json")
                .map(json -> GenerationConfig.parse(json, defaults)).orElse(defaults);
    }

    /**
     * A pretrained model by its catalogue name ({@code blip2 models} lists them): pulled into the cache on
     * first use (downloaded, checked, converted), from the cache afterwards. Settings come from the
     * environment ({@link HubSettings#fromEnvironment()}); a model that will not fit in memory is refused
     * before anything is downloaded.
     */
    public static Blip2 pretrained(String name) {
        return pretrained(name, Hub.fromEnvironment(), MemoryCheck.system(), PullListener.LOG);
    }

    /**
     * As {@link #pretrained(String)}, with the image encoder's and the language model's products stored as
     * {@code dtype} (bfloat16, float16, int8; float32 is the default): converted into that type straight from the
     * publisher's files and cached as its own artifact. The memory check counts the weights in that type.
     */
    public static Blip2 pretrained(String name, DType dtype) {
        return pretrained(name, StoragePolicy.of(dtype));
    }

    /** As {@link #pretrained(String, DType)}, with each part's type as the policy says (e.g. ViT bfloat16, LM int8). */
    public static Blip2 pretrained(String name, StoragePolicy storage) {
        return pretrained(name, storage, Hub.fromEnvironment(), MemoryCheck.system(), PullListener.LOG);
    }

    /** As {@link #pretrained(String)}, from the given hub, with the given memory check, telling {@code listener} how the pull goes. */
    public static Blip2 pretrained(String name, Hub hub, MemoryCheck memory, PullListener listener) {
        return pretrained(name, StoragePolicy.FLOAT32, hub, memory, listener);
    }

    /**
     * As {@link #pretrained(String, StoragePolicy)}, from the given hub, with the given memory check, telling
     * {@code listener} how the pull goes. A model that will not fit in that storage is refused before anything is
     * downloaded, naming the storage type it fits in and the largest model of the same tasks that fits as asked.
     */
    public static Blip2 pretrained(String name, StoragePolicy storage, Hub hub, MemoryCheck memory, PullListener listener) {
        CatalogueEntry entry = hub.catalogue().require(name);
        memory.require(name, storage, entry::weightBytes, hub.catalogue().largestFitting(entry.tasks(),
                        parameters -> memory.fits(parameters * Float.BYTES))
                .map(smaller -> "choose a smaller model such as " + smaller.name() + " (" + MemoryCheck.gigabytes(
                        MemoryCheck.estimate(smaller.weightBytes(StoragePolicy.FLOAT32))) + " in float32)")
                .orElse("choose a smaller model (`blip2 models` lists each one's memory)"));
        return load(List.of(hub.pull(name, storage, listener)), Converter.Options.defaults(), memory);
    }

    /** A model from a .b2z artifact (memory-mapped), or from an original checkpoint folder (read in memory). */
    public static Blip2 load(Path path) {
        return load(List.of(path), Converter.Options.defaults());
    }

    /** A model from checkpoint files as {@code blip2 convert} takes them (LAVIS: give its config in options). */
    public static Blip2 load(List<Path> paths, Converter.Options options) {
        return load(paths, options, MemoryCheck.system());
    }

    /**
     * As {@link #load(List, Converter.Options)}, refusing a model that will not fit in memory before any of its
     * weights is read ({@link MemoryCheck#OFF} to skip the check).
     */
    public static Blip2 load(List<Path> paths, Converter.Options options, MemoryCheck memory) {
        ModelFiles files = ModelFiles.open(paths, options);
        try {
            memory.require(files.weightBytes(), paths.size() == 1 ? paths.get(0).toString() : "the model");
        } catch (RuntimeException e) {
            files.close();
            throw e;
        }
        return new Blip2(files);
    }

    public Blip2Config config() {
        return model.config();
    }

    /**
     * The same model with other weights under the same names (fine-tuned ones over the originals), sharing
     * this one's files and settings. Its layers bind {@code weights} when first used; closing it leaves this
     * model open.
     */
    public Blip2 withWeights(Weights weights) {
        Blip2 other = new Blip2(new ModelFiles(model.config(), weights, model.files(), () -> { }));
        other.exifTranspose = exifTranspose;
        other.maxImagePixels = maxImagePixels;
        return other;
    }

    /** The model's generation settings (its generation_config.json over transformers' defaults). */
    public GenerationConfig generationDefaults() {
        return generationDefaults;
    }

    /** Whether images are turned as their EXIF orientation says (as transformers' load_image does; default on). */
    public Blip2 exifTranspose(boolean on) {
        this.exifTranspose = on;
        return this;
    }

    /** Images with more pixels are refused before they are decoded (decompression bombs). */
    public Blip2 maxImagePixels(long pixels) {
        this.maxImagePixels = pixels;
        return this;
    }

    /**
     * Whether the language model's weights are copied into process memory when generation first needs them,
     * rather than read through the artifact's mapping (default off). Decoding is bound by how fast the
     * weights stream: resident, a token takes markedly less time (README "Benchmarks"), and the process holds
     * the language model's size in memory more ({@link ResidentWeights}).
     */
    public Blip2 residentLanguageModel(boolean on) {
        if (languageModel != null && on != residentLanguageModel) {
            throw new IllegalStateException("set residentLanguageModel before the first generation");
        }
        this.residentLanguageModel = on;
        return this;
    }

    public DecodedImage loadImage(Path file) {
        return ImageLoader.load(file, exifTranspose, maxImagePixels);
    }

    /** A caption of the image, with the model's generation settings. */
    public Caption caption(Path image) {
        return caption(image, "", generationDefaults);
    }

    /** A continuation of {@code prompt} about the image ("a photo of" ...). */
    public Caption caption(Path image, String prompt, GenerationConfig generation) {
        return caption(List.of(loadImage(image)), List.of(prompt), generation).get(0);
    }

    /** The answer to a question about the image, in the prompt template of the model's language model. */
    public Caption answer(Path image, String question) {
        return caption(image, questionPrompt(question), generationDefaults);
    }

    public String questionPrompt(String question) {
        return (config().useDecoderOnlyLanguageModel() ? OPT_QUESTION_TEMPLATE : T5_QUESTION_TEMPLATE).fill(question.trim());
    }

    /**
     * Captions (or continues the prompts of) several images at once: one batch through the image encoder and
     * one generation, prompts left-padded for OPT as transformers pads them. Gives the same text as one by one.
     */
    public List<Caption> caption(List<DecodedImage> images, List<String> prompts, GenerationConfig generation) {
        return caption(images, prompts, generation, 0);
    }

    /** As {@link #caption(List, List, GenerationConfig)}, recording the top {@code stepTopK} scores of every step. */
    public List<Caption> caption(List<DecodedImage> images, List<String> prompts, GenerationConfig generation, int stepTopK) {
        requireKind(ModelKind.CONDITIONAL_GENERATION, "generate text");
        if (images.size() != prompts.size() || images.isEmpty()) {
            throw new IllegalArgumentException("one prompt per image: " + images.size() + " images, " + prompts.size() + " prompts");
        }
        long t0 = System.nanoTime();
        INDArray pixels = processor.preprocess(images);
        List<long[]> promptIds = new ArrayList<>();
        for (String prompt : prompts) {
            promptIds.add(tokenizer().encode(prompt));
        }
        return caption(pixels, promptIds, generation, stepTopK, System.nanoTime() - t0);
    }

    private List<Caption> caption(INDArray pixels, List<long[]> promptIds, GenerationConfig generation, int stepTopK,
                                  long preprocessNanos) {
        long t1 = System.nanoTime();
        INDArray projected = imageEncoder().languageInputs(pixels);
        long t2 = System.nanoTime();
        Generation generated = generate(projected, promptIds, generation, stepTopK);
        long t3 = System.nanoTime();

        int newTokens = Arrays.stream(generated.sequences()).mapToInt(ids -> ids.length).max().orElse(0)
                - languageModel().decoderPrefix().length;
        Caption.Timings timings = new Caption.Timings(preprocessNanos / 1_000_000, (t2 - t1) / 1_000_000,
                (t3 - t2) / 1_000_000, newTokens);
        int batch = promptIds.size();
        int perInput = generated.sequences().length / batch;
        List<Caption> captions = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            List<Caption.Sequence> sequences = new ArrayList<>();
            for (int j = 0; j < perInput; j++) {
                int row = b * perInput + j;
                long[] ids = asTransformersReturns(generated.sequences()[row]);
                long[][] topIds = new long[generated.topTokens().size()][];
                float[][] topScores = new float[topIds.length][];
                for (int step = 0; step < topIds.length; step++) {
                    topIds[step] = generated.topTokens().get(step)[row];
                    topScores[step] = generated.topScores().get(step)[row];
                }
                sequences.add(new Caption.Sequence(tokenizer().decode(ids, true).strip(), ids, generated.scores()[row],
                        topIds, topScores));
            }
            captions.add(new Caption(sequences, timings));
        }
        return captions;
    }

    /**
     * Generation from pixel values already preprocessed ({@code [batch, 3, size, size]}) and prompts already
     * tokenized, to token ids (as the language model produced them, without OPT's BOS): for callers with their
     * own preprocessing or decoding, and for the benchmark, whose random model has no tokenizer.
     */
    public Generation generate(INDArray pixels, List<long[]> promptIds, GenerationConfig generation) {
        requireKind(ModelKind.CONDITIONAL_GENERATION, "generate text");
        if (pixels.size(0) != promptIds.size()) {
            throw new IllegalArgumentException("one prompt per image: " + pixels.size(0) + " images, "
                    + promptIds.size() + " prompts");
        }
        return generate(imageEncoder().languageInputs(pixels), promptIds, generation, 0);
    }

    /** The language model's generation after the projected image queries {@code [batch, queries, width]}. */
    private Generation generate(INDArray projected, List<long[]> promptIds, GenerationConfig generation, int stepTopK) {
        LanguageModel lm = languageModel();
        int longest = promptIds.stream().mapToInt(ids -> ids.length).max().orElse(0);
        int batch = promptIds.size();
        int queries = config().numQueryTokens();
        long[][] padded = new long[batch][longest];
        INDArray promptMask = Nd4j.zeros(DataType.FLOAT, batch, longest);
        long pad = generation.padTokenId() == null ? 0 : generation.padTokenId();
        for (int b = 0; b < batch; b++) {
            long[] ids = promptIds.get(b);
            // OPT is padded on the left, so that every row's last position is its prompt's end; T5 on the right
            int offset = lm.decoderOnly() ? longest - ids.length : 0;
            Arrays.fill(padded[b], pad);
            System.arraycopy(ids, 0, padded[b], offset, ids.length);
            promptMask.get(NDArrayIndex.point(b), NDArrayIndex.interval(offset, offset + ids.length)).assign(1);
        }
        INDArray embeds = lm.inputsEmbeds(projected, padded);
        INDArray mask = PromptInputs.attentionMask(queries, promptMask);
        int newTokens = generation.newTokens(longest, lm.decoderOnly());
        if (config().text() instanceof OptConfig opt
                && queries + longest + newTokens > opt.maxPositionEmbeddings()) {
            throw new BadInputException("the prompt is " + longest + " tokens long: with the " + queries
                    + " image queries and " + newTokens + " new tokens that is more than OPT's "
                    + opt.maxPositionEmbeddings() + " positions; shorten it or ask for fewer new tokens");
        }
        LanguageModel.Started started = lm.start(embeds, mask, queries + longest + newTokens + 1);
        return new Generator(generation, stepTopK).generate(started.logits(), started.decoder(), lm.decoderPrefix(),
                newTokens);
    }

    /** transformers' BLIP-2 prepends OPT's BOS to what the language model generated. */
    private long[] asTransformersReturns(long[] generated) {
        if (!languageModel().decoderOnly() || config().text().bosTokenId() == null) {
            return generated;
        }
        long[] ids = new long[generated.length + 1];
        ids[0] = config().text().bosTokenId();
        System.arraycopy(generated, 0, ids, 1, generated.length);
        return ids;
    }

    /** Image-text matching by the retrieval model: ITM probability and ITC similarity. */
    public Match match(Path image, String text) {
        return match(List.of(loadImage(image)), List.of(text)).get(0);
    }

    /**
     * Matches image i with text i, all pairs at once: the images through the vision encoder once each (an image
     * given for several texts, as the same object, is encoded once), the texts padded to the longest.
     */
    public List<Match> match(List<DecodedImage> images, List<String> texts) {
        requireKind(ModelKind.IMAGE_TEXT_RETRIEVAL, "match images and texts");
        if (images.size() != texts.size() || images.isEmpty()) {
            throw new IllegalArgumentException("one text per image: " + images.size() + " images, " + texts.size()
                    + " texts");
        }
        Map<DecodedImage, Integer> distinct = new IdentityHashMap<>();
        int[] imageOf = new int[images.size()];
        for (int i = 0; i < images.size(); i++) {
            imageOf[i] = distinct.computeIfAbsent(images.get(i), image -> distinct.size());
        }
        List<DecodedImage> encoded = new ArrayList<>(Collections.nCopies(distinct.size(), null));
        distinct.forEach((image, index) -> encoded.set(index, image));
        INDArray imageEmbeds = imageEncoder().imageEmbeds(processor.preprocess(encoded));
        List<long[]> ids = new ArrayList<>();
        for (String text : texts) {
            ids.add(tokenizer().encode(text));
        }
        EagerImageTextRetrieval.Texts padded = EagerImageTextRetrieval.Texts.padded(ids);
        EagerImageTextRetrieval heads = retrieval();
        INDArray pairedImages = distinct.size() == images.size() ? imageEmbeds : Nd4j.concat(0, Arrays.stream(imageOf)
                .mapToObj(i -> imageEmbeds.get(NDArrayIndex.interval(i, i + 1))).toArray(INDArray[]::new));
        INDArray logits = heads.matching(pairedImages, padded).logits();
        INDArray similarity = EagerImageTextRetrieval.similarity(heads.imageSide(imageEmbeds), heads.textSide(padded));
        List<Match> matches = new ArrayList<>();
        for (int i = 0; i < images.size(); i++) {
            double probability = 1 / (1 + Math.exp(logits.getDouble(i, 0) - logits.getDouble(i, 1)));
            matches.add(new Match(probability, similarity.getDouble(imageOf[i], i)));
        }
        return matches;
    }

    /**
     * The image as the language model sees it: the Q-Former's query outputs {@code [batch, queries, width]}
     * (what LAVIS's extract_features calls image_embeds; for the retrieval model, the image side of contrast
     * before its projection).
     */
    public INDArray imageFeatures(List<DecodedImage> images) {
        ImageEncoder encoder = imageEncoder();
        return encoder.queries(encoder.imageEmbeds(processor.preprocess(images)));
    }

    public INDArray imageFeatures(Path image) {
        return imageFeatures(List.of(loadImage(image)));
    }

    private void requireKind(ModelKind kind, String what) {
        if (config().kind() != kind) {
            throw new BadInputException("this model (" + config().kind().architecture() + ") cannot " + what
                    + "; that takes a " + kind.architecture());
        }
    }

    /** The model's weights by canonical name (memory-mapped from an artifact). */
    public Weights weights() {
        return model.weights();
    }

    /** The image processor of the model's preprocessor_config.json. */
    public ImageProcessor imageProcessor() {
        return processor;
    }

    /** Whether the model came with a tokenizer (an artifact converted from a bare LAVIS .pth has none). */
    public boolean hasTokenizer() {
        return model.files().containsKey(ArtifactFiles.TOKENIZER_DIR + "tokenizer.json");
    }

    /** The model's tokenizer (its tokenizer/tokenizer.json). */
    public Tokenizer tokenizer() {
        if (tokenizer == null) {
            tokenizer = Tokenizer.fromJson(model.tokenizerJson());
        }
        return tokenizer;
    }

    private EagerImageTextRetrieval retrieval() {
        if (retrieval == null) {
            retrieval = new EagerImageTextRetrieval(config(), model.weights());
        }
        return retrieval;
    }

    private ImageEncoder imageEncoder() {
        if (imageEncoder == null) {
            imageEncoder = new ImageEncoder(config(), model.weights());
        }
        return imageEncoder;
    }

    private LanguageModel languageModel() {
        if (languageModel == null) {
            if (residentLanguageModel) {
                residentWeights = new ResidentWeights(model.weights());
            }
            languageModel = LanguageModel.of(config(), residentLanguageModel ? residentWeights : model.weights());
        }
        return languageModel;
    }

    @Override
    public void close() {
        if (tokenizer != null) {
            tokenizer.close();
        }
        if (residentWeights != null) {
            residentWeights.close();
        }
        model.close();
    }
}
