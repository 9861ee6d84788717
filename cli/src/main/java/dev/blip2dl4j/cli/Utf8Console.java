package dev.blip2dl4j.cli;

import dev.blip2dl4j.BadInputException;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The command line reads and writes UTF-8 whatever the platform's locale. Under {@code LANG=C} the JVM decodes
 * its arguments as ASCII, turning every other byte into U+FFFD for good, and prints every non-ASCII character
 * as '?': questions and captions would change silently. The arguments' bytes are read again where the system
 * keeps them ({@code /proc/self/cmdline}); output goes out as UTF-8. File names are another matter: the JVM
 * encodes them in the locale's charset and cannot be told otherwise, so a name it cannot encode gets
 * {@link #unencodableName}'s error (./blip2 runs the JVM under a UTF-8 locale for that reason).
 */
final class Utf8Console {
    private Utf8Console() {
    }

    /** What the JVM decodes arguments and encodes file names with: the locale's charset. */
    static Charset platform() {
        try {
            return Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        } catch (IllegalArgumentException e) {
            return StandardCharsets.UTF_8;
        }
    }

    /** {@code args} as the bytes the caller passed, decoded as UTF-8 (as given where that cannot be done). */
    static String[] arguments(String[] args) {
        return arguments(args, platform(), Path.of("/proc/self/cmdline"));
    }

    static String[] arguments(String[] args, Charset platform, Path cmdline) {
        if (platform.equals(StandardCharsets.UTF_8)) {
            return args;
        }
        List<byte[]> words;
        try {
            words = words(Files.readAllBytes(cmdline));
        } catch (IOException e) {
            return args;   // no /proc: the platform's decoding is all there is
        }
        if (words.size() < args.length) {
            return args;
        }
        List<byte[]> ours = words.subList(words.size() - args.length, words.size());
        String[] decoded = new String[args.length];
        for (int i = 0; i < args.length; i++) {
            if (!new String(ours.get(i), platform).equals(args[i])) {
                return args;   // not the words the JVM decoded into args: leave them
            }
            decoded[i] = utf8(ours.get(i)).orElse(args[i]);
        }
        return decoded;
    }

    /** A standard stream ({@link FileDescriptor#out}, {@link FileDescriptor#err}) as UTF-8, flushed at each print. */
    static PrintStream stream(FileDescriptor fd) {
        return new PrintStream(new BufferedOutputStream(new FileOutputStream(fd)), true, StandardCharsets.UTF_8);
    }

    static PrintWriter writer(PrintStream stream) {
        return new PrintWriter(new OutputStreamWriter(stream, StandardCharsets.UTF_8), true);
    }

    /** The one error for a file name the platform's charset cannot encode. */
    static BadInputException unencodableName(String name, InvalidPathException e) {
        return new BadInputException("'" + name + "' cannot be used as a file name here: this JVM encodes file names "
                + "in " + platform() + " (from the locale: LC_ALL, LC_CTYPE, LANG), which cannot hold it. Run under a "
                + "UTF-8 locale, e.g. LANG=C.UTF-8 (./blip2 does so by itself)." + (e.getReason() == null ? ""
                : " (" + e.getReason() + ")"));
    }

    private static List<byte[]> words(byte[] cmdline) {
        List<byte[]> words = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < cmdline.length; i++) {
            if (cmdline[i] == 0) {
                words.add(Arrays.copyOfRange(cmdline, start, i));
                start = i + 1;
            }
        }
        return words;
    }

    private static Optional<String> utf8(byte[] bytes) {
        try {
            return Optional.of(StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString());
        } catch (CharacterCodingException e) {
            return Optional.empty();
        }
    }
}
