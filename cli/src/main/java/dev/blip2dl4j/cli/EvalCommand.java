package dev.blip2dl4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.finetune.VqaBatchEncoder;
import dev.blip2dl4j.finetune.data.BadRow;
import dev.blip2dl4j.finetune.data.BadRows;
import dev.blip2dl4j.finetune.data.VqaDataset;
import dev.blip2dl4j.finetune.data.VqaExample;
import dev.blip2dl4j.finetune.data.VqaPrompt;
import dev.blip2dl4j.finetune.eval.VqaEvaluation;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Score a model's answers to VQA data: VQAv2 accuracy (the official answer normalisation; "
                + "min(#humans who gave the answer / 3, 1), averaged as the official script does) and exact match.",
                "Answers are generated as LAVIS evaluates VQA: 5 beams, at most 10 new tokens, the prompt of "
                        + "blip2 finetune (the question cleaned, in the model's template); OPT answers end at the "
                        + "newline fine-tuning ends them with.",
                "",
                "Example: blip2 eval --model tuned.b2z --data val.jsonl"})
final class EvalCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOption model;

    @Mixin
    ResidentOption resident;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "The questions with their answers.")
    Path dataFile;

    @Option(names = "--annotations", paramLabel = "FILE", description = "VQAv2 annotations for --data's questions.")
    Path annotations;

    @Mixin
    VqaDataOptions data;

    @Option(names = "--num-beams", defaultValue = "5", paramLabel = "N", description = "Beams (default: ${DEFAULT-VALUE}).")
    int beams;

    @Option(names = "--max-new-tokens", defaultValue = "10", paramLabel = "N", description = "New tokens at most (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--batch-size", defaultValue = "4", paramLabel = "N", description = "Images per batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--json", description = "Print JSON: the scores and every question's answer.")
    boolean json;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        VqaDataset dataset = data.read(dataFile, annotations);
        VqaEvaluation result;
        try (Blip2 blip2 = model.load().residentLanguageModel(resident.on)) {
            VqaPrompt prompt = VqaPrompt.of(blip2, data.template, data.maxQuestionWords);
            GenerationConfig generation = VqaEvaluation.generation(blip2, beams, maxNewTokens);
            // a question too long to answer is found before the first answer, as the readers find other bad rows
            BadRows bad = new BadRows(data.onBadRow);
            VqaBatchEncoder encoder = new VqaBatchEncoder(blip2.config(), blip2.tokenizer(), prompt);
            List<VqaExample> examples = new ArrayList<>();
            for (VqaExample e : dataset.examples()) {
                String problem = encoder.answerLengthProblem(e, maxNewTokens);
                if (problem == null) {
                    examples.add(e);
                } else {
                    bad.report(e.file(), e.position(), problem);
                }
            }
            List<BadRow> skipped = new ArrayList<>(dataset.skipped());
            skipped.addAll(bad.skipped());
            VqaDataOptions.reportSkipped(skipped, err);
            try (ProgressBar bar = ProgressBars.questions("answering", examples.size())) {
                result = VqaEvaluation.run(blip2, examples, prompt, generation, batchSize, bar::stepTo);
            }
        }
        if (json) {
            out.println(json(result));
        } else {
            out.printf(Locale.ROOT, "VQA accuracy %.2f%%, exact match %.2f%% on %d questions%n",
                    100 * result.accuracy(), 100 * result.exactMatch(), result.predictions().size());
        }
        out.flush();
        return Blip2Exit.OK;
    }

    private static String json(VqaEvaluation result) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("accuracy", result.accuracy());
        root.put("exact_match", result.exactMatch());
        root.put("questions", result.predictions().size());
        ArrayNode answers = root.putArray("predictions");
        for (VqaEvaluation.Prediction p : result.predictions()) {
            answers.addObject().put("id", p.example().id()).put("image", p.example().image().toString())
                    .put("prompt", p.prompt()).put("answer", p.answer()).put("expected", p.example().answer())
                    .put("accuracy", p.accuracy()).put("exact_match", p.exactMatch());
        }
        return root.toPrettyString();
    }
}
