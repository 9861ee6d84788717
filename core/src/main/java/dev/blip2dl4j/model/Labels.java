package dev.blip2dl4j.model;

/** Training labels as transformers reads them, for both stage-two backends. */
public final class Labels {
    /** A label position that is not scored (prompt tokens, padding): the loss neither counts nor differentiates it. */
    public static final long IGNORE_INDEX = -100;

    private Labels() {
    }
}
