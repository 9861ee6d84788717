package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.OptDecoder;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** The OPT graph on placeholders, and a way to run it: what tests compare against. */
public record OptGraph(SameDiff sd, OptDecoder.Output out) {
    public static OptGraph build(OptConfig config, Weights weights) {
        SameDiff sd = SameDiff.create();
        Layers nn = new Layers(sd, weights);
        SDVariable embeds = sd.placeHolder("inputs_embeds", DataType.FLOAT, -1, -1, config.wordEmbedProjDim());
        SDVariable mask = sd.placeHolder("attention_mask", DataType.FLOAT, -1, -1);
        return new OptGraph(sd, OptDecoder.build(nn, config, embeds, mask));
    }

    /** logits {@code [batch, seq, vocab]}, then every hidden state. */
    public List<INDArray> run(INDArray embeds, INDArray mask) {
        List<SDVariable> wanted = new ArrayList<>(List.of(out.logits()));
        wanted.addAll(out.hiddenStates());
        Map<String, INDArray> result = sd.output(Map.of("inputs_embeds", embeds,
                "attention_mask", mask.castTo(DataType.FLOAT)), wanted.stream().map(SDVariable::name).toArray(String[]::new));
        return wanted.stream().map(v -> result.get(v.name())).toList();
    }

    public INDArray logits(INDArray embeds, INDArray mask) {
        return sd.output(Map.of("inputs_embeds", embeds, "attention_mask", mask.castTo(DataType.FLOAT)),
                out.logits().name()).get(out.logits().name());
    }
}
