package dev.blip2dl4j.zoo.hub;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.convert.plan.StoragePolicy;

import java.util.List;

/**
 * A pretrained BLIP-2 by name: what it does, which published files make it, and how to convert them.
 *
 * @param name         the name users type ({@code blip2-opt-2.7b}); also the cached artifact's file name
 * @param description  one line for {@code blip2 models}
 * @param tasks        what it is for: caption, vqa, match
 * @param lavisType    for a LAVIS release: its model type, whose built-in config the conversion uses
 * @param architecture a LAVIS model type whose built-in config has this model's architecture: the parameter
 *                     count (and so the memory estimate) comes from it, before anything is downloaded
 * @param parameters   the parameter count, for entries without an architecture (catalogues of your own models)
 * @param sources      the conversion's inputs, in the order {@code blip2 convert} takes them
 * @param unverified   what about this entry could not be checked against the publisher's files
 */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
public record CatalogueEntry(String name, String description, List<String> tasks, String lavisType,
                             String architecture, Long parameters, List<RemoteSource> sources, List<String> unverified) {
    public CatalogueEntry {
        if (name == null || !name.matches("[a-z0-9][a-z0-9._-]*")) {
            throw new IllegalArgumentException("a model name is lowercase letters, digits, '.', '_' and '-': '" + name + "'");
        }
        if ((architecture == null) == (parameters == null)) {
            throw new IllegalArgumentException(name + ": give either an architecture (a LAVIS model type) or parameters");
        }
        if (sources == null || sources.isEmpty()) {
            throw new IllegalArgumentException(name + ": no sources");
        }
        tasks = tasks == null ? List.of() : List.copyOf(tasks);
        sources = List.copyOf(sources);
        unverified = unverified == null ? List.of() : List.copyOf(unverified);
    }

    /** How many values the model's weights hold, from its architecture's config or as given. */
    public long parameterCount() {
        return parameters != null ? parameters
                : ParameterLayout.of(Blip2Config.knownLavisType(architecture)).totalValues();
    }

    /**
     * The bytes the weights take stored under {@code storage}: per tensor from the architecture's config, or for
     * an entry that gives only its parameter count, every value in the language model's type.
     */
    public long weightBytes(StoragePolicy storage) {
        return architecture != null ? storage.bytes(Blip2Config.knownLavisType(architecture))
                : parameters * storage.languageModel().size();
    }

    /** What a pull downloads, in bytes (the hub's rounded sizes where the exact ones are unknown). */
    public long downloadBytes() {
        return files().stream().mapToLong(RemoteFile::displaySize).sum();
    }

    public List<RemoteFile> files() {
        return sources.stream().flatMap(s -> s.files().stream()).toList();
    }

    /** How {@code blip2 convert} is to read the downloaded sources. */
    public Converter.Options converterOptions() {
        return Converter.Options.defaults().withLavisType(lavisType);
    }
}
