package dev.blip2dl4j.convert.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
import dev.blip2dl4j.BadInputException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The settings of a slow tokenizer as {@code from_pretrained} in transformers reads them from a
 * checkpoint folder: {@code tokenizer_config.json} (init arguments, special tokens and, since
 * transformers 4.34, {@code added_tokens_decoder}), and for folders saved before that,
 * {@code special_tokens_map.json} and {@code added_tokens.json}. Every file is optional.
 */
final class SlowTokenizerConfig {
    private static final String CONFIG = "tokenizer_config.json";
    private static final String SPECIAL_TOKENS_MAP = "special_tokens_map.json";
    private static final String ADDED_TOKENS = "added_tokens.json";

    /** An added token whose id a config file states; the builder checks it gets that id. */
    record DeclaredToken(int id, AddedToken token, Path file) {
    }

    private final Path configFile;
    private final JsonNode config;
    private final Path specialTokensMapFile;
    private final JsonNode specialTokensMap;
    private final Path addedTokensFile;
    private final JsonNode addedTokens;
    private final List<Path> sources = new ArrayList<>();

    private SlowTokenizerConfig(Path folder) {
        configFile = folder.resolve(CONFIG);
        config = readIfPresent(configFile);
        specialTokensMapFile = folder.resolve(SPECIAL_TOKENS_MAP);
        specialTokensMap = readIfPresent(specialTokensMapFile);
        addedTokensFile = folder.resolve(ADDED_TOKENS);
        addedTokens = readIfPresent(addedTokensFile);
    }

    static SlowTokenizerConfig read(Path folder) {
        return new SlowTokenizerConfig(folder);
    }

    /** The config files that exist in the folder, all of which were read. */
    List<Path> sources() {
        return List.copyOf(sources);
    }

    Path configFile() {
        return configFile;
    }

    /** {@code tokenizer_class} without the "Fast" suffix: the slow and fast classes convert alike. */
    Optional<String> tokenizerClass() {
        JsonNode value = config.path("tokenizer_class");
        return value.isTextual() ? Optional.of(value.asText().replaceFirst("Fast$", "")) : Optional.empty();
    }

    boolean flag(String key, boolean defaultValue) {
        JsonNode value = config.path(key);
        return value.isBoolean() ? value.asBoolean() : defaultValue;
    }

    int integer(String key, int defaultValue) {
        JsonNode value = config.path(key);
        return value.canConvertToInt() ? value.asInt() : defaultValue;
    }

    /** A tri-state setting such as BERT's {@code strip_accents}: true, false, or null (absent or null). */
    Boolean optionalFlag(String key) {
        JsonNode value = config.path(key);
        return value.isBoolean() ? value.asBoolean() : null;
    }

    /**
     * The special tokens, given the tokenizer class's defaults for the named ones. An explicit null in
     * the config means "none" and wins over the default. In the legacy layout (no
     * {@code added_tokens_decoder}) {@code special_tokens_map.json} overrides {@code tokenizer_config.json}.
     */
    SpecialTokens specialTokens(Map<String, String> classDefaults) {
        boolean legacy = !hasAddedTokensDecoder();
        Map<String, AddedToken> named = new LinkedHashMap<>();
        for (String attribute : SpecialTokens.ATTRIBUTES) {
            boolean fromMap = legacy && specialTokensMap.has(attribute);
            JsonNode value = fromMap ? specialTokensMap.get(attribute) : config.get(attribute);
            if (value == null && classDefaults.containsKey(attribute)) {
                named.put(attribute, AddedToken.special(classDefaults.get(attribute)));
            } else if (value != null && !value.isNull()) {
                named.put(attribute, token(value, fromMap ? specialTokensMapFile : configFile, attribute, true));
            }
        }
        List<AddedToken> additional = new ArrayList<>();
        addAll(additional, config.path("additional_special_tokens"), configFile);
        if (legacy) {
            addAll(additional, specialTokensMap.path("additional_special_tokens"), specialTokensMapFile);
        }
        return new SpecialTokens(named, additional);
    }

    /**
     * The added tokens the files give with their ids, by ascending id: {@code added_tokens_decoder} when
     * the config has it (transformers then ignores {@code added_tokens.json}), else the legacy
     * {@code added_tokens.json}, whose tokens are special when named as special tokens.
     */
    List<DeclaredToken> declaredAddedTokens(SpecialTokens specialTokens) {
        List<DeclaredToken> declared = new ArrayList<>();
        if (hasAddedTokensDecoder()) {
            for (Map.Entry<String, JsonNode> entry : config.get("added_tokens_decoder").properties()) {
                int id = parseId(entry.getKey(), configFile, "added_tokens_decoder");
                AddedToken token = token(entry.getValue(), configFile, "added_tokens_decoder." + id, false);
                declared.add(new DeclaredToken(id, token, configFile));
            }
        } else {
            for (Map.Entry<String, JsonNode> entry : addedTokens.properties()) {
                JsonNode id = entry.getValue();
                if (!id.canConvertToInt() || !id.isIntegralNumber() || id.asInt() < 0) {
                    throw new BadInputException(addedTokensFile, "the id of '" + entry.getKey()
                            + "' is not a non-negative integer: " + id);
                }
                boolean special = specialTokens.contains(entry.getKey());
                AddedToken token = new AddedToken(entry.getKey(), false, false, false, !special, special);
                declared.add(new DeclaredToken(id.asInt(), token, addedTokensFile));
            }
        }
        declared.sort(Comparator.comparingInt(DeclaredToken::id));
        return declared;
    }

    private boolean hasAddedTokensDecoder() {
        return config.path("added_tokens_decoder").isObject();
    }

    private static AddedToken token(JsonNode value, Path file, String where, boolean special) {
        if (!value.isTextual() && !value.path("content").isTextual()) {
            throw new BadInputException(file, where + " is neither a string nor a token with a \"content\": "
                    + value);
        }
        return AddedToken.fromJson(value, special);
    }

    private static void addAll(List<AddedToken> tokens, JsonNode list, Path file) {
        for (JsonNode value : list) {
            AddedToken token = token(value, file, "additional_special_tokens", true);
            if (tokens.stream().noneMatch(t -> t.content().equals(token.content()))) {
                tokens.add(token);
            }
        }
    }

    private static int parseId(String key, Path file, String field) {
        try {
            int id = Integer.parseInt(key);
            if (id >= 0) {
                return id;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new BadInputException(file, field + " has a key that is not a token id: '" + key + "'");
    }

    private JsonNode readIfPresent(Path file) {
        if (!Files.isRegularFile(file)) {
            return MissingNode.getInstance();
        }
        sources.add(file);
        return JsonFiles.readObject(file);
    }
}
