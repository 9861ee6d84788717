package dev.blip2dl4j.cli;

/** The command line's exit codes. */
final class Blip2Exit {
    static final int OK = 0;
    static final int INTERNAL = 1;
    static final int BAD_INPUT = 3;
    static final int VERIFY_FAILED = 4;
    static final int DOWNLOAD_FAILED = 5;

    private Blip2Exit() {
    }
}
