package dev.blip2dl4j.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One JSON object of a config file, read key by key with the default transformers uses when the key is
 * absent. Hugging Face writes configs diff-style (only what differs from the defaults), so absence is the
 * normal case; a key that is present must have the right type. Every complaint names the file and the
 * dotted key path ({@code text_config.hidden_size}), so the user can find the line to fix.
 */
final class JsonFields {
    // Python's json.loads rejects anything after the object; so do we
    static final ObjectMapper MAPPER = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final ObjectNode node;
    private final Path file;
    private final String prefix;

    private JsonFields(ObjectNode node, Path file, String prefix) {
        this.node = node;
        this.file = file;
        this.prefix = prefix;
    }

    static JsonFields parse(String json, Path file) {
        return of(tree(json, file), file);
    }

    static ObjectNode tree(String json, Path file) {
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? ""
                    : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
            throw new BadInputException(file, "is not valid JSON: " + e.getOriginalMessage() + where, e);
        }
        if (root == null || !root.isObject()) {
            throw new BadInputException(file, "must hold one JSON object, found " + describe(root));
        }
        return (ObjectNode) root;
    }

    static JsonFields of(ObjectNode node, Path file) {
        return new JsonFields(node, file, "");
    }

    /** The nested object under key; absent or null reads as an empty object (all defaults), as in transformers. */
    JsonFields object(String key) {
        JsonNode value = node.get(key);
        if (value == null || value.isNull()) {
            return new JsonFields(MAPPER.createObjectNode(), file, path(key) + ".");
        }
        if (!value.isObject()) {
            throw wrongType(key, "an object", value);
        }
        return new JsonFields((ObjectNode) value, file, path(key) + ".");
    }

    boolean has(String key) {
        JsonNode value = node.get(key);
        return value != null && !value.isNull();
    }

    int integer(String key, int defaultValue) {
        Integer value = optionalInteger(key);
        if (value == null) {
            if (node.has(key)) {
                throw bad(key, "must be an integer, not null");
            }
            return defaultValue;
        }
        return value;
    }

    /**
     * What a size in a config counts, with a bound far above every BLIP-2 (the largest value a real model uses is
     * in the comment) and far below what would exhaust memory: every structure built from a config (the
     * parameter list, the weights the manifest must match) is sized by these, so a file that says a billion
     * layers is refused here, before anything is allocated.
     */
    enum Size {
        /** Layers, heads, query tokens, position buckets: ViT-g's 39 layers, Flan-T5-XXL's 64 heads. */
        COUNT(1024),
        /** Hidden, feed-forward and head widths: OPT-6.7b's ffn_dim 16384. */
        WIDTH(1 << 16),
        /** Vocabulary: OPT's 50304. */
        VOCABULARY(1 << 20),
        /** Positions and distances in tokens: OPT's 2048. */
        POSITIONS(1 << 20),
        /** Image and patch sides in pixels: 224 and 14. */
        PIXELS(1 << 12);

        final int max;

        Size(int max) {
            this.max = max;
        }
    }

    /** A size or a count: at least 1 and at most its kind's bound. */
    int size(String key, int defaultValue, Size kind) {
        int value = integer(key, defaultValue);
        if (value < 1) {
            throw bad(key, "must be at least 1, found " + value);
        }
        if (value > kind.max) {
            throw bad(key, "= " + value + " is far beyond any BLIP-2 (at most " + kind.max + " is accepted):"
                    + " the file is corrupt or not a BLIP-2 config");
        }
        return value;
    }

    /** An integer whose transformers default is None (token ids, optional sizes): null when absent or null. */
    Integer optionalInteger(String key) {
        JsonNode value = node.get(key);
        if (value == null || value.isNull()) {
            return null;
        }
        if (!value.isIntegralNumber() || !value.canConvertToInt()) {
            throw wrongType(key, "an integer", value);
        }
        return value.intValue();
    }

    /** A token id: null when absent or null, otherwise not negative. */
    Integer tokenId(String key, Integer defaultValue) {
        Integer value = node.has(key) ? optionalInteger(key) : defaultValue;
        if (value != null && value < 0) {
            throw bad(key, "must not be negative, found " + value);
        }
        return value;
    }

    double number(String key, double defaultValue) {
        JsonNode value = node.get(key);
        if (value == null) {
            return defaultValue;
        }
        if (!value.isNumber()) {
            throw wrongType(key, "a number", value);
        }
        return value.doubleValue();
    }

    /** A LayerNorm / RMSNorm epsilon: finite and not negative. */
    double epsilon(String key, double defaultValue) {
        double value = number(key, defaultValue);
        if (!(value >= 0) || Double.isInfinite(value)) {
            throw bad(key, "must be a finite number >= 0, found " + value);
        }
        return value;
    }

    boolean bool(String key, boolean defaultValue) {
        JsonNode value = node.get(key);
        if (value == null) {
            return defaultValue;
        }
        if (!value.isBoolean()) {
            throw wrongType(key, "true or false", value);
        }
        return value.booleanValue();
    }

    String string(String key, String defaultValue) {
        JsonNode value = node.get(key);
        if (value == null || (value.isNull() && defaultValue == null)) {
            return defaultValue;
        }
        if (!value.isTextual()) {
            throw wrongType(key, "a string", value);
        }
        return value.textValue();
    }

    /** A list of strings; absent or null reads as empty. */
    List<String> strings(String key) {
        JsonNode value = node.get(key);
        List<String> out = new ArrayList<>();
        if (value == null || value.isNull()) {
            return out;
        }
        if (!value.isArray()) {
            throw wrongType(key, "a list of strings", value);
        }
        for (JsonNode item : value) {
            if (!item.isTextual()) {
                throw wrongType(key, "a list of strings", value);
            }
            out.add(item.textValue());
        }
        return out;
    }

    /** The dotted path of key from the file's root, for messages. */
    String path(String key) {
        return prefix + key;
    }

    BadInputException bad(String key, String problem) {
        return new BadInputException(file, path(key) + " " + problem);
    }

    private BadInputException wrongType(String key, String expected, JsonNode found) {
        return bad(key, "must be " + expected + ", found " + describe(found));
    }

    private static String describe(JsonNode value) {
        if (value == null || value.isMissingNode()) {
            return "nothing";
        }
        String text = value.toString();
        return text.length() > 60 ? text.substring(0, 57) + "..." : text;
    }
}
