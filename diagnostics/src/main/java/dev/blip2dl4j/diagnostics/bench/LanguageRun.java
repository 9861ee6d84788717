package dev.blip2dl4j.diagnostics.bench;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.arrays.ResidentWeights;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.PromptInputs;
import dev.blip2dl4j.zoo.generate.ImageEncoder;
import dev.blip2dl4j.zoo.generate.LanguageModel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The benchmark's language model stages as the peer defines them, on what generation runs
 * ({@link ImageEncoder}'s projection, {@link LanguageModel}): the prefill projects the Q-Former output,
 * embeds the prompt, runs the LM over both and gives the last position's logits (for T5: the encoder and
 * the first decoder step), with the decoder that continues it one token at a time. Batch 1.
 */
final class LanguageRun implements AutoCloseable {
    private final ImageEncoder encoder;
    private final LanguageModel lm;
    private final ResidentWeights resident;
    private final long[] prompt;

    /**
     * @param encoder  the image path whose projection feeds the language model
     * @param resident the language model's weights copied into memory, as {@code Blip2.residentLanguageModel} does
     */
    LanguageRun(Blip2Config config, Weights weights, ImageEncoder encoder, long[] prompt, boolean resident) {
        this.encoder = encoder;
        this.resident = resident ? new ResidentWeights(weights) : null;
        this.lm = LanguageModel.of(config, resident ? this.resident : weights);
        this.prompt = prompt;
    }

    /** Flan-T5 (whose prefill also takes the decoder's start), not OPT. */
    boolean encoderDecoder() {
        return !lm.decoderOnly();
    }

    /** Starts a sequence from the Q-Former output {@code [1, queries, qformer_hidden]}, with room for the decode stage. */
    LanguageModel.Started prefill(INDArray queries) {
        INDArray projected = encoder.project(queries);
        INDArray embeds = lm.inputsEmbeds(projected, new long[][]{prompt});
        INDArray mask = PromptInputs.attentionMask((int) projected.size(1), Nd4j.ones(DataType.FLOAT, 1, prompt.length));
        return lm.start(embeds, mask, (int) embeds.size(1) + StageBenchmark.DECODE_STEPS + 1);
    }

    @Override
    public void close() {
        if (resident != null) {
            resident.close();
        }
    }
}
