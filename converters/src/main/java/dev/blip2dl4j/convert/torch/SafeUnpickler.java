package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.BadInputException;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A pickle machine (protocols 0 to 5) that builds data and executes nothing.
 *
 * <p>Python's unpickler imports whatever module a pickle names and calls whatever it is told to,
 * which is why loading an untrusted checkpoint with it can run arbitrary code. This one builds only
 * plain values, and resolves globals from {@link TorchGlobal}'s short allow-list of what a state dict
 * needs; a pickle that names anything else is refused before anything is built from it.
 *
 * <p>Values are: {@code null} (None), {@link Boolean}, {@link Long} (or {@link BigInteger} past 64
 * bits), {@link Double}, {@link String}, {@code byte[]}, {@link Tuple}, {@link ArrayList}, {@link
 * LinkedHashMap}, {@link LinkedHashSet} (an unmodifiable {@link Set} for a frozenset), and
 * {@link TorchGlobal}, {@link TorchStorage}, {@link TorchTensor}.
 */
final class SafeUnpickler {

    /** A Python tuple: unlike a list, it cannot be appended to. */
    record Tuple(List<Object> items) {
        Tuple {
            items = Collections.unmodifiableList(new ArrayList<>(items));
        }
    }

    private static final int HIGHEST_PROTOCOL = 5;
    /**
     * Steps that hold memory: values pushed (new or a memo reference), memo entries written, marks set. The
     * byte cap alone does not bound memory, because one opcode byte (EMPTY_DICT, DUP, MEMOIZE, MARK) makes
     * one of these, so a pickle of 128 MB could make 128 million. A state dict takes about 30 per tensor
     * (measured on the fixtures): BLIP-2's largest, with its optimizer's moments, under 200,000.
     */
    static final int MAX_STEPS = 1 << 21;
    /**
     * Values waiting on the stack at once, which is how deep Python's pickler nests containers; torch.save's
     * batches of 1000 dict items are the most a state dict leaves there.
     */
    static final int MAX_STACK = 1 << 16;
    /** MARKs open at once: how deep a pickle nests tuples and batches (a state dict, about 5). */
    static final int MAX_MARKS = 1 << 10;

    private final Path file;
    private final String name;
    private final byte[] data;
    private int position;
    private int opcodeStart;
    private PickleOpcode opcode;
    /** One stack; a MARK remembers the stack's size, where the items it marks begin. */
    private final List<Object> stack = new ArrayList<>();
    private final Deque<Integer> marks = new ArrayDeque<>();
    private final Map<Long, Object> memo = new HashMap<>();
    private int steps;

    private SafeUnpickler(Path file, String name, byte[] data) {
        this.file = file;
        this.name = name;
        this.data = data;
    }

    /**
     * Runs the pickle to its STOP opcode and returns the value it built.
     *
     * @param file the file the pickle came from, and {@code name} its entry there, for messages
     */
    static Object load(Path file, String name, byte[] pickle) {
        return new SafeUnpickler(file, name, pickle).run();
    }

    /** A value's Python type, with an article, for messages: "a str", "None", "the global os.system". */
    static String describe(Object value) {
        if (value == null) {
            return "None";
        }
        if (value instanceof TorchGlobal global) {
            return "the global " + global.qualifiedName();
        }
        String type;
        if (value instanceof Boolean) {
            type = "bool";
        } else if (value instanceof Long || value instanceof BigInteger) {
            type = "int";
        } else if (value instanceof Double) {
            type = "float";
        } else if (value instanceof String) {
            type = "str";
        } else if (value instanceof byte[]) {
            type = "bytes";
        } else if (value instanceof Tuple) {
            type = "tuple";
        } else if (value instanceof List) {
            type = "list";
        } else if (value instanceof Map) {
            type = "dict";
        } else if (value instanceof Set) {
            type = "set";
        } else if (value instanceof TorchStorage) {
            type = "storage";
        } else {
            type = "tensor";
        }
        return (type.equals("int") ? "an " : "a ") + type;
    }

    private Object run() {
        while (true) {
            opcodeStart = position;
            opcode = null;
            if (position >= data.length) {
                throw bad("the pickle ends before its STOP opcode: the file is truncated or corrupt");
            }
            int code = data[position++] & 0xff;
            opcode = PickleOpcode.of(code);
            if (opcode == null) {
                throw bad(String.format("byte 0x%02x is not a pickle opcode", code));
            }
            try {
                if (opcode == PickleOpcode.STOP) {
                    return pop();
                }
                execute(opcode);
            } catch (IllegalArgumentException e) {
                throw bad(e.getMessage());
            }
        }
    }

    private void execute(PickleOpcode op) {
        switch (op) {
            case PROTO -> {
                int protocol = u8();
                if (protocol > HIGHEST_PROTOCOL) {
                    throw new IllegalArgumentException("pickle protocol " + protocol + " is newer than "
                            + HIGHEST_PROTOCOL + ", the newest we know");
                }
            }
            // A frame only groups the opcodes that follow for buffered reading: check its length, go on.
            case FRAME -> length(u64());
            case MARK -> {
                if (marks.size() == MAX_MARKS) {
                    throw new IllegalArgumentException("more than " + MAX_MARKS + " MARKs are open at once;"
                            + " a state dict nests a few levels deep: the file is corrupt or not a checkpoint");
                }
                step();
                marks.push(stack.size());
            }
            case POP -> {
                // Python pops a mark when the items above the last mark are exhausted.
                if (stack.size() > (marks.isEmpty() ? 0 : marks.peek())) {
                    pop();
                } else {
                    popMark();
                }
            }
            case POP_MARK -> popMark();
            case DUP -> push(peek());

            case NONE -> push(null);
            case NEWTRUE -> push(true);
            case NEWFALSE -> push(false);
            case INT -> push(textInt(line()));
            case BININT -> push((long) i32());
            case BININT1 -> push((long) u8());
            case BININT2 -> push((long) (u8() | u8() << 8));
            case LONG -> push(integer(parseInteger(stripSuffix(line(), "L"))));
            case LONG1 -> push(littleEndianInt(bytes(u8())));
            case LONG4 -> push(littleEndianInt(bytes(signedLength(i32()))));
            case FLOAT -> push(textFloat(line()));
            case BINFLOAT -> push(take(8).order(ByteOrder.BIG_ENDIAN).getDouble());

            // Python 2 str: torch.load decodes it as UTF-8.
            case STRING -> push(utf8(escapeDecode(quoted(line()))));
            case BINSTRING -> push(utf8(bytes(signedLength(i32()))));
            case SHORT_BINSTRING -> push(utf8(bytes(u8())));
            case UNICODE -> push(rawUnicodeEscapeDecode(line()));
            case BINUNICODE -> push(utf8(bytes(u32())));
            case SHORT_BINUNICODE -> push(utf8(bytes(u8())));
            case BINUNICODE8 -> push(utf8(bytes(u64())));
            case BINBYTES -> push(bytes(u32()));
            case SHORT_BINBYTES -> push(bytes(u8()));
            case BINBYTES8, BYTEARRAY8 -> push(bytes(u64()));
            case NEXT_BUFFER -> throw new IllegalArgumentException(
                    "the pickle refers to an out-of-band buffer, which a checkpoint file cannot supply");
            // Only makes a buffer read-only; the values built here are never written to.
            case READONLY_BUFFER -> peek();

            case EMPTY_TUPLE -> push(new Tuple(List.of()));
            case TUPLE -> push(new Tuple(popMark()));
            case TUPLE1 -> push(new Tuple(popItems(1)));
            case TUPLE2 -> push(new Tuple(popItems(2)));
            case TUPLE3 -> push(new Tuple(popItems(3)));
            case EMPTY_LIST -> push(new ArrayList<>());
            case LIST -> push(new ArrayList<>(popMark()));
            case APPEND -> {
                Object item = pop();
                list(peek()).add(item);
            }
            case APPENDS -> {
                List<Object> items = popMark();
                list(peek()).addAll(items);
            }
            case EMPTY_DICT -> push(new LinkedHashMap<>());
            case DICT -> {
                Map<Object, Object> dict = new LinkedHashMap<>();
                putPairs(dict, popMark());
                push(dict);
            }
            case SETITEM -> {
                Object value = pop();
                Object key = pop();
                dict(peek()).put(key(key), value);
            }
            case SETITEMS -> {
                List<Object> pairs = popMark();
                putPairs(dict(peek()), pairs);
            }
            case EMPTY_SET -> push(new LinkedHashSet<>());
            case ADDITEMS -> {
                List<Object> items = popMark();
                addKeys(set(peek()), items);
            }
            case FROZENSET -> {
                Set<Object> set = new LinkedHashSet<>();
                addKeys(set, popMark());
                push(Collections.unmodifiableSet(set));
            }

            case PUT -> memoize(textIndex(line()));
            case BINPUT -> memoize(u8());
            case LONG_BINPUT -> memoize(u32());
            case MEMOIZE -> memoize(memo.size());
            case GET -> push(memoized(textIndex(line())));
            case BINGET -> push(memoized(u8()));
            case LONG_BINGET -> push(memoized(u32()));

            case GLOBAL -> push(global(line(), line()));
            case STACK_GLOBAL -> {
                Object globalName = pop();
                Object module = pop();
                if (!(module instanceof String m) || !(globalName instanceof String n)) {
                    throw new IllegalArgumentException("STACK_GLOBAL needs a module and a name as strings, found "
                            + describe(module) + " and " + describe(globalName));
                }
                push(global(m, n));
            }
            case REDUCE -> {
                Object args = pop();
                push(callable(pop()).call(tuple(args).items()));
            }
            case INST -> {
                TorchGlobal global = global(line(), line());
                push(global.call(popMark()));
            }
            case OBJ -> {
                List<Object> items = popMark();
                if (items.isEmpty()) {
                    throw new IllegalArgumentException("OBJ needs a class after its mark");
                }
                push(callable(items.get(0)).call(items.subList(1, items.size())));
            }
            case NEWOBJ -> {
                Object args = pop();
                push(callable(pop()).newObject(tuple(args).items(), Map.of()));
            }
            case NEWOBJ_EX -> {
                Object kwargs = pop();
                Object args = pop();
                push(callable(pop()).newObject(tuple(args).items(), dict(kwargs)));
            }
            case BUILD -> build(pop(), peek());
            case PERSID -> throw new IllegalArgumentException("the persistent id '" + line()
                    + "' is text; torch.save writes each storage's id as a tuple (BINPERSID)");
            case BINPERSID -> push(TorchStorage.fromPersistentId(pop()));
            case EXT1, EXT2, EXT4 -> throw new IllegalArgumentException(
                    "the pickle names a global through the copyreg extension registry, which state dicts never use");
        }
    }

    /**
     * BUILD sets an object's state. torch.save writes it for one thing: the {@code _metadata} attribute
     * (module versions) that {@code Module.state_dict()} attaches to its OrderedDict. Tensors do not
     * need it, so it is accepted and dropped.
     */
    private void build(Object state, Object target) {
        if (!(target instanceof Map) || !(state instanceof Map)) {
            throw new IllegalArgumentException("BUILD may only set attributes of a dict (as a state dict's"
                    + " _metadata), not give " + describe(target) + " the state " + describe(state));
        }
    }

    private TorchGlobal global(String module, String globalName) {
        return TorchGlobal.find(module, globalName).orElseThrow(() -> new BadInputException(file,
                "refusing to load: the pickle '" + name + "' names the global '" + module + "." + globalName
                        + "' (at byte " + opcodeStart + "), which is not something a state dict needs;"
                        + " loading a checkpoint never executes code"));
    }

    private static TorchGlobal callable(Object value) {
        if (value instanceof TorchGlobal global) {
            return global;
        }
        throw new IllegalArgumentException("cannot call " + describe(value));
    }

    private static Tuple tuple(Object value) {
        if (value instanceof Tuple tuple) {
            return tuple;
        }
        throw new IllegalArgumentException("arguments should be a tuple, not " + describe(value));
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object value) {
        if (value instanceof ArrayList) {
            return (List<Object>) value;
        }
        throw new IllegalArgumentException("can only append to a list, not to " + describe(value));
    }

    @SuppressWarnings("unchecked")
    private static Map<Object, Object> dict(Object value) {
        if (value instanceof Map) {
            return (Map<Object, Object>) value;
        }
        throw new IllegalArgumentException("expected a dict, found " + describe(value));
    }

    @SuppressWarnings("unchecked")
    private static Set<Object> set(Object value) {
        // A frozenset is an unmodifiable Set, not a LinkedHashSet.
        if (value instanceof LinkedHashSet) {
            return (Set<Object>) value;
        }
        throw new IllegalArgumentException("can only add items to a set, not to " + describe(value));
    }

    private static void putPairs(Map<Object, Object> dict, List<Object> items) {
        if (items.size() % 2 != 0) {
            throw new IllegalArgumentException("a dict needs key-value pairs, found " + items.size() + " items");
        }
        for (int i = 0; i < items.size(); i += 2) {
            dict.put(key(items.get(i)), items.get(i + 1));
        }
    }

    private static void addKeys(Collection<Object> set, List<Object> items) {
        for (Object item : items) {
            set.add(key(item));
        }
    }

    /**
     * Dict keys and set items are limited to scalars: that is all state dicts and optimizer states use,
     * and it keeps a hostile pickle from making a key out of a structure that contains itself.
     */
    private static Object key(Object value) {
        if (value == null || value instanceof String || value instanceof Long || value instanceof BigInteger
                || value instanceof Double || value instanceof Boolean) {
            return value;
        }
        throw new IllegalArgumentException("a dict key or set item should be a str, number, bool or None, not "
                + describe(value));
    }

    private void memoize(long index) {
        Object value = peek();
        step();
        memo.put(index, value);
    }

    /** Counts one step towards {@link #MAX_STEPS}. */
    private void step() {
        if (++steps > MAX_STEPS) {
            throw new IllegalArgumentException("the pickle builds more than " + MAX_STEPS + " values, memo entries"
                    + " and marks; a state dict needs about 30 per tensor: the file is corrupt or not a checkpoint");
        }
    }

    private Object memoized(long index) {
        if (!memo.containsKey(index)) {
            throw new IllegalArgumentException("memo entry " + index + " is read before it is written");
        }
        return memo.get(index);
    }

    /** Every value the machine holds comes through here (containers hold only what was on the stack). */
    private void push(Object value) {
        if (stack.size() == MAX_STACK) {
            throw new IllegalArgumentException("more than " + MAX_STACK + " values wait on the stack; a state"
                    + " dict nests and batches far less: the file is corrupt or not a checkpoint");
        }
        step();
        stack.add(value);
    }

    private Object peek() {
        if (stack.size() <= (marks.isEmpty() ? 0 : marks.peek())) {
            throw new IllegalArgumentException("the stack is empty");
        }
        return stack.get(stack.size() - 1);
    }

    private Object pop() {
        Object value = peek();
        stack.remove(stack.size() - 1);
        return value;
    }

    private List<Object> popItems(int count) {
        if (stack.size() - count < (marks.isEmpty() ? 0 : marks.peek())) {
            throw new IllegalArgumentException("the stack holds fewer than " + count + " items");
        }
        return popFrom(stack.size() - count);
    }

    /** The items pushed since the last MARK, which is consumed. */
    private List<Object> popMark() {
        if (marks.isEmpty()) {
            throw new IllegalArgumentException("no MARK to pop to");
        }
        return popFrom(marks.pop());
    }

    private List<Object> popFrom(int start) {
        List<Object> top = stack.subList(start, stack.size());
        List<Object> items = new ArrayList<>(top);
        top.clear();
        return items;
    }

    // ---- reading the opcodes' arguments; every length is checked against what is left ----

    private int u8() {
        return take(1).get() & 0xff;
    }

    private int i32() {
        return take(4).getInt();
    }

    private long u32() {
        return i32() & 0xffffffffL;
    }

    /** A value past 2^63 comes back negative, which {@link #length} refuses. */
    private long u64() {
        return take(8).getLong();
    }

    /** The next {@code count} bytes of the opcode's argument, little-endian. */
    private ByteBuffer take(int count) {
        if (count > data.length - position) {
            throw new IllegalArgumentException("the pickle ends in the middle of the opcode:"
                    + " the file is truncated or corrupt");
        }
        ByteBuffer buffer = ByteBuffer.wrap(data, position, count).order(ByteOrder.LITTLE_ENDIAN);
        position += count;
        return buffer;
    }

    private static long signedLength(int length) {
        if (length < 0) {
            throw new IllegalArgumentException("negative length " + length);
        }
        return length;
    }

    /** A length announced by the pickle, as an int once it is known to fit in what is left. */
    private int length(long length) {
        if (length < 0 || length > data.length - position) {
            throw new IllegalArgumentException("it announces " + Long.toUnsignedString(length)
                    + " bytes but only " + (data.length - position) + " are left: the file is truncated or corrupt");
        }
        return (int) length;
    }

    private byte[] bytes(long count) {
        int n = length(count);
        byte[] bytes = new byte[n];
        System.arraycopy(data, position, bytes, 0, n);
        position += n;
        return bytes;
    }

    /** A protocol-0 argument: the text up to the next newline. */
    private String line() {
        int end = position;
        while (end < data.length && data[end] != '\n') {
            end++;
        }
        if (end == data.length) {
            throw new IllegalArgumentException("the pickle ends in the middle of the opcode's text argument:"
                    + " the file is truncated or corrupt");
        }
        String text = new String(data, position, end - position, StandardCharsets.ISO_8859_1);
        position = end + 1;
        return text;
    }

    // ---- decoding values ----

    /** Protocol 0 writes True and False as the ints "01" and "00". */
    private static Object textInt(String text) {
        return switch (text) {
            case "01" -> true;
            case "00" -> false;
            default -> integer(parseInteger(text));
        };
    }

    private static long textIndex(String text) {
        BigInteger index = parseInteger(text);
        if (index.signum() < 0 || index.bitLength() > 63) {
            throw new IllegalArgumentException("memo index " + text + " is out of range");
        }
        return index.longValue();
    }

    private static BigInteger parseInteger(String text) {
        try {
            return new BigInteger(text.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not an integer");
        }
    }

    private static String stripSuffix(String text, String suffix) {
        return text.endsWith(suffix) ? text.substring(0, text.length() - suffix.length()) : text;
    }

    private static Object integer(BigInteger value) {
        return value.bitLength() < 64 ? (Object) value.longValue() : value;
    }

    /** LONG1 and LONG4: two's complement, little-endian; no bytes is zero. */
    private static Object littleEndianInt(byte[] bytes) {
        byte[] bigEndian = new byte[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            bigEndian[i] = bytes[bytes.length - 1 - i];
        }
        return integer(bytes.length == 0 ? BigInteger.ZERO : new BigInteger(bigEndian));
    }

    /** Python's float repr, which spells the non-finite values inf and nan. */
    private static double textFloat(String text) {
        String t = text.strip();
        switch (t) {
            case "inf":
                return Double.POSITIVE_INFINITY;
            case "-inf":
                return Double.NEGATIVE_INFINITY;
            case "nan":
                return Double.NaN;
            default:
                try {
                    return Double.parseDouble(t);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("'" + text + "' is not a float");
                }
        }
    }

    private static String utf8(byte[] bytes) {
        try {
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes));
            return chars.toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException("a string is not valid UTF-8");
        }
    }

    /** STRING's argument is a Python string literal in single or double quotes. */
    private static String quoted(String text) {
        if (text.length() < 2 || text.charAt(0) != text.charAt(text.length() - 1)
                || (text.charAt(0) != '\'' && text.charAt(0) != '"')) {
            throw new IllegalArgumentException("the argument of STRING should be quoted");
        }
        return text.substring(1, text.length() - 1);
    }

    /** The escapes of a Python bytes literal, as {@code codecs.escape_decode} reads them. */
    private static byte[] escapeDecode(String text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(text.length());
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c != '\\') {
                out.write(c);
                continue;
            }
            if (i + 1 == text.length()) {
                throw new IllegalArgumentException("a string ends with a lone backslash");
            }
            char e = text.charAt(++i);
            switch (e) {
                case '\n' -> { }
                case '\\', '\'', '"' -> out.write(e);
                case 'a' -> out.write(7);
                case 'b' -> out.write('\b');
                case 'f' -> out.write('\f');
                case 'n' -> out.write('\n');
                case 'r' -> out.write('\r');
                case 't' -> out.write('\t');
                case 'v' -> out.write(11);
                case 'x' -> {
                    out.write(hex(text, i + 1, 2));
                    i += 2;
                }
                default -> {
                    if (e >= '0' && e <= '7') {
                        int end = i + 1;
                        while (end < Math.min(text.length(), i + 3) && "01234567".indexOf(text.charAt(end)) >= 0) {
                            end++;
                        }
                        out.write(Integer.parseInt(text.substring(i, end), 8) & 0xff);
                        i = end - 1;
                    } else {
                        // Python keeps an unknown escape as it is.
                        out.write('\\');
                        out.write(e);
                    }
                }
            }
        }
        return out.toByteArray();
    }

    /**
     * UNICODE's argument: Latin-1 text in which {@code \\uXXXX} and {@code \\UXXXXXXXX} stand for other
     * characters (pickle escapes backslashes and newlines themselves this way too).
     */
    private static String rawUnicodeEscapeDecode(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            int digits = c != '\\' || i + 1 == text.length() ? 0
                    : text.charAt(i + 1) == 'u' ? 4 : text.charAt(i + 1) == 'U' ? 8 : 0;
            if (digits == 0) {
                out.append(c);
                continue;
            }
            int codePoint = hex(text, i + 2, digits);
            if (!Character.isValidCodePoint(codePoint)) {
                throw new IllegalArgumentException("\\U" + Integer.toHexString(codePoint) + " is not a character");
            }
            out.appendCodePoint(codePoint);
            i += 1 + digits;
        }
        return out.toString();
    }

    private static int hex(String text, int start, int digits) {
        if (start + digits > text.length()) {
            throw new IllegalArgumentException("an escape needs " + digits + " hex digits");
        }
        try {
            return (int) Long.parseLong(text.substring(start, start + digits), 16);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text.substring(start, start + digits) + "' is not hexadecimal");
        }
    }

    private BadInputException bad(String problem) {
        String where = opcode == null ? "at byte " + opcodeStart : "at byte " + opcodeStart + " (" + opcode + ")";
        return new BadInputException(file, "cannot read the pickle '" + name + "' " + where + ": " + problem);
    }
}
