package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.OptDecoder;
import dev.blip2dl4j.graphs.T5;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The T5 graph on placeholders, and a way to run it: what tests compare against. */
public record T5Graph(SameDiff sd, T5.Output out) {
    /** What a run gives back, as arrays. */
    public record Result(INDArray encoderLast, List<INDArray> encoderHidden, INDArray logits, List<INDArray> decoderHidden) {
        public List<INDArray> all() {
            List<INDArray> all = new ArrayList<>(List.of(encoderLast, logits));
            all.addAll(encoderHidden);
            all.addAll(decoderHidden);
            return all;
        }
    }

    public static T5Graph build(T5Config config, Weights weights) {
        SameDiff sd = SameDiff.create();
        Layers nn = new Layers(sd, weights);
        SDVariable embeds = sd.placeHolder("inputs_embeds", DataType.FLOAT, -1, -1, config.dModel());
        SDVariable mask = sd.placeHolder("attention_mask", DataType.FLOAT, -1, -1);
        SDVariable decoderIds = sd.placeHolder("decoder_input_ids", DataType.INT64, -1, -1);
        return new T5Graph(sd, T5.build(nn, config, embeds, mask, decoderIds));
    }

    /** BLIP-2's encoder input: the projected queries, then {@code inputIds} embedded with the shared table. */
    public static INDArray inputsEmbeds(Weights weights, INDArray projectedQueries, INDArray inputIds) {
        SameDiff sd = SameDiff.create();
        Layers nn = new Layers(sd, weights);
        return OptDecoder.prependQueries(nn, sd.constant(projectedQueries), T5.embedTokens(nn, sd.constant(inputIds))).eval();
    }

    public Result run(INDArray embeds, INDArray mask, INDArray decoderIds) {
        List<SDVariable> wanted = new ArrayList<>(List.of(out.encoder().lastHiddenState(), out.logits()));
        wanted.addAll(out.encoder().hiddenStates());
        wanted.addAll(out.decoder().hiddenStates());
        Map<String, INDArray> got = sd.output(Map.of("inputs_embeds", embeds, "attention_mask", mask.castTo(DataType.FLOAT),
                "decoder_input_ids", decoderIds.castTo(DataType.INT64)), wanted.stream().map(SDVariable::name).toArray(String[]::new));
        List<INDArray> a = wanted.stream().map(v -> got.get(v.name())).toList();
        int encoderStates = out.encoder().hiddenStates().size();
        return new Result(a.get(0), a.subList(2, 2 + encoderStates), a.get(1), a.subList(2 + encoderStates, a.size()));
    }
}
