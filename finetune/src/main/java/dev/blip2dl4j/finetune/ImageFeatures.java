package dev.blip2dl4j.finetune;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.finetune.data.SplitMix64;
import dev.blip2dl4j.finetune.data.TrainAugmentation;
import dev.blip2dl4j.finetune.data.VqaExample;
import dev.blip2dl4j.runtime.EagerVision;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.image.DecodedImage;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * The frozen image encoder's output for training examples. Without augmentation an image always gives the
 * same features, so they are computed once and kept ({@code [tokens, hidden]} float32 per image: 1.4 MB at
 * BLIP-2's 224 px ViT-g); with augmentation each use is a new random crop and flip, encoded afresh, as
 * LAVIS trains.
 */
final class ImageFeatures {
    private final Blip2 model;
    private final EagerVision encoder;
    private final TrainAugmentation augmentation;
    private final Map<Path, INDArray> cache = new HashMap<>();

    ImageFeatures(Blip2 model, EagerVision encoder) {
        this.model = model;
        this.encoder = encoder;
        var size = model.imageProcessor().config();
        this.augmentation = TrainAugmentation.lavis(size.width(), size.height());
    }

    /**
     * Decodes every image once, so that unusable ones are known before training starts, and encodes those
     * asked for into the cache, {@code chunk} at a time in the order given.
     *
     * @return the images that cannot be used, with the problem
     */
    Map<Path, String> prepare(Collection<Path> images, boolean encode, int chunk) {
        Map<Path, String> bad = new LinkedHashMap<>();
        List<Path> pending = new ArrayList<>();
        List<DecodedImage> decoded = new ArrayList<>();
        for (Path image : new LinkedHashSet<>(images)) {
            if (cache.containsKey(image)) {
                continue;
            }
            try {
                DecodedImage d = model.loadImage(image);
                if (encode) {
                    pending.add(image);
                    decoded.add(d);
                }
            } catch (BadInputException e) {
                bad.put(image, "image " + e.getMessage());
            }
            if (pending.size() == chunk) {
                encodeInto(pending, decoded);
            }
        }
        if (!pending.isEmpty()) {
            encodeInto(pending, decoded);
        }
        return bad;
    }

    /**
     * {@code [batch, tokens, hidden]} for the examples' images: augmented with draws from {@code random}, or
     * from the cache when {@code random} is null.
     */
    INDArray embeds(List<VqaExample> examples, SplitMix64 random) {
        if (random == null) {
            List<Path> missing = examples.stream().map(VqaExample::image).filter(p -> !cache.containsKey(p)).toList();
            Map<Path, String> bad = missing.isEmpty() ? Map.of() : prepare(missing, true, missing.size());
            if (!bad.isEmpty()) {
                Map.Entry<Path, String> first = bad.entrySet().iterator().next();
                throw new BadInputException(first.getKey(), first.getValue());
            }
            return Nd4j.stack(0, examples.stream().map(e -> cache.get(e.image())).toArray(INDArray[]::new));
        }
        List<DecodedImage> images = new ArrayList<>();
        for (VqaExample e : examples) {
            images.add(augmentation.apply(model.loadImage(e.image()), random));
        }
        return encoder.forward(model.imageProcessor().preprocess(images)).lastHiddenState();
    }

    private void encodeInto(List<Path> paths, List<DecodedImage> images) {
        INDArray out = encoder.forward(model.imageProcessor().preprocess(images)).lastHiddenState();
        for (int i = 0; i < paths.size(); i++) {
            cache.put(paths.get(i), out.get(NDArrayIndex.point(i), NDArrayIndex.all(), NDArrayIndex.all()).dup());
        }
        paths.clear();
        images.clear();
    }
}
