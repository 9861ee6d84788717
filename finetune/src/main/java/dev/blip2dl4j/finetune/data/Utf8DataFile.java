package dev.blip2dl4j.finetune.data;

import dev.blip2dl4j.BadInputException;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * A data file read as text: UTF-8, as JSON is, with or without the byte-order mark some editors write. A file
 * in another encoding is refused as a whole, naming the line of its first byte that is not UTF-8 and how to
 * convert it: read row by row, a Latin-1 or UTF-16 file would lose every row with an accent, or every row.
 */
final class Utf8DataFile {
    private static final int CHUNK = 1 << 16;

    private Utf8DataFile() {
    }

    /**
     * The file's text, after the byte-order mark if it has one.
     *
     * @throws BadInputException naming the line, when the file is not UTF-8 text
     */
    static BufferedReader open(Path file) {
        requireUtf8(file);
        try {
            InputStream in = new BufferedInputStream(Files.newInputStream(file));
            in.mark(3);
            if (!(in.read() == 0xEF && in.read() == 0xBB && in.read() == 0xBF)) {
                in.reset();
            }
            return new BufferedReader(new InputStreamReader(in, decoder()));
        } catch (IOException e) {
            throw new BadInputException(file, "cannot read the data file (" + e.getMessage() + ")", e);
        }
    }

    private static void requireUtf8(Path file) {
        CharsetDecoder decoder = decoder();
        ByteBuffer bytes = ByteBuffer.allocate(CHUNK);
        CharBuffer chars = CharBuffer.allocate(CHUNK);
        long line = 1;
        boolean first = true;
        try (InputStream in = Files.newInputStream(file)) {
            for (boolean end = false; !end; ) {
                int n = in.readNBytes(bytes.array(), bytes.position(), bytes.remaining());
                end = n == 0;
                bytes.position(bytes.position() + n).flip();
                if (first && bytes.remaining() >= 2) {
                    first = false;
                    int b0 = bytes.get(0) & 0xFF;
                    int b1 = bytes.get(1) & 0xFF;
                    if (b0 == 0xFE && b1 == 0xFF || b0 == 0xFF && b1 == 0xFE) {
                        throw notUtf8(file, 1, "it starts with UTF-16's byte-order mark", "UTF-16");
                    }
                }
                int start = bytes.position();
                CoderResult result = decoder.decode(bytes, chars, end);
                for (int i = start; i < bytes.position(); i++) {
                    byte b = bytes.get(i);
                    if (b == 0) {
                        throw notUtf8(file, line, "a NUL byte, as UTF-16 text has", "UTF-16");
                    }
                    line += b == '\n' ? 1 : 0;
                }
                if (result.isError()) {
                    throw notUtf8(file, line, String.format(Locale.ROOT, "byte 0x%02X cannot stand there",
                            bytes.get(bytes.position()) & 0xFF), "LATIN1");
                }
                bytes.compact();
                chars.clear();
            }
        } catch (IOException e) {
            throw new BadInputException(file, "cannot read the data file (" + e.getMessage() + ")", e);
        }
    }

    private static BadInputException notUtf8(Path file, long line, String problem, String likely) {
        return new BadInputException(file, "line " + line + ": not UTF-8 (" + problem + "): data files are UTF-8; "
                + "convert it with iconv, e.g. `iconv -f " + likely + " -t UTF-8 " + file + " > converted"
                + fileSuffix(file) + "` (`file -i` tells which encoding it is in)");
    }

    private static String fileSuffix(Path file) {
        String name = file.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return dot < 0 ? "" : name.substring(dot);
    }

    private static CharsetDecoder decoder() {
        return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
    }
}
