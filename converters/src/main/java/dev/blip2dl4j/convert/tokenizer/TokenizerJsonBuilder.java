package dev.blip2dl4j.convert.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Gives a checkpoint folder's tokenizer as a Hugging Face {@code tokenizer.json}, the one format our
 * tokenizer loads. A folder that has the file keeps it as it is. A folder with only the slow-tokenizer
 * files gets the {@code tokenizer.json} that transformers builds from them when it loads the fast
 * tokenizer ({@code convert_slow_tokenizer}), for the three tokenizers BLIP-2 uses:
 * <ul>
 *   <li>{@code GPT2Tokenizer}: byte-level BPE from {@code vocab.json} + {@code merges.txt} (OPT);</li>
 *   <li>{@code BertTokenizer}: WordPiece from {@code vocab.txt} (the Q-Former's);</li>
 *   <li>{@code T5Tokenizer}: sentencepiece Unigram from {@code spiece.model} (Flan-T5).</li>
 * </ul>
 * {@code tokenizer_config.json} names the class; without it the vocabulary files decide. Added and
 * special tokens come from {@code tokenizer_config.json}, {@code special_tokens_map.json} and
 * {@code added_tokens.json} as transformers reads them.
 */
public final class TokenizerJsonBuilder {
    private static final String TOKENIZER_JSON = "tokenizer.json";

    private TokenizerJsonBuilder() {
    }

    /**
     * The folder's tokenizer.json, or one built from its slow-tokenizer files; empty when it has neither.
     *
     * @throws BadInputException when a file is malformed or the tokenizer class is not one we convert
     */
    public static Optional<TokenizerJson> build(Path folder) {
        Path existing = folder.resolve(TOKENIZER_JSON);
        if (Files.isRegularFile(existing)) {
            return Optional.of(new TokenizerJson(readString(existing), List.of(existing)));
        }
        if (!hasSlowVocabulary(folder)) {
            return Optional.empty();
        }
        SlowTokenizerConfig config = SlowTokenizerConfig.read(folder);
        SlowTokenizer slow = open(folder, config);
        AddedVocabulary added = AddedVocabulary.build(slow.vocab(), slow.modelAddedTokens(),
                config.declaredAddedTokens(slow.specialTokens()), slow.specialTokens());

        ObjectNode root = JsonFiles.MAPPER.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode addedTokens = root.putArray("added_tokens");
        added.byId().forEach((id, token) -> addedTokens.addObject()
                .put("id", id)
                .put("content", token.content())
                .put("single_word", token.singleWord())
                .put("lstrip", token.lstrip())
                .put("rstrip", token.rstrip())
                .put("normalized", token.isNormalized())
                .put("special", token.special()));
        root.set("normalizer", slow.normalizer());
        root.set("pre_tokenizer", slow.preTokenizer());
        root.set("post_processor", slow.postProcessor(added));
        root.set("decoder", slow.decoder());
        root.set("model", slow.model());

        List<Path> sources = new ArrayList<>(slow.sources());
        sources.addAll(config.sources());
        return Optional.of(new TokenizerJson(write(root), sources));
    }

    private static boolean hasSlowVocabulary(Path folder) {
        return List.of(ByteLevelBpe.VOCAB, ByteLevelBpe.MERGES, BertWordPiece.VOCAB, T5Unigram.MODEL).stream()
                .anyMatch(name -> Files.isRegularFile(folder.resolve(name)));
    }

    private static SlowTokenizer open(Path folder, SlowTokenizerConfig config) {
        String tokenizerClass = config.tokenizerClass().orElseGet(() ->
                Files.isRegularFile(folder.resolve(T5Unigram.MODEL)) ? "T5Tokenizer"
                        : Files.isRegularFile(folder.resolve(BertWordPiece.VOCAB)) ? "BertTokenizer"
                        : "GPT2Tokenizer");
        return switch (tokenizerClass) {
            case "GPT2Tokenizer" -> ByteLevelBpe.read(folder, config);
            case "BertTokenizer" -> BertWordPiece.read(folder, config);
            case "T5Tokenizer" -> T5Unigram.read(folder, config);
            default -> throw new BadInputException(config.configFile(), "tokenizer_class '" + tokenizerClass
                    + "' cannot be converted to tokenizer.json here (GPT2Tokenizer, BertTokenizer and T5Tokenizer"
                    + " can); put the checkpoint's own tokenizer.json into the folder");
        };
    }

    private static String readString(Path file) {
        try {
            return Files.readString(file);
        } catch (CharacterCodingException e) {
            throw new BadInputException(file, "not UTF-8 text", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    private static String write(ObjectNode root) {
        try {
            return JsonFiles.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a JSON tree built in memory cannot be written", e);
        }
    }
}
