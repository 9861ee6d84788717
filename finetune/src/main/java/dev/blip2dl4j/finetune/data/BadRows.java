package dev.blip2dl4j.finetune.data;

import dev.blip2dl4j.BadInputException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Where the readers report rows they cannot use: an error at once, or a list of what was skipped. */
public final class BadRows {
    private final BadRowPolicy policy;
    private final List<BadRow> skipped = new ArrayList<>();

    public BadRows(BadRowPolicy policy) {
        this.policy = policy;
    }

    /** @throws BadInputException naming the file, the row and the problem, unless bad rows are skipped */
    public void report(Path file, String position, String problem) {
        if (policy == BadRowPolicy.FAIL) {
            throw new BadInputException(file, position + ": " + problem
                    + " (--on-bad-row skip leaves such rows out and counts them)");
        }
        skipped.add(new BadRow(file, position, problem));
    }

    public List<BadRow> skipped() {
        return List.copyOf(skipped);
    }
}
