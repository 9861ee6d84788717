package dev.blip2dl4j.convert.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Reads the protobuf wire format field by field: just enough to take a sentencepiece model apart
 * without a protobuf library or generated classes. A message is a sequence of (tag, value) pairs; the
 * caller asks for the next tag, reads the value it expects for that field number and skips the rest,
 * as protobuf readers do with fields they do not know.
 *
 * <p>Every read checks the bounds of the buffer: a truncated or corrupt file ends in a
 * {@link MalformedProtoException} that says at which byte, never in an index error.
 */
final class ProtoReader {
    static final int VARINT = 0;
    static final int FIXED64 = 1;
    static final int LENGTH_DELIMITED = 2;
    static final int FIXED32 = 5;

    /** A file that is not the protobuf message it should be. */
    static final class MalformedProtoException extends Exception {
        MalformedProtoException(String message) {
            super(message);
        }
    }

    private final byte[] bytes;
    private final int end;
    private int position;
    private int wireType = -1;

    ProtoReader(byte[] bytes) {
        this(bytes, 0, bytes.length);
    }

    private ProtoReader(byte[] bytes, int start, int end) {
        this.bytes = bytes;
        this.position = start;
        this.end = end;
    }

    boolean hasMore() {
        return position < end;
    }

    /** Reads the next tag and returns its field number; the value must be read or skipped next. */
    int nextField() throws MalformedProtoException {
        int at = position;
        long tag = varint();
        wireType = (int) (tag & 7);
        long field = tag >>> 3;
        if (field == 0 || field > Integer.MAX_VALUE) {
            throw new MalformedProtoException("invalid field number " + field + " at byte " + at);
        }
        return (int) field;
    }

    /** An int32 or enum value (negative int32 values take ten bytes on the wire and come back intact). */
    int readInt() throws MalformedProtoException {
        expect(VARINT);
        return (int) varint();
    }

    private long varint() throws MalformedProtoException {
        int at = position;
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            byte b = next(at);
            value |= (long) (b & 0x7f) << shift;
            if (b >= 0) {
                return value;
            }
        }
        throw new MalformedProtoException("varint longer than 10 bytes at byte " + at);
    }

    float readFloat() throws MalformedProtoException {
        expect(FIXED32);
        int at = position;
        int bits = 0;
        for (int i = 0; i < 4; i++) {
            bits |= (next(at) & 0xff) << (8 * i);
        }
        return Float.intBitsToFloat(bits);
    }

    byte[] readBytes() throws MalformedProtoException {
        expect(LENGTH_DELIMITED);
        int start = lengthDelimitedStart();
        return Arrays.copyOfRange(bytes, start, position);
    }

    String readString() throws MalformedProtoException {
        expect(LENGTH_DELIMITED);
        int start = lengthDelimitedStart();
        return new String(bytes, start, position - start, StandardCharsets.UTF_8);
    }

    /** A reader over the embedded message that is the current field's value. */
    ProtoReader readMessage() throws MalformedProtoException {
        expect(LENGTH_DELIMITED);
        int start = lengthDelimitedStart();
        return new ProtoReader(bytes, start, position);
    }

    /** Passes over the current field's value, whatever its type. */
    void skip() throws MalformedProtoException {
        int at = position;
        switch (wireType) {
            case VARINT -> varint();
            case FIXED64 -> advance(8, at);
            case LENGTH_DELIMITED -> lengthDelimitedStart();
            case FIXED32 -> advance(4, at);
            default -> throw new MalformedProtoException("unsupported wire type " + wireType + " before byte " + at);
        }
    }

    /** Checks that the current field has the wire type its reader expects. */
    private void expect(int expectedWireType) throws MalformedProtoException {
        if (wireType != expectedWireType) {
            throw new MalformedProtoException("a field before byte " + position + " has wire type " + wireType
                    + " where " + expectedWireType + " was expected");
        }
    }

    /** Reads a length prefix, moves past the value and returns where the value starts. */
    private int lengthDelimitedStart() throws MalformedProtoException {
        int at = position;
        long length = varint();
        if (length < 0 || length > end - position) {
            throw new MalformedProtoException("a field at byte " + at + " declares " + length
                    + " bytes but only " + (end - position) + " remain");
        }
        int start = position;
        position += (int) length;
        return start;
    }

    private void advance(int count, int fieldStart) throws MalformedProtoException {
        if (count > end - position) {
            throw new MalformedProtoException("a field at byte " + fieldStart + " runs past the end");
        }
        position += count;
    }

    private byte next(int fieldStart) throws MalformedProtoException {
        if (position >= end) {
            throw new MalformedProtoException("a field at byte " + fieldStart + " runs past the end");
        }
        return bytes[position++];
    }
}
