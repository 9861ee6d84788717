package dev.blip2dl4j.cli;

import dev.blip2dl4j.zoo.hub.Catalogue;
import dev.blip2dl4j.zoo.hub.Hub;
import dev.blip2dl4j.zoo.hub.HubSettings;
import picocli.CommandLine.Option;

import java.net.URI;
import java.nio.file.Path;

/** Where models by name are cached and fetched from: each option overrides its environment variable. */
final class HubOptions {
    @Option(names = "--cache-dir", paramLabel = "DIR",
            description = "The model cache (default: $BLIP2_HOME, else ~/.deeplearning4j/models/blip2).")
    Path cacheDir;

    @Option(names = "--offline", description = "Never touch the network: use the cache, convert files already in it, "
            + "or say what is missing (also BLIP2_OFFLINE=1).")
    boolean offline;

    @Option(names = "--endpoint", paramLabel = "URL",
            description = "A Hugging Face hub mirror (default: $HF_ENDPOINT, else https://huggingface.co). HF_TOKEN is sent to it.")
    URI endpoint;

    @Option(names = "--files-endpoint", paramLabel = "URL",
            description = "A mirror of LAVIS's files that keeps their paths (default: $BLIP2_FILES_ENDPOINT, else the original hosts).")
    URI filesEndpoint;

    @Option(names = "--catalogue", paramLabel = "FILE",
            description = "A catalogue of your own, in the shipped one's format (default: $BLIP2_CATALOGUE, else the built-in one).")
    Path catalogue;

    Hub hub() {
        HubSettings settings = HubSettings.fromEnvironment();
        if (cacheDir != null) {
            settings = settings.withCacheDir(cacheDir);
        }
        if (offline) {
            settings = settings.withOffline(true);
        }
        if (endpoint != null) {
            settings = settings.withEndpoint(endpoint);
        }
        if (filesEndpoint != null) {
            settings = settings.withFilesEndpoint(filesEndpoint);
        }
        return new Hub(catalogue != null ? Catalogue.read(catalogue) : Catalogue.fromEnvironment(), settings);
    }
}
