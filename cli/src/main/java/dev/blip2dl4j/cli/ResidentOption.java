package dev.blip2dl4j.cli;

import picocli.CommandLine.Option;

/** {@code --resident}, for the commands that generate text: only decoding reads the language model's weights so often. */
final class ResidentOption {
    @Option(names = "--resident",
            description = "Copy the language model's weights into memory instead of reading them through the file "
                    + "mapping: faster decoding (about 1.7x on blip2-opt-2.7b), as much more memory as they take.")
    boolean on;
}
