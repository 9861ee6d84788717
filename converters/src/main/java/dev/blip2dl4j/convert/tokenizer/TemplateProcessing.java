package dev.blip2dl4j.convert.tokenizer;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;

import java.util.List;
import java.util.stream.Stream;

/**
 * The {@code TemplateProcessing} post-processor: where special tokens go around one sequence ($A) or a
 * pair ($A, $B), with the token type id of each piece, as in transformers' {@code "[CLS]:0 $A:0 [SEP]:0"}.
 */
final class TemplateProcessing {

    /** A sequence ("A" or "B") or a special token, with its token type id. */
    record Piece(String name, boolean isSequence, int typeId) {
        static Piece sequence(String name, int typeId) {
            return new Piece(name, true, typeId);
        }

        static Piece token(String content, int typeId) {
            return new Piece(content, false, typeId);
        }
    }

    private TemplateProcessing() {
    }

    static ObjectNode json(List<Piece> single, List<Piece> pair, AddedVocabulary ids) {
        ObjectNode node = JsonFiles.MAPPER.createObjectNode();
        node.put("type", "TemplateProcessing");
        node.set("single", pieces(single));
        node.set("pair", pieces(pair));
        ObjectNode specialTokens = node.putObject("special_tokens");
        for (Piece piece : Stream.concat(single.stream(), pair.stream()).toList()) {
            if (!piece.isSequence() && !specialTokens.has(piece.name())) {
                Integer id = ids.id(piece.name());
                if (id == null) {
                    throw new BadInputException("the post-processor needs the token '" + piece.name()
                            + "', which is neither in the vocabulary nor an added token");
                }
                ObjectNode special = specialTokens.putObject(piece.name());
                special.put("id", piece.name());
                special.putArray("ids").add(id);
                special.putArray("tokens").add(piece.name());
            }
        }
        return node;
    }

    private static ArrayNode pieces(List<Piece> pieces) {
        ArrayNode array = JsonFiles.MAPPER.createArrayNode();
        for (Piece piece : pieces) {
            ObjectNode inner = array.addObject().putObject(piece.isSequence() ? "Sequence" : "SpecialToken");
            inner.put("id", piece.name());
            inner.put("type_id", piece.typeId());
        }
        return array;
    }
}
