package dev.blip2dl4j.convert.torch;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Writes a pickle opcode by opcode, so that tests can make the pickles torch.save writes, and the
 * ones it never would. Opcode bytes are spelled out here from Python's pickletools, independently of
 * {@link PickleOpcode}.
 */
final class OpcodeWriter {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    /** Any bytes: an opcode and its arguments where no method below fits. */
    OpcodeWriter raw(int... bytes) {
        for (int b : bytes) {
            out.write(b);
        }
        return this;
    }

    OpcodeWriter text(String line) {
        out.writeBytes((line + "\n").getBytes(StandardCharsets.UTF_8));
        return this;
    }

    OpcodeWriter proto(int protocol) {
        return raw(0x80, protocol);
    }

    OpcodeWriter global(String module, String name) {
        return raw('c').text(module).text(name);
    }

    OpcodeWriter stackGlobal(String module, String name) {
        return str(module).str(name).raw(0x93);
    }

    /** BINUNICODE. */
    OpcodeWriter str(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        raw('X').le32(bytes.length);
        out.writeBytes(bytes);
        return this;
    }

    /** BININT, or LONG1 (8 bytes, two's complement) for a value past 32 bits. */
    OpcodeWriter integer(long value) {
        if (value == (int) value) {
            return raw('J').le32((int) value);
        }
        return raw(0x8a, 8).le64(value);
    }

    OpcodeWriter le32(int value) {
        out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(value).array());
        return this;
    }

    OpcodeWriter le64(long value) {
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value).array());
        return this;
    }

    OpcodeWriter mark() {
        return raw('(');
    }

    OpcodeWriter tuple() {
        return raw('t');
    }

    OpcodeWriter emptyTuple() {
        return raw(')');
    }

    OpcodeWriter emptyDict() {
        return raw('}');
    }

    OpcodeWriter setItem() {
        return raw('s');
    }

    OpcodeWriter setItems() {
        return raw('u');
    }

    OpcodeWriter reduce() {
        return raw('R');
    }

    OpcodeWriter stop() {
        return raw('.');
    }

    /** {@code collections.OrderedDict()}, as torch writes empty backward hooks. */
    OpcodeWriter emptyOrderedDict() {
        return global("collections", "OrderedDict").emptyTuple().reduce();
    }

    /** {@code torch._utils._rebuild_tensor_v2} of a storage in the persistent-id form torch.save writes. */
    OpcodeWriter tensor(String storageType, String key, long numel, long offset, long[] size, long[] stride) {
        global("torch._utils", "_rebuild_tensor_v2").mark();
        mark().str("storage").global("torch", storageType).str(key).str("cpu").integer(numel).tuple().raw('Q');
        integer(offset);
        mark();
        for (long s : size) {
            integer(s);
        }
        tuple().mark();
        for (long s : stride) {
            integer(s);
        }
        tuple().raw(0x89).emptyOrderedDict();
        return tuple().reduce();
    }

    byte[] bytes() {
        return out.toByteArray();
    }
}
