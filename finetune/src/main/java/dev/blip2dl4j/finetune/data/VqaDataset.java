package dev.blip2dl4j.finetune.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.artifact.Manifest;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * VQA examples read from a {@link VqaSource}, with the rows left out and the SHA-256 of the files read
 * (recorded in a fine-tuned model's manifest and checked on resume).
 *
 * @param skipped rows left out under {@link BadRowPolicy#SKIP}
 * @param files   each file read, with its size and SHA-256
 */
public record VqaDataset(List<VqaExample> examples, List<BadRow> skipped, List<Manifest.SourceFile> files) {
    public VqaDataset {
        examples = List.copyOf(examples);
        skipped = List.copyOf(skipped);
        files = List.copyOf(files);
    }

    /** Reads the source in whichever of the three formats it is (see {@link VqaSource}). */
    public static VqaDataset read(VqaSource source, BadRowPolicy policy) {
        return read(source, VqaFormat.AUTO, policy);
    }

    /** Reads the source in the given format ({@link VqaFormat#AUTO}: as its content says). */
    public static VqaDataset read(VqaSource source, VqaFormat format, BadRowPolicy policy) {
        BadRows bad = new BadRows(policy);
        if (Files.isDirectory(source.file())) {
            return readSparkOutput(source, format, bad);
        }
        if (!Files.isRegularFile(source.file())) {
            throw new BadInputException(source.file(), Files.exists(source.file()) ? "is not a file" : "no such file");
        }
        VqaFormat resolved = format != VqaFormat.AUTO ? format : source.annotations() != null ? VqaFormat.VQAV2
                : startsWith(source.file(), '[') ? VqaFormat.LAVIS : VqaFormat.JSONL;
        if (format == VqaFormat.AUTO && source.annotations() == null && isVqav2Questions(source.file())) {
            throw new BadInputException(source.file(), "looks like an official VQAv2 questions file: give its "
                    + "annotations file too (--train-annotations, --val-annotations, eval's --annotations)");
        }
        if (resolved == VqaFormat.VQAV2 && source.annotations() == null) {
            throw new BadInputException(source.file(), "VQAv2 questions need their annotations file too");
        }
        List<VqaExample> examples = switch (resolved) {
            case VQAV2 -> Vqav2Reader.read(source, bad);
            case LAVIS -> LavisJsonReader.read(source, bad);
            default -> JsonlReader.read(source, bad);
        };
        return dataset(source, examples, bad, Stream.of(source.file(), source.annotations()).filter(f -> f != null).toList());
    }

    /**
     * A folder of JSON Lines part files as Spark writes them ({@code blip2 spark capfilt}'s output): complete
     * ({@code _SUCCESS}), its {@code part-*} files read in order as one JSONL file, relative image paths from the
     * folder's own folder.
     */
    private static VqaDataset readSparkOutput(VqaSource source, VqaFormat format, BadRows bad) {
        Path folder = source.file();
        if (!Files.isRegularFile(folder.resolve("_SUCCESS"))) {
            throw new BadInputException(folder, "is a folder, not a data file (nor a complete Spark output, which "
                    + "has _SUCCESS)");
        }
        if (format != VqaFormat.AUTO && format != VqaFormat.JSONL || source.annotations() != null) {
            throw new BadInputException(folder, "a Spark output folder is read as JSON Lines, without annotations");
        }
        List<Path> parts;
        try (Stream<Path> listing = Files.list(folder)) {
            parts = listing.filter(p -> p.getFileName().toString().startsWith("part-")).sorted().toList();
        } catch (IOException e) {
            throw new BadInputException(folder, "cannot list the folder (" + e.getMessage() + ")", e);
        }
        Path base = source.imageBase();
        List<VqaExample> examples = new ArrayList<>();
        for (Path part : parts) {
            examples.addAll(JsonlReader.read(new VqaSource(part, null, base), bad));
        }
        return dataset(source, examples, bad, parts);
    }

    private static VqaDataset dataset(VqaSource source, List<VqaExample> examples, BadRows bad, List<Path> read) {
        List<Manifest.SourceFile> files = new ArrayList<>();
        for (Path file : read) {
            try {
                files.add(new Manifest.SourceFile(file.getFileName().toString(), Files.size(file), Sha256.ofFile(file)));
            } catch (IOException e) {
                throw new BadInputException(file, "cannot read the data file (" + e.getMessage() + ")", e);
            }
        }
        if (examples.isEmpty()) {
            throw new BadInputException(source.file(), "has no usable question" + (bad.skipped().isEmpty() ? ""
                    : " (" + bad.skipped().size() + " rows left out, the first: " + bad.skipped().get(0) + ")"));
        }
        return new VqaDataset(examples, bad.skipped(), files);
    }

    /**
     * Whether the file's first JSON value is an object with a "questions" list: the official VQAv2 questions
     * (pretty-printed or not), which a JSONL reader would take for a broken first line.
     */
    private static boolean isVqav2Questions(Path file) {
        if (!startsWith(file, '{')) {
            return false;
        }
        try {
            // reads the first value only: for JSONL, the first line
            return new ObjectMapper().readTree(file.toFile()).path("questions").isArray();
        } catch (IOException e) {
            return false;
        }
    }

    /** Whether the file's first non-blank character is {@code c}. */
    private static boolean startsWith(Path file, char c) {
        try (InputStream in = Files.newInputStream(file)) {
            for (int b; (b = in.read()) >= 0; ) {
                if (!Character.isWhitespace(b) && b != 0xEF && b != 0xBB && b != 0xBF) {
                    return b == c;
                }
            }
            return false;
        } catch (NoSuchFileException e) {
            throw new BadInputException(file, "no such file");
        } catch (IOException e) {
            throw new BadInputException(file, "cannot read the data file (" + e.getMessage() + ")", e);
        }
    }
}
