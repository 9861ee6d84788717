package dev.blip2dl4j.examples;

import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.finetune.FinetuneSettings;
import dev.blip2dl4j.finetune.FinetunedArtifact;
import dev.blip2dl4j.finetune.TrainingCheckpoint;
import dev.blip2dl4j.finetune.Finetuner;
import dev.blip2dl4j.finetune.data.BadRowPolicy;
import dev.blip2dl4j.finetune.data.VqaDataset;
import dev.blip2dl4j.finetune.data.VqaExample;
import dev.blip2dl4j.finetune.data.VqaSource;
import dev.blip2dl4j.zoo.Blip2;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Fine-tunes a model on a JSONL file of visual questions (stage two: only the Q-Former, query tokens and
 * projection learn) and writes the result as a new artifact, which {@code Blip2.load} and every command take.
 * LAVIS's stage-two settings, with 2 epochs and no warmup so that a small file shows something. Any generation
 * model (OPT or Flan-T5) in any storage type trains: the frozen parts are read as stored, and the export keeps
 * the base's types.
 *
 * <pre>examples/run FineTune tiny-opt.b2z train.jsonl tuned.b2z</pre>
 */
public final class FineTune {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: FineTune BASE.b2z TRAIN.jsonl OUT.b2z");
            System.exit(2);
        }
        Path base = Path.of(args[0]);
        Path out = Path.of(args[2]);
        VqaDataset train = VqaDataset.read(VqaSource.of(Path.of(args[1])), BadRowPolicy.FAIL);
        FinetuneSettings defaults = FinetuneSettings.lavisDefaults();
        FinetuneSettings settings = new FinetuneSettings(2, 0, defaults.batchSize(), 1, defaults.learningRate(),
                defaults.minLearningRate(), 0, defaults.learningRate(), defaults.weightDecay(), defaults.decayGroups(),
                0, defaults.seed(), true, null, defaults.maxQuestionWords(), defaults.checkpointEvery(), 0,
                defaults.evalBeams(), defaults.evalMaxNewTokens());
        // the outputs are checked before training: never the base, never a file that exists
        OutputFile tuned = OutputFile.check(out, List.of(base), false);
        OutputFile checkpoint = TrainingCheckpoint.output(Files.createTempDirectory("finetune").resolve("checkpoint.ckpt"),
                List.of(base), false, "a fresh folder is used");
        try (Artifact artifact = Artifact.open(base); Blip2 blip2 = Blip2.load(base)) {
            Finetuner finetuner = new Finetuner(blip2, settings, new Finetuner.Provenance(Map.of(),
                    FinetunedArtifact.baseModelId(artifact)));
            List<VqaExample> examples =
                    finetuner.prepare(train.examples(), BadRowPolicy.FAIL, false).examples();
            Finetuner.Result result = finetuner.train(examples, List.of(), checkpoint, false, new Finetuner.Listener() {
                @Override
                public void stepped(Finetuner.StepRecord step) {
                    System.out.printf("step %d/%d  loss %.4f  lr %.2e%n", step.step(), step.totalSteps(), step.loss(),
                            step.learningRate());
                }
            });
            FinetunedArtifact.write(artifact, result.parameters(), tuned, train.files(), List.of("examples/FineTune"));
            System.out.println("wrote " + out);
        }
    }
}
