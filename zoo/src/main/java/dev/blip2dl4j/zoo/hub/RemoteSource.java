package dev.blip2dl4j.zoo.hub;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * One input of a conversion, as it is published: a Hugging Face repository at a revision (downloaded into
 * a folder of its own, which the converter reads as a folder), or a single file at a URL (a LAVIS {@code .pth}
 * on Google Cloud Storage).
 *
 * @param repo     a Hugging Face repository ({@code Salesforce/blip2-opt-2.7b}), or null for a URL
 * @param revision the commit the files are pinned to (or a branch, where no commit could be pinned)
 * @param url      the file's URL, or null for a repository
 * @param files    what to download: for a URL, exactly one file
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RemoteSource(String repo, String revision, String url, List<RemoteFile> files) {
    public RemoteSource {
        if ((repo == null) == (url == null)) {
            throw new IllegalArgumentException("a catalogue source is either a repo (with a revision) or a url");
        }
        if (repo != null && (revision == null || !repo.matches("[\\w.-]+/[\\w.-]+"))) {
            throw new IllegalArgumentException("a repo is 'owner/name' with a revision: " + repo + " @ " + revision);
        }
        if (url != null && (files == null || files.size() != 1)) {
            throw new IllegalArgumentException(url + ": a url source has exactly one file");
        }
        files = List.copyOf(files);
    }

    @JsonIgnore
    public boolean isRepo() {
        return repo != null;
    }

    /**
     * A URL source named {@code config.json} is the BLIP-2 config of the LAVIS checkpoint beside it (a
     * {@code .pth} carries none; a catalogue of one's own LAVIS models may not match a built-in LAVIS type):
     * it is downloaded into the same folder, where the converter finds it, and is not a checkpoint input.
     */
    @JsonIgnore
    public boolean isCompanionConfig() {
        return !isRepo() && files.get(0).path().equals("config.json");
    }

    /**
     * Where the source goes in an entry's download folder: a repository gets a folder (the converter reads it
     * as one checkpoint folder), a URL's file lies directly in the entry's folder.
     */
    @JsonIgnore
    public String localName() {
        return isRepo() ? repo.replace('/', '-') : files.get(0).path();
    }

    /**
     * Where to fetch a file: {@code {hubEndpoint}/{repo}/resolve/{revision}/{path}} as the Hugging Face hub and
     * its mirrors serve files; a URL source's own URL, with its scheme and host replaced by {@code
     * filesEndpoint} when one is given (a mirror of the publisher's files).
     */
    public URI uri(RemoteFile file, URI hubEndpoint, URI filesEndpoint) {
        if (isRepo()) {
            String path = Stream.of(file.path().split("/")).map(RemoteSource::encode).collect(Collectors.joining("/"));
            return URI.create(base(hubEndpoint) + "/" + repo + "/resolve/" + encode(revision) + "/" + path);
        }
        URI original = URI.create(url);
        if (filesEndpoint == null) {
            return original;
        }
        return URI.create(base(filesEndpoint) + original.getRawPath());
    }

    private static String base(URI endpoint) {
        String s = endpoint.toString();
        return s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
    }

    private static String encode(String segment) {
        return URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** For messages: the repository at its revision, or the URL. */
    @Override
    public String toString() {
        return isRepo() ? repo + "@" + revision : url;
    }
}
