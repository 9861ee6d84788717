package dev.blip2dl4j.convert.names;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One line of a name table: source names matching {@code pattern} (a whole-name regex) become
 * {@code target} (with $1.. group references), are fused into one slot of a target, or are dropped
 * for the stated reason.
 */
public record NameRule(Pattern pattern, Action action, String target, int slot, int slots, String reason) {

    public enum Action { RENAME, FUSE, DROP }

    /** {@code from} becomes {@code to}. */
    public static NameRule rename(String from, String to) {
        return new NameRule(Pattern.compile(from), Action.RENAME, to, 0, 1, null);
    }

    /**
     * {@code from} becomes slot {@code slot} of {@code slots} equal parts of {@code to}, concatenated along
     * the first dimension; slots no rule fills are zero (LAVIS keeps q and v biases of the fused qkv
     * projection and has no k bias).
     */
    public static NameRule fuse(String from, String to, int slot, int slots) {
        return new NameRule(Pattern.compile(from), Action.FUSE, to, slot, slots, null);
    }

    /** {@code from} is not part of the model we build; {@code why} is shown in the conversion report. */
    public static NameRule drop(String from, String why) {
        return new NameRule(Pattern.compile(from), Action.DROP, null, 0, 1, why);
    }

    /** The target name for {@code sourceName}, if this rule applies to it. */
    Optional<String> apply(String sourceName) {
        Matcher m = pattern.matcher(sourceName);
        if (!m.matches()) {
            return Optional.empty();
        }
        return Optional.of(action == Action.DROP ? "" : m.replaceFirst(target));
    }
}
