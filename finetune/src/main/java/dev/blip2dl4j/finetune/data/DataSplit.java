package dev.blip2dl4j.finetune.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A validation set held out of the training data ({@code --val-split}): whole images, so that no image
 * is seen in training and scored in validation, chosen by a seeded shuffle of the distinct images. The
 * same data, fraction and seed give the same split.
 */
public record DataSplit(List<VqaExample> train, List<VqaExample> validation) {

    public static DataSplit of(List<VqaExample> examples, double fraction, long seed) {
        if (!(fraction > 0 && fraction < 1)) {
            throw new IllegalArgumentException("the validation fraction must lie between 0 and 1, not " + fraction);
        }
        Set<Path> distinct = new LinkedHashSet<>();
        examples.forEach(e -> distinct.add(e.image()));
        List<Path> images = new ArrayList<>(distinct);
        int[] order = SplitMix64.permutation(images.size(), new SplitMix64(seed));
        int held = (int) Math.max(1, Math.round(images.size() * fraction));
        if (held >= images.size()) {
            throw new IllegalArgumentException("the data has " + images.size() + " distinct images: too few to hold "
                    + "out " + fraction + " of them and still train");
        }
        Set<Path> validationImages = new HashSet<>();
        for (int i = 0; i < held; i++) {
            validationImages.add(images.get(order[i]));
        }
        List<VqaExample> train = new ArrayList<>();
        List<VqaExample> validation = new ArrayList<>();
        examples.forEach(e -> (validationImages.contains(e.image()) ? validation : train).add(e));
        return new DataSplit(List.copyOf(train), List.copyOf(validation));
    }
}
