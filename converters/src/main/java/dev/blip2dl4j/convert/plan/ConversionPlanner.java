package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.convert.names.NameRule;
import dev.blip2dl4j.convert.names.NameTable;
import dev.blip2dl4j.convert.tensor.SourceTensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Decides what a conversion writes: maps every source tensor to its canonical name through its
 * source's name table, and checks the result against the parameters the config says the model has.
 * Missing, unexpected, duplicated and mis-shaped tensors are all collected and reported together, by
 * name, with expected against found, before anything is written.
 */
public final class ConversionPlanner {
    private static final Pattern VISION_LAYER = Pattern.compile("vision_model\\.encoder\\.layers\\.(\\d+)\\..*");
    /**
     * The EVA ViT's linear layers and patch convolution: what LAVIS converts to fp16. The q and v biases
     * are parameters of its attention module, not of a Linear, and stay in fp32.
     */
    private static final Pattern VIT_HALF_PRECISION = Pattern.compile(
            "vision_model\\.(embeddings\\.patch_embedding\\.(weight|bias)|encoder\\.layers\\.\\d+\\.(self_attn\\.qkv\\.weight"
                    + "|(self_attn\\.projection|mlp\\.fc[12])\\.(weight|bias)))");
    private static final int LISTED = 12;

    private final Blip2Config config;
    private final ParameterLayout layout;
    private final StoragePolicy storage;
    private final boolean vitInHalfPrecision;

    private final Map<String, SourceTensor> assigned = new LinkedHashMap<>();
    private final Map<String, SourceTensor[]> fused = new LinkedHashMap<>();
    private final List<TiedCopy> tiedCopies = new ArrayList<>();
    private final Map<String, Integer> dropped = new TreeMap<>();
    private final List<String> unexpected = new ArrayList<>();
    private final List<String> duplicated = new ArrayList<>();
    private final List<String> misshaped = new ArrayList<>();
    private final List<String> missing = new ArrayList<>();
    private final Map<SourceTensor, SourceRole> roles = new LinkedHashMap<>();

    /**
     * @param storage            which type each tensor is stored in
     * @param vitInHalfPrecision round the EVA ViT's linear weights taken from {@code eva_vit_g.pth} through
     *                           fp16, as LAVIS does when {@code vit_precision} is fp16
     */
    private ConversionPlanner(Blip2Config config, StoragePolicy storage, boolean vitInHalfPrecision) {
        this.config = config;
        this.layout = ParameterLayout.of(config);
        this.storage = storage;
        this.vitInHalfPrecision = vitInHalfPrecision;
    }

    public static ConversionPlan plan(List<RoledSource> sources, Blip2Config config, StoragePolicy storage,
                                      boolean vitInHalfPrecision) {
        return new ConversionPlanner(config, storage, vitInHalfPrecision).build(sources);
    }

    private ConversionPlan build(List<RoledSource> sources) {
        for (RoledSource part : sources) {
            for (SourceTensor t : part.source().tensors()) {
                roles.put(t, part.role());
                map(part.role(), t);
            }
        }
        List<PlannedTensor> planned = new ArrayList<>();
        for (ParamSpec p : layout.parameters()) {
            plannedTensor(p).ifPresent(planned::add);
        }
        assigned.keySet().stream().filter(name -> !layout.contains(name))
                .forEach(name -> unexpected.add(name + " (from " + describe(assigned.get(name)) + ")"));
        fused.keySet().stream().filter(name -> !layout.contains(name))
                .forEach(name -> unexpected.add(name + " (fused from q/v biases)"));
        checkTiedShapes();
        if (!missing.isEmpty() || !unexpected.isEmpty() || !duplicated.isEmpty() || !misshaped.isEmpty()) {
            throw new BadInputException(problems(sources));
        }
        List<Path> files = new ArrayList<>(new LinkedHashSet<>(sources.stream()
                .flatMap(s -> s.source().files().stream()).toList()));
        return new ConversionPlan(planned, tiedCopies, files, storage, notes());
    }

    private void map(SourceRole role, SourceTensor t) {
        NameTable table = role.names();
        Optional<NameTable.Mapping> mapping = table.map(t.name());
        if (mapping.isEmpty()) {
            unexpected.add(t.name() + " (in " + describe(t) + ", a name " + role.description()
                    + "s do not have)");
            return;
        }
        if (mapping.get().dropped()) {
            dropped.merge(mapping.get().rule().reason(), 1, Integer::sum);
            return;
        }
        String target = mapping.get().target();
        Matcher layer = VISION_LAYER.matcher(target);
        if (role == SourceRole.EVA_VIT && layer.matches()
                && Integer.parseInt(layer.group(1)) >= config.vision().numHiddenLayers()) {
            dropped.merge("EVA-CLIP blocks past the " + config.vision().numHiddenLayers()
                    + " BLIP-2 uses (it takes the features before the last block)", 1, Integer::sum);
            return;
        }
        String tiedTo = layout.tiedAliases().get(target);
        if (tiedTo != null) {
            tiedCopies.add(new TiedCopy(t, target, tiedTo));
            return;
        }
        NameRule rule = mapping.get().rule();
        if (rule.action() == NameRule.Action.FUSE) {
            SourceTensor[] slots = fused.computeIfAbsent(target, k -> new SourceTensor[rule.slots()]);
            if (slots[rule.slot()] != null) {
                duplicated.add(target + " slot " + rule.slot() + ": " + describe(slots[rule.slot()]) + " and " + describe(t));
            }
            slots[rule.slot()] = t;
            return;
        }
        SourceTensor previous = assigned.putIfAbsent(target, t);
        if (previous != null) {
            duplicated.add(target + ": " + describe(previous) + " and " + describe(t));
        }
    }

    private Optional<PlannedTensor> plannedTensor(ParamSpec p) {
        long[] shape = p.shape();
        SourceTensor[] slots = fused.get(p.name());
        if (slots != null) {
            long[] slotShape = shape.clone();
            slotShape[0] /= slots.length;
            List<Optional<SourceTensor>> parts = new ArrayList<>();
            for (SourceTensor slot : slots) {
                if (slot != null && !Arrays.equals(slot.shape(), slotShape)) {
                    misshaped.add(slot.name() + " (for " + p.name() + "): expected " + Arrays.toString(slotShape)
                            + ", found " + Arrays.toString(slot.shape()));
                }
                if (slot != null && !slot.dtype().isFloatingPoint()) {
                    misshaped.add(slot.name() + ": expected floating point, found " + slot.dtype());
                }
                parts.add(Optional.ofNullable(slot));
            }
            return Optional.of(new PlannedTensor(p.name(), storage.dtype(p), shape, new PlannedTensor.Fused(parts)));
        }
        SourceTensor source = assigned.get(p.name());
        if (source == null) {
            missing.add(p.name() + " " + Arrays.toString(shape));
            return Optional.empty();
        }
        if (!Arrays.equals(source.shape(), shape)) {
            misshaped.add(p.name() + ": expected " + Arrays.toString(shape) + ", found " + Arrays.toString(source.shape())
                    + " in " + describe(source));
            return Optional.empty();
        }
        if (!source.dtype().isFloatingPoint()) {
            misshaped.add(p.name() + ": expected floating point, found " + source.dtype() + " in " + describe(source));
            return Optional.empty();
        }
        boolean roundThroughHalf = vitInHalfPrecision && roles.get(source) == SourceRole.EVA_VIT
                && VIT_HALF_PRECISION.matcher(p.name()).matches();
        return Optional.of(new PlannedTensor(p.name(), storage.dtype(p), shape, new PlannedTensor.Copy(source, roundThroughHalf)));
    }

    private void checkTiedShapes() {
        for (TiedCopy tied : tiedCopies) {
            ParamSpec target = layout.get(tied.tiedTo());
            if (target != null && !Arrays.equals(target.shape(), tied.source().shape())) {
                misshaped.add(tied.canonicalName() + " (tied to " + tied.tiedTo() + "): expected "
                        + Arrays.toString(target.shape()) + ", found " + Arrays.toString(tied.source().shape())
                        + " in " + describe(tied.source()));
            }
        }
    }

    private String problems(List<RoledSource> sources) {
        String files = String.join(", ", sources.stream().flatMap(p -> p.source().files().stream())
                .map(Path::toString).distinct().toList());
        StringBuilder s = new StringBuilder(files + ": the checkpoint does not match the model its config describes ("
                + config.kind().architecture() + ", " + layout.parameters().size() + " tensors):");
        section(s, "missing", missing);
        section(s, "unexpected", unexpected);
        section(s, "given twice", duplicated);
        section(s, "wrong shape", misshaped);
        hints(s, sources);
        return s.toString();
    }

    private static void section(StringBuilder s, String what, List<String> items) {
        if (items.isEmpty()) {
            return;
        }
        s.append(' ').append(items.size()).append(' ').append(what).append(": ");
        s.append(String.join(", ", items.subList(0, Math.min(LISTED, items.size()))));
        if (items.size() > LISTED) {
            s.append(" and ").append(items.size() - LISTED).append(" more");
        }
        s.append(';');
    }

    private void hints(StringBuilder s, List<RoledSource> sources) {
        boolean lavis = sources.stream().anyMatch(p -> p.role() == SourceRole.LAVIS);
        long missingVision = missing.stream().filter(m -> m.startsWith("vision_model.encoder.")).count();
        long missingLlm = missing.stream().filter(m -> m.startsWith("language_model.")).count();
        if (lavis && missingVision > 0) {
            s.append(" a LAVIS stage-two checkpoint holds only what training changed: give LAVIS's eva_vit_g.pth too;");
        }
        if (lavis && missingLlm > 0) {
            s.append(" give the Hugging Face folder of the language model too (e.g. facebook/opt-2.7b or google/flan-t5-xl);");
        }
        boolean eva = sources.stream().anyMatch(p -> p.role() == SourceRole.EVA_VIT);
        if (eva && misshaped.stream().anyMatch(m -> m.startsWith("vision_model.embeddings.position_embedding"))) {
            s.append(" eva_vit_g.pth holds position embeddings for 224 px, which LAVIS interpolates for other image "
                    + "sizes; that is not supported here: use a checkpoint that holds its own ViT (LAVIS's caption_coco ones do);");
        }
        if (!misshaped.isEmpty()) {
            s.append(" check that the config (").append(config.text().getClass().getSimpleName())
                    .append(", image size ").append(config.vision().imageSize()).append(") is the checkpoint's own;");
        }
        s.setLength(s.length() - 1);
        s.append('.');
    }

    private List<String> notes() {
        List<String> notes = new ArrayList<>();
        dropped.forEach((reason, count) -> notes.add("dropped " + count + " tensor" + (count == 1 ? "" : "s") + ": " + reason));
        for (TiedCopy tied : tiedCopies) {
            notes.add("not stored: " + tied.source().name() + ", tied to " + tied.tiedTo() + " (compared with it)");
        }
        if (fused.size() > 0) {
            notes.add("fused " + fused.size() + " q/v bias pairs into qkv biases with a zero key bias");
        }
        long rounded = assigned.values().stream().filter(t -> roles.get(t) == SourceRole.EVA_VIT).count();
        if (vitInHalfPrecision && rounded > 0) {
            notes.add("rounded the EVA ViT's linear weights through float16, as LAVIS runs them (vit_precision fp16)");
        }
        return notes;
    }

    private static String describe(SourceTensor t) {
        return t.view().file().getFileName() + " '" + t.name() + "'";
    }
}
