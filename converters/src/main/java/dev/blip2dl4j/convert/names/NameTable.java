package dev.blip2dl4j.convert.names;

import java.util.List;
import java.util.Optional;

/**
 * How one source format names its tensors, as a list of rules tried in order (first match wins).
 * A name no rule matches is unexpected, and the conversion reports it.
 */
public record NameTable(String format, List<NameRule> rules) {

    public NameTable {
        rules = List.copyOf(rules);
    }

    /** What becomes of one source tensor. */
    public record Mapping(NameRule rule, String target) {
        public boolean dropped() {
            return rule.action() == NameRule.Action.DROP;
        }
    }

    public Optional<Mapping> map(String sourceName) {
        for (NameRule rule : rules) {
            Optional<String> target = rule.apply(sourceName);
            if (target.isPresent()) {
                return Optional.of(new Mapping(rule, target.get()));
            }
        }
        return Optional.empty();
    }
}
