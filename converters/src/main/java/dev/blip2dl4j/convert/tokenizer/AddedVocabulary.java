package dev.blip2dl4j.convert.tokenizer;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.tokenizer.SlowTokenizerConfig.DeclaredToken;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The added tokens of a converted tokenizer and their ids, given the way transformers gives them when
 * it turns a slow tokenizer into a fast one. Tokens are added in this order, a later addition of the
 * same content replacing the earlier one's flags but keeping its id:
 * <ol>
 *   <li>the tokens the vocabulary file itself marks (sentencepiece control and user-defined pieces);</li>
 *   <li>the tokens the config files declare with ids, by ascending id, special if they say so or if
 *       they are named special tokens;</li>
 *   <li>every special token not added yet.</li>
 * </ol>
 * A token in the model's vocabulary keeps its vocabulary id; any other token takes the next id after
 * the vocabulary and the added tokens so far, as the {@code tokenizers} library assigns it.
 */
final class AddedVocabulary {
    private final Map<String, Integer> vocab;
    private final Map<String, Integer> ids = new HashMap<>();
    private final SortedMap<Integer, AddedToken> tokens = new TreeMap<>();

    private AddedVocabulary(Map<String, Integer> vocab) {
        this.vocab = vocab;
    }

    static AddedVocabulary build(Map<String, Integer> vocab, List<AddedToken> modelTokens,
                                 List<DeclaredToken> declared, SpecialTokens specialTokens) {
        AddedVocabulary added = new AddedVocabulary(vocab);
        modelTokens.forEach(added::add);
        for (DeclaredToken d : declared) {
            AddedToken token = d.token();
            int id = added.add(token.withSpecial(token.special() || specialTokens.contains(token.content())));
            if (id != d.id()) {
                // The tokenizers library would silently give it another id than the checkpoint's embeddings expect.
                throw new BadInputException(d.file(), "added token '" + token.content() + "' has id " + d.id()
                        + ", but a tokenizer built from these files gives it id " + id + "; added tokens outside the"
                        + " vocabulary must follow it without gaps, and tokens in it keep their vocabulary id");
            }
        }
        for (AddedToken token : specialTokens.all()) {
            if (!added.ids.containsKey(token.content())) {
                added.add(token.withSpecial(true));
            }
        }
        return added;
    }

    /** The id of a token: an added token's, else the model vocabulary's, else null. */
    Integer id(String content) {
        Integer id = ids.get(content);
        return id != null ? id : vocab.get(content);
    }

    /** The added tokens by ascending id, as tokenizer.json lists them. */
    SortedMap<Integer, AddedToken> byId() {
        return tokens;
    }

    private int add(AddedToken token) {
        Integer id = id(token.content());
        if (id == null) {
            id = nextId();
        }
        ids.put(token.content(), id);
        tokens.put(id, token);
        return id;
    }

    private int nextId() {
        int size = vocab.size();
        if (tokens.isEmpty()) {
            return size;
        }
        int max = tokens.lastKey();
        return max >= size || size == 0 ? max + 1 : size;
    }
}
