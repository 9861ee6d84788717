package dev.blip2dl4j.finetune.eval;

import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.finetune.FinetuneSettings;
import dev.blip2dl4j.finetune.Finetuner;
import dev.blip2dl4j.finetune.TrainedWeights;
import dev.blip2dl4j.finetune.TrainingCheckpoint;
import dev.blip2dl4j.finetune.data.BadRowPolicy;
import dev.blip2dl4j.finetune.data.VqaExample;
import dev.blip2dl4j.finetune.data.VqaPrompt;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.testing.ScriptedOpt;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.text.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Answers of two and three tokens, generated as validation and {@code blip2 eval} generate them ({@link
 * VqaEvaluation#generation}, 5 beams, 10 new tokens), come out whole and end at the newline training ends
 * answers with: the tiny OPT fixture's language model is replaced by a scripted one ({@link ScriptedOpt}) whose
 * continuation of each question is known and goes on past the newline, so an answer cut at {@code </s>} (never
 * generated), after one token or at the token limit would read differently and score differently.
 */
class MultiTokenAnswersTest {
    private static final String TEMPLATE = "Question: {}";
    private static final Path IMAGE = Fixtures.root().resolve("common/merlion.png");

    @TempDir
    static Path dir;
    private static Blip2 fixture;
    private static Blip2 scripted;

    @BeforeAll
    static void script() {
        fixture = Blip2.load(Fixtures.model("opt"));
        Tokenizer tokenizer = fixture.tokenizer();
        // "... color" -> red square, "... shape" -> small green box; after the newline " blue" over and over
        long newline = token(tokenizer, VqaPrompt.OPT_ANSWER_END);
        long blue = token(tokenizer, " blue");
        Map<Long, Long> next = Map.of(
                token(tokenizer, " color"), token(tokenizer, " red"),
                token(tokenizer, " red"), token(tokenizer, " square"),
                token(tokenizer, " square"), newline,
                token(tokenizer, " shape"), token(tokenizer, " small"),
                token(tokenizer, " small"), token(tokenizer, " green"),
                token(tokenizer, " green"), token(tokenizer, " box"),
                token(tokenizer, " box"), newline,
                newline, blue);
        scripted = fixture.withWeights(new TrainedWeights(fixture.weights(),
                ScriptedOpt.weights((OptConfig) fixture.config().text(), next)));
    }

    @AfterAll
    static void close() {
        scripted.close();
        fixture.close();
    }

    /** The id of a text the tokenizer makes one token of (after the {@code </s>} it puts in front of any text). */
    private static long token(Tokenizer tokenizer, String text) {
        long[] prefix = tokenizer.encode("");
        long[] ids = tokenizer.encode(text);
        assertEquals(prefix.length + 1, ids.length, "'" + text + "' is one token");
        return ids[prefix.length];
    }

    /** Three questions: one answered right, one that a partial answer would get right, one that only some humans gave. */
    private static List<VqaExample> examples() {
        List<String> boxes = new ArrayList<>(Collections.nCopies(2, "small green box"));
        boxes.addAll(Collections.nCopies(8, "box"));
        return List.of(
                example("1", "What is its Color.", "red square", Collections.nCopies(10, "red square")),
                example("2", "what is its color", "red", Collections.nCopies(10, "red")),
                example("3", "What is its shape", "box", boxes));
    }

    private static VqaExample example(String id, String question, String answer, List<String> answers) {
        return new VqaExample(IMAGE, question, answer, answers, id, dir.resolve("data.jsonl"), "line " + id);
    }

    private static void assertWholeAnswersScored(VqaEvaluation evaluation) {
        List<String> answers = evaluation.predictions().stream().map(VqaEvaluation.Prediction::answer).toList();
        assertEquals(List.of("red square", "red square", "small green box"), answers);
        assertEquals(List.of("Question: what is its color", "Question: what is its color", "Question: what is its shape"),
                evaluation.predictions().stream().map(VqaEvaluation.Prediction::prompt).toList());
        // right; wrong (a human answer of one token); 2 of 10 humans: the official mean over 9-of-10 subsets, 0.6
        assertEquals(List.of(1.0, 0.0, 0.6), evaluation.predictions().stream()
                .map(p -> Math.round(p.accuracy() * 1e9) / 1e9).toList());
        assertEquals(List.of(true, false, false), evaluation.predictions().stream()
                .map(VqaEvaluation.Prediction::exactMatch).toList());
        assertEquals(1.6 / 3, evaluation.accuracy(), 1e-12);
        assertEquals(1.0 / 3, evaluation.exactMatch(), 1e-12);
    }

    @Test
    void evalAnswersWholeAndStopsAtTheNewline() {
        VqaPrompt prompt = VqaPrompt.of(scripted, TEMPLATE, 50);
        List<Integer> progress = new ArrayList<>();
        VqaEvaluation evaluation = VqaEvaluation.run(scripted, examples(), prompt,
                VqaEvaluation.generation(scripted, 5, 10), 2, progress::add);
        assertWholeAnswersScored(evaluation);
        assertEquals(List.of(2, 3), progress);

        // what the script goes on with: an end at </s> (never generated) would give all of it, and greedy the same
        VqaEvaluation unended = VqaEvaluation.run(scripted, examples().subList(0, 1), prompt,
                VqaEvaluation.generation(scripted, 1, 10).withEosTokenIds(List.of(2L)), 1, done -> { });
        assertEquals("red square\n blue blue blue blue blue blue blue", unended.predictions().get(0).answer());
    }

    @Test
    void validationAnswersWholeAndStopsAtTheNewline() {
        FinetuneSettings d = FinetuneSettings.lavisDefaults();
        FinetuneSettings settings = new FinetuneSettings(1, 1, 3, 1, d.learningRate(), d.minLearningRate(), 0,
                d.learningRate(), d.weightDecay(), d.decayGroups(), d.maxGradientNorm(), d.seed(), false, TEMPLATE,
                d.maxQuestionWords(), d.checkpointEvery(), 0, 5, 10);
        assertEquals(5, d.evalBeams(), "validation generates as LAVIS's predict_answers by default");
        assertEquals(10, d.evalMaxNewTokens());
        Finetuner finetuner = new Finetuner(scripted, settings, new Finetuner.Provenance(Map.of(), "scripted"));
        List<VqaExample> examples = finetuner.prepareValidation(examples(), BadRowPolicy.FAIL).examples();
        List<Finetuner.ValidationRecord> validations = new ArrayList<>();
        finetuner.train(examples, examples, TrainingCheckpoint.output(dir.resolve("checkpoint.ckpt"), List.of(), false,
                "a fresh folder"), false, new Finetuner.Listener() {
                    @Override
                    public void validated(Finetuner.ValidationRecord validation) {
                        validations.add(validation);
                    }
                });
        // before the step and after it: the Q-Former and projection trained, the script (in the frozen LM) unchanged
        assertEquals(List.of(0, 1), validations.stream().map(Finetuner.ValidationRecord::step).toList());
        validations.forEach(v -> assertWholeAnswersScored(v.evaluation()));
    }
}
