package dev.blip2dl4j;

/** This build's name and version, as the command line prints it and as every artifact we write records its writer. */
public final class Version {
    public static final String TEXT = "blip2-dl4j 0.1.0";

    private Version() {
    }
}
