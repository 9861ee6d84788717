package dev.blip2dl4j.zoo.hub;

import java.net.URI;
import java.nio.file.Path;
import java.util.Map;

/**
 * Where pulled models go and where they come from.
 *
 * @param cacheDir      the model cache ({@link ModelCache})
 * @param endpoint      the Hugging Face hub or a mirror of it, serving {@code {endpoint}/{repo}/resolve/{revision}/{file}}
 * @param filesEndpoint a mirror of the other publishers' files (LAVIS's storage.googleapis.com URLs) that keeps
 *                      their paths, or null for the original hosts
 * @param token         a Hugging Face access token for gated or private repositories and mirrors, or null
 * @param offline       never touch the network: use the cache, or convert files already in it, or say what is missing
 * @param keepSource    keep the downloaded files after conversion (they are deleted by default)
 * @param policy        retries and timeouts
 */
public record HubSettings(Path cacheDir, URI endpoint, URI filesEndpoint, String token, boolean offline,
                          boolean keepSource, Downloader.Policy policy) {
    public static final URI HUGGING_FACE = URI.create("https://huggingface.co");

    /** From the process's environment: see {@link #fromEnvironment(Map, String)}. */
    public static HubSettings fromEnvironment() {
        return fromEnvironment(System.getenv(), System.getProperty("user.home"));
    }

    /**
     * {@code BLIP2_HOME} (default {@code ~/.deeplearning4j/models/blip2}, beside the classic DL4J zoo's
     * models), {@code HF_ENDPOINT} and {@code HF_TOKEN} (the variables Hugging Face's own tools read),
     * {@code BLIP2_FILES_ENDPOINT}, and {@code BLIP2_OFFLINE=1}.
     */
    public static HubSettings fromEnvironment(Map<String, String> env, String userHome) {
        String home = env.get("BLIP2_HOME");
        Path cache = home != null && !home.isBlank() ? Path.of(home)
                : Path.of(userHome, ".deeplearning4j", "models", "blip2");
        String endpoint = env.get("HF_ENDPOINT");
        String files = env.get("BLIP2_FILES_ENDPOINT");
        String token = env.get("HF_TOKEN");
        return new HubSettings(cache, endpoint == null || endpoint.isBlank() ? HUGGING_FACE : URI.create(endpoint),
                files == null || files.isBlank() ? null : URI.create(files), token == null || token.isBlank() ? null : token,
                "1".equals(env.get("BLIP2_OFFLINE")), false, Downloader.Policy.defaults());
    }

    public HubSettings withCacheDir(Path dir) {
        return new HubSettings(dir, endpoint, filesEndpoint, token, offline, keepSource, policy);
    }

    public HubSettings withEndpoint(URI uri) {
        return new HubSettings(cacheDir, uri, filesEndpoint, token, offline, keepSource, policy);
    }

    public HubSettings withFilesEndpoint(URI uri) {
        return new HubSettings(cacheDir, endpoint, uri, token, offline, keepSource, policy);
    }

    public HubSettings withOffline(boolean on) {
        return new HubSettings(cacheDir, endpoint, filesEndpoint, token, on, keepSource, policy);
    }

    public HubSettings withKeepSource(boolean on) {
        return new HubSettings(cacheDir, endpoint, filesEndpoint, token, offline, on, policy);
    }

    public HubSettings withPolicy(Downloader.Policy p) {
        return new HubSettings(cacheDir, endpoint, filesEndpoint, token, offline, keepSource, p);
    }
}
