package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a pickle may build is bounded, not only its bytes: every opcode of one byte that makes a value, a
 * reference, a memo entry or a mark counts, so a small file cannot fill the heap.
 */
class PickleBoundsTest {
    private static final Path FILE = Path.of("test.pkl");
    /** Well past every bound, and still small. */
    private static final int RUN = SafeUnpickler.MAX_STEPS + 10;

    /** The reported file: a 2.7 MB checkpoint whose 127 MB pickle is EMPTY_DICT after EMPTY_DICT. */
    @Test
    void aRunOfEmptyDictsInACheckpointEndsQuicklyWithANamedError(@TempDir Path dir) throws IOException {
        byte[] pickle = new byte[127 << 20];
        Arrays.fill(pickle, (byte) '}');
        Path file = new CheckpointZip(pickle).deflate("data.pkl").writeTo(dir.resolve("pytorch_model.bin"));
        BadInputException e = assertTimeoutPreemptively(Duration.ofSeconds(60),
                () -> assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file)));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("(EMPTY_DICT): more than " + SafeUnpickler.MAX_STACK
                + " values wait on the stack"), e.getMessage());
    }

    /** Each opcode that makes something from nothing, repeated: none may build without limit. */
    @ParameterizedTest(name = "opcode {0}")
    @ValueSource(chars = {'}', ']', ')', 'N', '\u0088', '\u0089', '\u008f'})
    void aRunOfAnyValueOpcodeIsBounded(char opcode) {
        assertRefused(run(new OpcodeWriter(), opcode, RUN), "wait on the stack");
    }

    @Test
    void referencesCountLikeValues() {
        // DUP and BINGET push what is already there, so memory grows by references alone
        assertRefused(run(new OpcodeWriter().emptyDict(), '2', RUN), "(DUP): more than " + SafeUnpickler.MAX_STACK);
        assertRefused(run(new OpcodeWriter().emptyDict().raw('q', 0), 'h', 0, RUN),
                "(BINGET): more than " + SafeUnpickler.MAX_STACK);
        // a list appended to itself grows without the stack growing
        OpcodeWriter selfAppending = new OpcodeWriter().raw(']');
        for (int i = 0; i < RUN; i++) {
            selfAppending.raw('2', 'a');
        }
        assertRefused(selfAppending, "(DUP): the pickle builds more than " + SafeUnpickler.MAX_STEPS);
    }

    @Test
    void memoEntriesCount() {
        assertRefused(run(new OpcodeWriter().emptyDict(), '\u0094', RUN), "(MEMOIZE): the pickle builds more than");
        OpcodeWriter distinct = new OpcodeWriter().emptyDict();
        for (int i = 0; i < RUN; i++) {
            distinct.raw('r').le32(i);
        }
        assertRefused(distinct, "(LONG_BINPUT): the pickle builds more than");
    }

    @Test
    void hugeMemoIndicesAllocateNothing() {
        assertEquals(Map.of(), load(new OpcodeWriter().emptyDict().raw('r').le32(-1).raw('j').le32(-1).raw('0')
                .stop().bytes()), "index 2^32-1 is one entry, not a table that large");
        assertRefused(new OpcodeWriter().emptyDict().raw('j').le32(0x7fffffff).stop(),
                "memo entry 2147483647 is read before it is written");
        assertRefused(new OpcodeWriter().emptyDict().raw('p').text("1" + "0".repeat(30)).stop(),
                "memo index 1" + "0".repeat(30) + " is out of range");
    }

    @Test
    void nestingIsBounded() {
        assertRefused(run(new OpcodeWriter(), '(', SafeUnpickler.MAX_MARKS + 1),
                "(MARK): more than " + SafeUnpickler.MAX_MARKS + " MARKs are open at once");
        // Python nests [[[...]]] by leaving each open list on the stack until its item is done
        assertRefused(run(new OpcodeWriter(), ']', SafeUnpickler.MAX_STACK + 1),
                "(EMPTY_LIST): more than " + SafeUnpickler.MAX_STACK + " values wait on the stack");
    }

    @Test
    void aLargeButOrdinaryPickleIsRead() {
        // 200,000 entries in torch.save's batches of 1000: more than any state dict holds
        OpcodeWriter pickle = new OpcodeWriter().proto(2).emptyDict();
        for (int batch = 0; batch < 200; batch++) {
            pickle.mark();
            for (int i = 0; i < 1000; i++) {
                pickle.str("k" + (batch * 1000 + i)).integer(i);
            }
            pickle.setItems();
        }
        Map<?, ?> dict = assertInstanceOf(Map.class, load(pickle.stop().bytes()));
        assertEquals(200_000, dict.size());
        List<Object> nested = List.of(List.of(List.of()));
        assertEquals(nested, load(new OpcodeWriter().raw(']', ']', ']', 'a', 'a').stop().bytes()));
    }

    private static OpcodeWriter run(OpcodeWriter pickle, char opcode, int times) {
        for (int i = 0; i < times; i++) {
            pickle.raw(opcode);
        }
        return pickle.stop();
    }

    private static OpcodeWriter run(OpcodeWriter pickle, char opcode, int argument, int times) {
        for (int i = 0; i < times; i++) {
            pickle.raw(opcode, argument);
        }
        return pickle.stop();
    }

    private static void assertRefused(OpcodeWriter pickle, String expected) {
        BadInputException e = assertTimeoutPreemptively(Duration.ofSeconds(30),
                () -> assertThrows(BadInputException.class, () -> load(pickle.bytes())));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    private static Object load(byte[] pickle) {
        return SafeUnpickler.load(FILE, "data.pkl", pickle);
    }
}
