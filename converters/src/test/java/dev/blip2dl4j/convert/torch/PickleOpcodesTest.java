package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.torch.SafeUnpickler.Tuple;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.math.BigInteger;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The pickle machine on its own: every protocol's data opcodes, and the pickles it must refuse. */
class PickleOpcodesTest {

    private static final Path FILE = Path.of("test.pkl");

    /**
     * Python 3.11's {@code pickle.dumps(value(p), protocol=p)} for p = 0..5, where value(p) is
     * <pre>
     * x = [1]
     * v = {'ints': [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**63, -2**70],
     *      'float': -2.5, 'text': 'h\u00e9\u4e2d\n\\\'"', 'none': None, 'bools': (True, False),
     *      'shared': (x, x), 'nested': {7: (), -1: [1.5]}, 'od': collections.OrderedDict(a=1)}
     * if p >= 3: v['bytes'] = b'\x00\xff'
     * if p >= 4: v['set'] = {3}; v['frozen'] = frozenset({4})
     * if p >= 5: v['bytearray'] = bytearray(b'ab')
     * </pre>
     * (bytes and sets are left out of older protocols, which pickle them by calling
     * {@code _codecs.encode} and {@code builtins.set}: globals we refuse).
     */
    private static final String[] PYTHON_PICKLES = {
            // protocol 0
            "286470300a56696e74730a70310a286c70320a49300a6149310a61492d310a61493235350a61493235360a6149363535" +
            "33350a614936353533360a61492d323134373438333634380a614c323134373438333634384c0a614c39323233333732" +
            "3033363835343737353830384c0a614c2d313138303539313632303731373431313330333432344c0a617356666c6f61" +
            "740a70330a462d322e350a7356746578740a70340a5668e95c75346532645c75303030615c753030356327220a70350a" +
            "73566e6f6e650a70360a4e7356626f6f6c730a70370a284930310a4930300a7470380a73567368617265640a70390a28" +
            "286c7031300a49310a616731300a747031310a73566e65737465640a7031320a28647031330a49370a287473492d310a" +
            "286c7031340a46312e350a617373566f640a7031350a63636f6c6c656374696f6e730a4f726465726564446963740a70" +
            "31360a2874527031370a56610a7031380a49310a73732e",
            // protocol 1
            "7d7100285804000000696e747371015d7102284b004b014affffffff4bff4d00014dffff4a000001004a000000804c32" +
            "3134373438333634384c0a4c393232333337323033363835343737353830384c0a4c2d31313830353931363230373137" +
            "3431313330333432344c0a655805000000666c6f6174710347c0040000000000005804000000746578747104580a0000" +
            "0068c3a9e4b8ad0a5c2722710558040000006e6f6e6571064e5805000000626f6f6c737107284930310a4930300a7471" +
            "0858060000007368617265647109285d710a4b0161680a74710b58060000006e6573746564710c7d710d284b07294aff" +
            "ffffff5d710e473ff8000000000000617558020000006f64710f63636f6c6c656374696f6e730a4f7264657265644469" +
            "63740a71102952711158010000006171124b0173752e",
            // protocol 2
            "80027d7100285804000000696e747371015d7102284b004b014affffffff4bff4d00014dffff4a000001004a00000080" +
            "8a0500000080008a090000000000000080008a090000000000000000c0655805000000666c6f6174710347c004000000" +
            "0000005804000000746578747104580a00000068c3a9e4b8ad0a5c2722710558040000006e6f6e6571064e5805000000" +
            "626f6f6c7371078889867108580600000073686172656471095d710a4b0161680a86710b58060000006e657374656471" +
            "0c7d710d284b07294affffffff5d710e473ff8000000000000617558020000006f64710f63636f6c6c656374696f6e73" +
            "0a4f726465726564446963740a71102952711158010000006171124b0173752e",
            // protocol 3
            "80037d7100285804000000696e747371015d7102284b004b014affffffff4bff4d00014dffff4a000001004a00000080" +
            "8a0500000080008a090000000000000080008a090000000000000000c0655805000000666c6f6174710347c004000000" +
            "0000005804000000746578747104580a00000068c3a9e4b8ad0a5c2722710558040000006e6f6e6571064e5805000000" +
            "626f6f6c7371078889867108580600000073686172656471095d710a4b0161680a86710b58060000006e657374656471" +
            "0c7d710d284b07294affffffff5d710e473ff8000000000000617558020000006f64710f63636f6c6c656374696f6e73" +
            "0a4f726465726564446963740a71102952711158010000006171124b0173580500000062797465737113430200ff7114" +
            "752e",
            // protocol 4
            "80049508010000000000007d94288c04696e7473945d94284b004b014affffffff4bff4d00014dffff4a000001004a00" +
            "0000808a0500000080008a090000000000000080008a090000000000000000c0658c05666c6f61749447c00400000000" +
            "00008c0474657874948c0a68c3a9e4b8ad0a5c2722948c046e6f6e65944e8c05626f6f6c7394888986948c0673686172" +
            "6564945d944b0161680a86948c066e6573746564947d94284b07294affffffff5d94473ff800000000000061758c026f" +
            "64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c0161944b01738c0562797465" +
            "7394430200ff948c03736574948f94284b03908c0666726f7a656e94284b049194752e",
            // protocol 5
            "80059520010000000000007d94288c04696e7473945d94284b004b014affffffff4bff4d00014dffff4a000001004a00" +
            "0000808a0500000080008a090000000000000080008a090000000000000000c0658c05666c6f61749447c00400000000" +
            "00008c0474657874948c0a68c3a9e4b8ad0a5c2722948c046e6f6e65944e8c05626f6f6c7394888986948c0673686172" +
            "6564945d944b0161680a86948c066e6573746564947d94284b07294affffffff5d94473ff800000000000061758c026f" +
            "64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c0161944b01738c0562797465" +
            "7394430200ff948c03736574948f94284b03908c0666726f7a656e94284b0491948c0962797465617272617994960200" +
            "000000000000616294752e",
    };

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3, 4, 5})
    void readsWhatPythonWritesInEveryProtocol(int protocol) {
        Map<?, ?> value = assertInstanceOf(Map.class, load(HexFormat.of().parseHex(PYTHON_PICKLES[protocol])));

        Map<Object, Object> expected = new LinkedHashMap<>();
        expected.put("ints", List.of(0L, 1L, -1L, 255L, 256L, 65535L, 65536L, -2147483648L, 2147483648L,
                BigInteger.ONE.shiftLeft(63), BigInteger.ONE.shiftLeft(70).negate()));
        expected.put("float", -2.5);
        expected.put("text", "h\u00e9\u4e2d\n\\'\"");
        expected.put("none", null);
        expected.put("bools", new Tuple(List.of(true, false)));
        expected.put("shared", new Tuple(List.of(List.of(1L), List.of(1L))));
        expected.put("nested", Map.of(7L, new Tuple(List.of()), -1L, List.of(1.5)));
        expected.put("od", Map.of("a", 1L));
        if (protocol >= 4) {
            expected.put("set", Set.of(3L));
            expected.put("frozen", Set.of(4L));
        }
        Map<Object, Object> actual = new LinkedHashMap<>(value);
        if (protocol >= 3) {
            assertArrayEquals(new byte[] {0, (byte) 0xff}, (byte[]) actual.remove("bytes"));
        }
        if (protocol >= 5) {
            assertArrayEquals(new byte[] {'a', 'b'}, (byte[]) actual.remove("bytearray"));
        }
        assertEquals(expected, actual);
        assertEquals(new ArrayList<>(expected.keySet()), new ArrayList<>(actual.keySet()), "dict order");
        Tuple shared = (Tuple) value.get("shared");
        assertSame(shared.items().get(0), shared.items().get(1), "the memo gives back the same list");
    }

    @Test
    void readsPythonTwoStrings() {
        byte[] pickle = new OpcodeWriter().mark()
                .raw('S').text("'it\\'s\\n\\x41\\101\\\\'")     // STRING, a quoted literal with escapes
                .raw('S').text("\"\\u00e9\"")                   // an unknown escape stays as it is
                .raw('T').le32(2).raw('o', 'k')                 // BINSTRING
                .raw('U', 3, 0xc3, 0xa9, '!')                   // SHORT_BINSTRING, UTF-8 as torch.load decodes it
                .raw('V').text("a\\u005cb\\U0001F600c\\x")      // UNICODE: raw-unicode-escape
                .raw(0x8d).le64(1).raw('z')                     // BINUNICODE8
                .tuple().stop().bytes();
        assertEquals(new Tuple(List.of("it's\nAA\\", "\\u00e9", "ok", "\u00e9!", "a\\b\uD83D\uDE00c\\x", "z")),
                load(pickle));
    }

    @Test
    void readsTheRemainingDataOpcodes() {
        byte[] pickle = new OpcodeWriter().proto(4).mark()
                .raw('B').le32(1).raw(7)                        // BINBYTES
                .raw(0x8e).le64(0)                              // BINBYTES8
                .raw(0x8b).le32(2).raw(0x00, 0x80)              // LONG4: -32768
                .raw(0x8a, 0)                                   // LONG1 of no bytes: 0
                .raw('L').text("12345678901234567890L")         // LONG, text
                .raw('I').text("01")                            // INT True, as protocol 0 writes it
                .raw('F').text("inf")
                .raw('G', 0x3f, 0xf0, 0, 0, 0, 0, 0, 0)          // BINFLOAT, big-endian 1.0
                .raw('M', 0x34, 0x12)                           // BININT2
                .raw(0x88).raw('r').le32(70000).raw('0')        // NEWTRUE, LONG_BINPUT, POP
                .raw('j').le32(70000)                           // LONG_BINGET
                .raw('N', 0x85)                                 // TUPLE1 (None,)
                .raw('K', 1, 'K', 2, 'K', 3, 0x87)              // TUPLE3
                .raw('2')                                       // DUP
                .mark().raw('K', 9, '1')                        // POP_MARK drops the 9 and its mark
                .mark().raw('0')                                // POP with nothing above a MARK drops the mark
                .raw(0x98)                                      // READONLY_BUFFER: nothing to do
                .raw(']', 'K', 5, 'a')                          // EMPTY_LIST, APPEND
                .raw('(', 'K', 6, 'K', 7, 'e')                  // APPENDS
                .raw(0x8f, '(', 'K', 8, 0x90)                   // EMPTY_SET, ADDITEMS
                .raw('(', 'd')                                  // DICT, empty
                .tuple().stop().bytes();
        Tuple triple = new Tuple(List.of(1L, 2L, 3L));
        List<Object> expected = new ArrayList<>();
        expected.add(new byte[] {7});
        expected.addAll(List.of(new byte[0], -32768L, 0L, new BigInteger("12345678901234567890"), true,
                Double.POSITIVE_INFINITY, 1.0, 0x1234L, true, singleNone(), triple, triple,
                List.of(5L, 6L, 7L), Set.of(8L), Map.of()));
        List<Object> actual = ((Tuple) load(pickle)).items();
        assertArrayEquals((byte[]) expected.get(0), (byte[]) actual.get(0));
        assertArrayEquals((byte[]) expected.get(1), (byte[]) actual.get(1));
        assertEquals(expected.subList(2, expected.size()), actual.subList(2, actual.size()));
    }

    private static Tuple singleNone() {
        List<Object> items = new ArrayList<>();
        items.add(null);
        return new Tuple(items);
    }

    @Test
    void buildsAnOrderedDictEveryWayAPickleCanAskForOne() {
        byte[] pickle = new OpcodeWriter().proto(4).mark()
                .global("collections", "OrderedDict").emptyTuple().raw(0x81)              // NEWOBJ
                .global("collections", "OrderedDict").emptyTuple().emptyDict().raw(0x92)  // NEWOBJ_EX
                .mark().raw('i').text("collections").text("OrderedDict")                  // INST
                .mark().global("collections", "OrderedDict").raw('o')                     // OBJ
                .stackGlobal("collections", "OrderedDict").emptyTuple().reduce()          // STACK_GLOBAL, REDUCE
                .str("k").integer(1).setItem()
                .emptyDict().str("_metadata").emptyDict().setItem().raw('b')              // BUILD: ignored
                .tuple().stop().bytes();
        assertEquals(new Tuple(List.of(Map.of(), Map.of(), Map.of(), Map.of(), Map.of("k", 1L))), load(pickle));
    }

    @ParameterizedTest
    @ValueSource(strings = {"os system", "posix system", "nt system", "builtins eval", "__builtin__ getattr",
            "builtins exec", "subprocess Popen", "torch._utils _rebuild_qtensor",
            "torch._utils _rebuild_device_tensor_from_numpy", "numpy.core.multiarray _reconstruct",
            "_codecs encode", "copyreg _reconstructor", "torch load", "collections defaultdict"})
    void refusesEveryOtherGlobal(String global) {
        String[] parts = global.split(" ");
        byte[] viaGlobal = new OpcodeWriter().proto(2).global(parts[0], parts[1])
                .mark().str("echo hacked").tuple().reduce().stop().bytes();
        byte[] viaStackGlobal = new OpcodeWriter().proto(4).stackGlobal(parts[0], parts[1])
                .mark().str("echo hacked").tuple().reduce().stop().bytes();
        for (byte[] pickle : List.of(viaGlobal, viaStackGlobal)) {
            BadInputException e = assertThrows(BadInputException.class, () -> load(pickle));
            assertTrue(e.getMessage().contains("global '" + parts[0] + "." + parts[1] + "'"), e.getMessage());
            assertTrue(e.getMessage().contains("never executes code"), e.getMessage());
        }
    }

    @Test
    void refusesAllowedGlobalsCalledInShapesTorchNeverWrites() {
        assertRefused(new OpcodeWriter().proto(2).global("collections", "OrderedDict")
                .mark().str("x").tuple().reduce().stop(), "OrderedDict is expected with no arguments");
        assertRefused(new OpcodeWriter().proto(2).global("torch", "FloatStorage").emptyTuple().reduce().stop(),
                "storage type");
        assertRefused(new OpcodeWriter().proto(2).global("torch._utils", "_rebuild_tensor_v2")
                .mark().integer(1).integer(2).tuple().reduce().stop(), "expected with 6 arguments");
        assertRefused(new OpcodeWriter().proto(2).global("torch._utils", "_rebuild_parameter")
                .mark().str("not a tensor").raw(0x89).emptyOrderedDict().tuple().reduce().stop(),
                "argument 1 (data) is a str");
        assertRefused(new OpcodeWriter().proto(2).raw(']').emptyDict().raw('b').stop(), "BUILD may only");
        assertRefused(new OpcodeWriter().proto(2).mark().str("storage").str("torch.FloatStorage").str("0")
                .str("cpu").integer(1).tuple().raw('Q').stop(), "typed storage class");
        assertRefused(new OpcodeWriter().proto(2).str("0").raw('Q').stop(), "persistent id should be");
        assertRefused(new OpcodeWriter().raw('P').text("0").stop(), "is text");
        assertRefused(new OpcodeWriter().proto(5).raw(0x97).stop(), "out-of-band");
        assertRefused(new OpcodeWriter().proto(2).raw(0x82, 1).stop(), "extension registry");
    }

    @Test
    void refusesMalformedPickles() {
        assertRefused(new OpcodeWriter().proto(6).stop(), "protocol 6 is newer");
        assertRefused(new OpcodeWriter().proto(2).raw(0xff), "0xff is not a pickle opcode");
        assertRefused(new OpcodeWriter().proto(2).emptyDict(), "ends before its STOP");
        assertRefused(new OpcodeWriter().proto(2).stop(), "the stack is empty");
        assertRefused(new OpcodeWriter().proto(2).raw('h', 3).stop(), "memo entry 3 is read before");
        assertRefused(new OpcodeWriter().proto(2).raw('t').stop(), "no MARK");
        assertRefused(new OpcodeWriter().proto(2).mark().raw(0x85).stop(), "fewer than 1 items");
        assertRefused(new OpcodeWriter().proto(2).emptyTuple().integer(1).raw('a').stop(), "append to a list");
        assertRefused(new OpcodeWriter().proto(2).emptyDict().raw(']').integer(1).setItem().stop(),
                "dict key or set item should be");
        assertRefused(new OpcodeWriter().proto(2).mark().integer(1).raw('d').stop(), "key-value pairs");
        assertRefused(new OpcodeWriter().raw('I').text("12x").stop(), "'12x' is not an integer");
        assertRefused(new OpcodeWriter().raw('S').text("unquoted").stop(), "should be quoted");
        assertRefused(new OpcodeWriter().proto(2).raw('X').le32(2).raw(0xc3, 0x28).stop(), "not valid UTF-8");
        assertRefused(new OpcodeWriter().proto(2).raw(0x8b).le32(-1).stop(), "negative length");
    }

    @Test
    void checksEveryLengthAgainstWhatIsLeftBeforeAllocating() {
        assertRefused(new OpcodeWriter().proto(2).raw('X').le32(-1).raw('a', 'b').stop(),
                "announces 4294967295 bytes but only 3 are left");
        assertRefused(new OpcodeWriter().proto(4).raw(0x8e).le64(Long.MAX_VALUE).stop(), "truncated");
        assertRefused(new OpcodeWriter().proto(4).raw(0x8d).le64(-1).stop(), "announces 18446744073709551615");
        assertRefused(new OpcodeWriter().proto(4).raw(0x95).le64(1L << 40).stop(), "truncated");
        assertRefused(new OpcodeWriter().proto(2).raw('T').le32(Integer.MAX_VALUE).stop(), "truncated");
        assertRefused(new OpcodeWriter().proto(2).raw('J', 1, 2), "ends in the middle of the opcode");
        assertRefused(new OpcodeWriter().raw('I').text("1").raw('I', '2'), "text argument");
    }

    private static void assertRefused(OpcodeWriter pickle, String expected) {
        BadInputException e = assertThrows(BadInputException.class, () -> load(pickle.bytes()));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertTrue(e.getMessage().startsWith(FILE + ": "), e.getMessage());
    }

    private static Object load(byte[] pickle) {
        return SafeUnpickler.load(FILE, "data.pkl", pickle);
    }
}
