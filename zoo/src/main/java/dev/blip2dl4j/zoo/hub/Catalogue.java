package dev.blip2dl4j.zoo.hub;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.LongPredicate;

/**
 * The pretrained models known by name: a data file, {@code catalogue.json} beside this class (the shipped
 * one), or one of your own in the same format. Every file is pinned to a revision and, where the publisher
 * exposes it, to its SHA-256; what could not be verified is written in the entry, not guessed.
 */
public record Catalogue(String format, int version, List<String> notes, List<CatalogueEntry> models) {
    public static final String FORMAT = "blip2-dl4j-catalogue";
    private static final ObjectMapper JSON = new ObjectMapper();

    public Catalogue {
        if (!FORMAT.equals(format) || version != 1) {
            throw new IllegalArgumentException("not a " + FORMAT + " version 1 file (format '" + format + "', version " + version + ")");
        }
        notes = notes == null ? List.of() : List.copyOf(notes);
        models = List.copyOf(models);
        Set<String> names = new HashSet<>();
        for (CatalogueEntry entry : models) {
            if (!names.add(entry.name())) {
                throw new IllegalArgumentException("the model name '" + entry.name() + "' is given twice");
            }
        }
    }

    /** The catalogue shipped with this build. */
    public static Catalogue builtIn() {
        try (InputStream in = Catalogue.class.getResourceAsStream("catalogue.json")) {
            return JSON.readValue(in, Catalogue.class);
        } catch (IOException e) {
            throw new UncheckedIOException("the built-in catalogue cannot be read", e);
        }
    }

    /** The catalogue the {@code BLIP2_CATALOGUE} environment variable names, or the built-in one. */
    public static Catalogue fromEnvironment() {
        String file = System.getenv("BLIP2_CATALOGUE");
        return file == null || file.isBlank() ? builtIn() : read(Path.of(file));
    }

    public static Catalogue read(Path file) {
        try {
            return JSON.readValue(Files.readAllBytes(file), Catalogue.class);
        } catch (IOException | IllegalArgumentException e) {
            throw new BadInputException(file, "is not a model catalogue: " + e.getMessage(), e);
        }
    }

    public Optional<CatalogueEntry> find(String name) {
        return models.stream().filter(m -> m.name().equals(name)).findFirst();
    }

    /** The entry of that name, or an error that lists the names there are. */
    public CatalogueEntry require(String name) {
        return find(name).orElseThrow(() -> new BadInputException("no model is called '" + name + "': the catalogue has "
                + String.join(", ", models.stream().map(CatalogueEntry::name).toList()) + " (`blip2 models` lists them)"));
    }

    /** Of the models that do one of {@code tasks}, the largest whose parameter count passes {@code fits}. */
    public Optional<CatalogueEntry> largestFitting(Collection<String> tasks, LongPredicate fits) {
        return models.stream().filter(m -> m.tasks().stream().anyMatch(tasks::contains))
                .filter(m -> fits.test(m.parameterCount()))
                .max(Comparator.comparingLong(CatalogueEntry::parameterCount));
    }
}
