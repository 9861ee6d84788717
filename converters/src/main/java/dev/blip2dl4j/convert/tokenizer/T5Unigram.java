package dev.blip2dl4j.convert.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.tokenizer.SentencePieceModel.Piece;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * T5's sentencepiece Unigram model from {@code spiece.model}, converted as transformers'
 * {@code T5Converter} (a {@code SpmConverter}) does:
 * <ul>
 *   <li>the vocabulary is the model's pieces with their scores, then {@code extra_ids} sentinel tokens
 *       {@code <extra_id_99>} ... {@code <extra_id_0>} with score 0;</li>
 *   <li>the normalizer replays sentencepiece's own: its precompiled character map (NFKC-like rules,
 *       carried over byte for byte), then dropping trailing whitespace and turning runs of spaces into
 *       one {@code ▁} (sentencepiece's {@code remove_extra_whitespaces});</li>
 *   <li>Metaspace turns spaces into {@code ▁} and puts one in front of the text
 *       ({@code add_prefix_space}; non-{@code legacy} tokenizers only before the first section);</li>
 *   <li>{@code </s>} ends every sequence.</li>
 * </ul>
 */
final class T5Unigram implements SlowTokenizer {
    static final String MODEL = "spiece.model";
    private static final String META_SPACE = "\u2581";
    private static final Map<String, String> DEFAULT_SPECIAL_TOKENS = Map.of(
            "eos_token", "</s>", "unk_token", "<unk>", "pad_token", "<pad>");

    private final Path modelFile;
    private final SentencePieceModel spm;
    private final List<String> extraIds;
    private final Map<String, Integer> vocab = new HashMap<>();
    private final SlowTokenizerConfig config;
    private final SpecialTokens specialTokens;

    private T5Unigram(Path folder, SlowTokenizerConfig config) {
        this.modelFile = folder.resolve(MODEL);
        if (!Files.isRegularFile(modelFile)) {
            throw new BadInputException(modelFile, "missing: a T5 tokenizer needs " + MODEL);
        }
        this.spm = SentencePieceModel.read(modelFile);
        if (spm.modelType() != SentencePieceModel.UNIGRAM) {
            throw new BadInputException(modelFile, "T5's tokenizer is a Unigram model, but this sentencepiece "
                    + "model has type " + spm.modelType() + " (1 Unigram, 2 BPE, 3 word, 4 char)");
        }
        this.config = config;
        List<String> sentinels = IntStream.range(0, config.integer("extra_ids", 100))
                .mapToObj(i -> "<extra_id_" + i + ">")
                .toList();
        // The vocabulary lists them last to first: <extra_id_0> has the highest id.
        this.extraIds = new ArrayList<>(sentinels);
        Collections.reverse(extraIds);
        List<String> tokens = new ArrayList<>(spm.pieces().stream().map(Piece::piece).toList());
        tokens.addAll(extraIds);
        for (int id = 0; id < tokens.size(); id++) {
            vocab.put(tokens.get(id), id);
        }
        // T5Tokenizer makes the sentinels additional special tokens unless the config already lists some.
        SpecialTokens named = config.specialTokens(DEFAULT_SPECIAL_TOKENS);
        boolean listed = named.additional().stream().anyMatch(token -> token.content().contains("<extra_id_"));
        this.specialTokens = listed ? named : named.withMoreAdditional(sentinels);
    }

    static T5Unigram read(Path folder, SlowTokenizerConfig config) {
        return new T5Unigram(folder, config);
    }

    @Override
    public List<Path> sources() {
        return List.of(modelFile);
    }

    @Override
    public Map<String, Integer> vocab() {
        return vocab;
    }

    /** Control pieces ({@code <pad>}, {@code </s>}) are special; user-defined pieces are matched but not special. */
    @Override
    public List<AddedToken> modelAddedTokens() {
        List<AddedToken> tokens = new ArrayList<>();
        for (Piece piece : spm.pieces()) {
            if (piece.type() == Piece.CONTROL || piece.type() == Piece.USER_DEFINED) {
                tokens.add(new AddedToken(piece.piece(), false, false, false, false, piece.type() == Piece.CONTROL));
            }
        }
        return tokens;
    }

    @Override
    public SpecialTokens specialTokens() {
        return specialTokens;
    }

    @Override
    public JsonNode normalizer() {
        ObjectNode node = JsonFiles.MAPPER.createObjectNode().put("type", "Sequence");
        ArrayNode steps = node.putArray("normalizers");
        if (spm.precompiledCharsmap().length > 0) {
            steps.addObject()
                    .put("type", "Precompiled")
                    .put("precompiled_charsmap", Base64.getEncoder().encodeToString(spm.precompiledCharsmap()));
        }
        steps.addObject().put("type", "Strip").put("strip_left", false).put("strip_right", true);
        ObjectNode replace = steps.addObject().put("type", "Replace");
        replace.putObject("pattern").put("Regex", " {2,}");
        replace.put("content", META_SPACE);
        return node;
    }

    @Override
    public JsonNode preTokenizer() {
        return metaspace();
    }

    @Override
    public JsonNode postProcessor(AddedVocabulary ids) {
        // T5Converter names "</s>" itself rather than eos_token.
        return TemplateProcessing.json(
                List.of(TemplateProcessing.Piece.sequence("A", 0), TemplateProcessing.Piece.token("</s>", 0)),
                List.of(TemplateProcessing.Piece.sequence("A", 0), TemplateProcessing.Piece.token("</s>", 0),
                        TemplateProcessing.Piece.sequence("B", 0), TemplateProcessing.Piece.token("</s>", 0)),
                ids);
    }

    @Override
    public JsonNode decoder() {
        return metaspace();
    }

    @Override
    public JsonNode model() {
        ObjectNode model = JsonFiles.MAPPER.createObjectNode();
        model.put("type", "Unigram");
        model.put("unk_id", spm.unkId());
        ArrayNode vocabNode = model.putArray("vocab");
        for (Piece piece : spm.pieces()) {
            // The float score widened to double: the value Python reads from the proto.
            vocabNode.addArray().add(piece.piece()).add((double) piece.score());
        }
        for (String extraId : extraIds) {
            vocabNode.addArray().add(extraId).add(0.0);
        }
        model.put("byte_fallback", false);
        return model;
    }

    private ObjectNode metaspace() {
        String prependScheme = !config.flag("add_prefix_space", true) ? "never"
                : config.flag("legacy", true) ? "always"
                : "first";
        return JsonFiles.MAPPER.createObjectNode()
                .put("type", "Metaspace")
                .put("replacement", META_SPACE)
                .put("prepend_scheme", prependScheme)
                .put("split", true);
    }
}
