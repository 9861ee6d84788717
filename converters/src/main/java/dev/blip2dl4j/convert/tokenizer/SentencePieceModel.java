package dev.blip2dl4j.convert.tokenizer;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.tokenizer.ProtoReader.MalformedProtoException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What a sentencepiece {@code .model} file (a serialized {@code sentencepiece.ModelProto}) holds that a
 * Hugging Face tokenizer needs: the pieces with their scores and types, the model type and unknown-piece
 * id from the trainer spec, and the normalizer's precompiled character map. Field numbers follow
 * sentencepiece's {@code sentencepiece_model.proto}; every other field is skipped.
 */
record SentencePieceModel(List<Piece> pieces, int modelType, int unkId, byte[] precompiledCharsmap) {

    /** {@code TrainerSpec.ModelType.UNIGRAM}, the proto's default. */
    static final int UNIGRAM = 1;

    /** One vocabulary entry. {@code type} is {@code SentencePiece.Type}: 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte. */
    record Piece(String piece, float score, int type) {
        static final int CONTROL = 3;
        static final int USER_DEFINED = 4;
    }

    // ModelProto
    private static final int PIECES = 1;
    private static final int TRAINER_SPEC = 2;
    private static final int NORMALIZER_SPEC = 3;
    // ModelProto.SentencePiece
    private static final int PIECE = 1;
    private static final int SCORE = 2;
    private static final int TYPE = 3;
    // TrainerSpec
    private static final int MODEL_TYPE = 3;
    private static final int UNK_ID = 40;
    // NormalizerSpec
    private static final int PRECOMPILED_CHARSMAP = 2;

    static SentencePieceModel read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        SentencePieceModel model;
        try {
            model = parse(new ProtoReader(bytes));
        } catch (MalformedProtoException e) {
            throw new BadInputException(file, "not a valid sentencepiece model (truncated or corrupt): " + e.getMessage());
        }
        if (model.pieces.isEmpty()) {
            throw new BadInputException(file, "the sentencepiece model has no pieces");
        }
        if (model.unkId < 0 || model.unkId >= model.pieces.size()) {
            throw new BadInputException(file, "the unknown-piece id " + model.unkId + " is outside the "
                    + model.pieces.size() + " pieces");
        }
        return model;
    }

    private static SentencePieceModel parse(ProtoReader proto) throws MalformedProtoException {
        List<Piece> pieces = new ArrayList<>();
        int modelType = UNIGRAM;
        int unkId = 0;
        byte[] charsmap = new byte[0];
        boolean hasTrainerSpec = false;
        boolean hasNormalizerSpec = false;
        while (proto.hasMore()) {
            switch (proto.nextField()) {
                case PIECES -> pieces.add(parsePiece(proto.readMessage()));
                case TRAINER_SPEC -> {
                    hasTrainerSpec = true;
                    ProtoReader trainer = proto.readMessage();
                    while (trainer.hasMore()) {
                        switch (trainer.nextField()) {
                            case MODEL_TYPE -> modelType = trainer.readInt();
                            case UNK_ID -> unkId = trainer.readInt();
                            default -> trainer.skip();
                        }
                    }
                }
                case NORMALIZER_SPEC -> {
                    hasNormalizerSpec = true;
                    ProtoReader normalizer = proto.readMessage();
                    while (normalizer.hasMore()) {
                        if (normalizer.nextField() == PRECOMPILED_CHARSMAP) {
                            charsmap = normalizer.readBytes();
                        } else {
                            normalizer.skip();
                        }
                    }
                }
                default -> proto.skip();
            }
        }
        // sentencepiece always writes both after the pieces: a file cut between two fields lacks them.
        if (!pieces.isEmpty() && !(hasTrainerSpec && hasNormalizerSpec)) {
            throw new MalformedProtoException("the trainer or normalizer spec that follows the pieces is missing");
        }
        return new SentencePieceModel(List.copyOf(pieces), modelType, unkId, charsmap);
    }

    private static Piece parsePiece(ProtoReader message) throws MalformedProtoException {
        String piece = "";
        float score = 0;
        int type = 1;
        while (message.hasMore()) {
            switch (message.nextField()) {
                case PIECE -> piece = message.readString();
                case SCORE -> score = message.readFloat();
                case TYPE -> type = message.readInt();
                default -> message.skip();
            }
        }
        return new Piece(piece, score, type);
    }
}
