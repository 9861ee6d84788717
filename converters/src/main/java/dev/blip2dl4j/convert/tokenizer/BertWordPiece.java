package dev.blip2dl4j.convert.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.tokenizer.TemplateProcessing.Piece;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * BERT's WordPiece from {@code vocab.txt} (one token per line, the line number its id), converted as
 * transformers' {@code BertConverter} does. BLIP-2's Q-Former uses bert-base-uncased plus a
 * {@code [DEC]} token that its config adds after the vocabulary (id 30522).
 */
final class BertWordPiece implements SlowTokenizer {
    static final String VOCAB = "vocab.txt";

    private static final Map<String, String> DEFAULT_SPECIAL_TOKENS = Map.of(
            "unk_token", "[UNK]", "sep_token", "[SEP]", "pad_token", "[PAD]", "cls_token", "[CLS]",
            "mask_token", "[MASK]");

    private final Path vocabFile;
    private final Map<String, Integer> vocab;
    private final SlowTokenizerConfig config;
    private final SpecialTokens specialTokens;

    private BertWordPiece(Path folder, SlowTokenizerConfig config) {
        this.vocabFile = folder.resolve(VOCAB);
        if (!Files.isRegularFile(vocabFile)) {
            throw new BadInputException(vocabFile, "missing: a WordPiece tokenizer needs " + VOCAB);
        }
        this.vocab = readVocab(vocabFile);
        this.config = config;
        this.specialTokens = config.specialTokens(DEFAULT_SPECIAL_TOKENS);
    }

    static BertWordPiece read(Path folder, SlowTokenizerConfig config) {
        return new BertWordPiece(folder, config);
    }

    @Override
    public List<Path> sources() {
        return List.of(vocabFile);
    }

    @Override
    public Map<String, Integer> vocab() {
        return vocab;
    }

    @Override
    public List<AddedToken> modelAddedTokens() {
        return List.of();
    }

    @Override
    public SpecialTokens specialTokens() {
        return specialTokens;
    }

    @Override
    public JsonNode normalizer() {
        ObjectNode node = JsonFiles.MAPPER.createObjectNode();
        node.put("type", "BertNormalizer");
        node.put("clean_text", true);
        node.put("handle_chinese_chars", config.flag("tokenize_chinese_chars", true));
        // null: strip accents exactly when lowercasing, as BERT's basic tokenizer does
        node.put("strip_accents", config.optionalFlag("strip_accents"));
        node.put("lowercase", config.flag("do_lower_case", true));
        return node;
    }

    @Override
    public JsonNode preTokenizer() {
        return JsonFiles.MAPPER.createObjectNode().put("type", "BertPreTokenizer");
    }

    @Override
    public JsonNode postProcessor(AddedVocabulary ids) {
        String cls = required("cls_token");
        String sep = required("sep_token");
        return TemplateProcessing.json(
                List.of(Piece.token(cls, 0), Piece.sequence("A", 0), Piece.token(sep, 0)),
                List.of(Piece.token(cls, 0), Piece.sequence("A", 0), Piece.token(sep, 0),
                        Piece.sequence("B", 1), Piece.token(sep, 1)),
                ids);
    }

    @Override
    public JsonNode decoder() {
        return JsonFiles.MAPPER.createObjectNode().put("type", "WordPiece").put("prefix", "##").put("cleanup", true);
    }

    @Override
    public JsonNode model() {
        ObjectNode model = JsonFiles.MAPPER.createObjectNode();
        model.put("type", "WordPiece");
        model.put("unk_token", required("unk_token"));
        model.put("continuing_subword_prefix", "##");
        model.put("max_input_chars_per_word", 100);
        ObjectNode vocabNode = model.putObject("vocab");
        vocab.forEach(vocabNode::put);
        return model;
    }

    private String required(String attribute) {
        return specialTokens.content(attribute).orElseThrow(() -> new BadInputException(config.configFile(),
                "a WordPiece tokenizer needs a " + attribute + ", but it is null"));
    }

    /**
     * Line i holds the token with id i. Lines end at '\n' only, as transformers splits them; a token
     * listed twice keeps its last line, as transformers' dictionary does.
     */
    private static Map<String, Integer> readVocab(Path file) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(Files.readAllBytes(file))).toString();
        } catch (CharacterCodingException e) {
            throw new BadInputException(file, "not UTF-8 text", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        if (text.isEmpty()) {
            throw new BadInputException(file, "empty vocabulary");
        }
        String[] lines = text.split("\n", -1);
        int count = text.endsWith("\n") ? lines.length - 1 : lines.length;
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int id = 0; id < count; id++) {
            vocab.remove(lines[id]);
            vocab.put(lines[id], id);
        }
        return vocab;
    }
}
