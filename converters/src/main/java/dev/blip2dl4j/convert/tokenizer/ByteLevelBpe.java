package dev.blip2dl4j.convert.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.tokenizer.TemplateProcessing.Piece;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * GPT-2's byte-level BPE from {@code vocab.json} and {@code merges.txt}, converted as transformers'
 * {@code GPT2Converter} does. OPT uses it too, with RoBERTa's ids and {@code add_bos_token}: its
 * tokenizer puts {@code bos_token} ({@code </s>} for OPT) before every text.
 */
final class ByteLevelBpe implements SlowTokenizer {
    static final String VOCAB = "vocab.json";
    static final String MERGES = "merges.txt";

    /** GPT2Tokenizer's defaults: one token is beginning, end and unknown. */
    private static final Map<String, String> DEFAULT_SPECIAL_TOKENS = Map.of(
            "bos_token", "<|endoftext|>", "eos_token", "<|endoftext|>", "unk_token", "<|endoftext|>");

    private final Path vocabFile;
    private final Path mergesFile;
    private final Map<String, Integer> vocab;
    private final List<String> merges;
    private final SlowTokenizerConfig config;
    private final SpecialTokens specialTokens;

    private ByteLevelBpe(Path folder, SlowTokenizerConfig config) {
        this.vocabFile = folder.resolve(VOCAB);
        this.mergesFile = folder.resolve(MERGES);
        for (Path file : List.of(vocabFile, mergesFile)) {
            if (!Files.isRegularFile(file)) {
                throw new BadInputException(file, "missing: a byte-level BPE tokenizer needs both " + VOCAB
                        + " and " + MERGES);
            }
        }
        this.vocab = readVocab(vocabFile);
        this.merges = readMerges(mergesFile, vocab);
        this.config = config;
        this.specialTokens = config.specialTokens(DEFAULT_SPECIAL_TOKENS);
    }

    static ByteLevelBpe read(Path folder, SlowTokenizerConfig config) {
        return new ByteLevelBpe(folder, config);
    }

    @Override
    public List<Path> sources() {
        return List.of(vocabFile, mergesFile);
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
        return NullNode.getInstance();
    }

    @Override
    public JsonNode preTokenizer() {
        return byteLevel(config.flag("add_prefix_space", false), true);
    }

    @Override
    public JsonNode postProcessor(AddedVocabulary ids) {
        if (!config.flag("add_bos_token", false)) {
            // Offsets only (trim_offsets false): GPT-2 adds no tokens around a text.
            return byteLevel(true, false);
        }
        String bos = specialTokens.content("bos_token").orElseThrow(() -> new BadInputException(
                config.configFile(), "add_bos_token is true but there is no bos_token"));
        return TemplateProcessing.json(
                List.of(Piece.token(bos, 0), Piece.sequence("A", 0)),
                List.of(Piece.token(bos, 0), Piece.sequence("A", 0), Piece.sequence("B", 1)),
                ids);
    }

    @Override
    public JsonNode decoder() {
        return byteLevel(true, true);
    }

    @Override
    public JsonNode model() {
        ObjectNode model = JsonFiles.MAPPER.createObjectNode();
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.put("continuing_subword_prefix", "");
        model.put("end_of_word_suffix", "");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        ObjectNode vocabNode = model.putObject("vocab");
        vocab.forEach(vocabNode::put);
        // "left right" strings: the form every tokenizers version reads (byte-level tokens hold no spaces).
        merges.forEach(model.putArray("merges")::add);
        return model;
    }

    private static ObjectNode byteLevel(boolean addPrefixSpace, boolean trimOffsets) {
        ObjectNode node = JsonFiles.MAPPER.createObjectNode();
        node.put("type", "ByteLevel");
        node.put("add_prefix_space", addPrefixSpace);
        node.put("trim_offsets", trimOffsets);
        node.put("use_regex", true);
        return node;
    }

    /** The token to id map, ordered by id as tokenizer.json lists it. */
    private static Map<String, Integer> readVocab(Path file) {
        JsonNode root = JsonFiles.readObject(file);
        Map<Integer, String> tokensById = new HashMap<>();
        for (Map.Entry<String, JsonNode> entry : root.properties()) {
            JsonNode id = entry.getValue();
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0) {
                throw new BadInputException(file, "the id of token '" + entry.getKey()
                        + "' is not a non-negative integer: " + id);
            }
            String previous = tokensById.put(id.asInt(), entry.getKey());
            if (previous != null) {
                throw new BadInputException(file, "tokens '" + previous + "' and '" + entry.getKey()
                        + "' have the same id " + id.asInt());
            }
        }
        Map<String, Integer> vocab = new LinkedHashMap<>();
        tokensById.entrySet().stream()
                .sorted(Map.Entry.comparingByKey(Comparator.naturalOrder()))
                .forEach(e -> vocab.put(e.getValue(), e.getKey()));
        return vocab;
    }

    /**
     * The merges by rank, each "left right". The tokenizers library rejects a merge whose parts or
     * result are not in the vocabulary; finding that here names the line.
     */
    private static List<String> readMerges(Path file, Map<String, Integer> vocab) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (CharacterCodingException e) {
            throw new BadInputException(file, "not UTF-8 text", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        List<String> merges = new ArrayList<>(lines.size());
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if ((i == 0 && line.startsWith("#version")) || line.isEmpty()) {
                continue;
            }
            String[] parts = line.split(" ", -1);
            String where = "line " + (i + 1) + ": ";
            if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
                throw new BadInputException(file, where + "expected two tokens separated by one space, found '"
                        + line + "'");
            }
            for (String token : List.of(parts[0], parts[1], parts[0] + parts[1])) {
                if (!vocab.containsKey(token)) {
                    throw new BadInputException(file, where + "token '" + token + "' is not in " + VOCAB);
                }
            }
            merges.add(line);
        }
        return merges;
    }
}
