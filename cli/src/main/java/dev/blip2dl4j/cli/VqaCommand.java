package dev.blip2dl4j.cli;

import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.text.PromptTemplate;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

@Command(name = "vqa", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Answer a question about images with a BLIP-2 captioning model.",
                "The question goes into the prompt template BLIP-2 users know: 'Question: {} Answer:' for OPT, "
                        + "'Question: {} Short answer:' for Flan-T5 (--template to change it).",
                "",
                "Example: blip2 vqa --model blip2-flan-t5-xl.b2z --question 'what is the man holding?' photo.jpg"})
final class VqaCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOption model;

    @Mixin
    ResidentOption resident;

    @Mixin
    ImageArguments images;

    @Option(names = {"-q", "--question"}, required = true, paramLabel = "TEXT", description = "The question.")
    String question;

    @Option(names = "--template", paramLabel = "TEXT",
            description = "Prompt template with {} where the question goes, e.g. 'Q: {} A:'; any other text, a %% included, is kept as it is.")
    String template;

    @Mixin
    GenerationOptions generation;

    @Mixin
    CaptionOutputOptions output;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        if (question.isBlank()) {
            throw new ParameterException(spec.commandLine(), "--question is empty");
        }
        PromptTemplate given = template != null ? new PromptTemplate(template) : null;
        try (Blip2 blip2 = model.load().residentLanguageModel(resident.on)) {
            blip2.exifTranspose(!images.noExif).maxImagePixels(images.maxPixels);
            return CaptionRun.run(blip2, images.files(),
                    b -> given != null ? given.fill(question.trim()) : b.questionPrompt(question),
                    generation.apply(blip2.generationDefaults()), output.batchSize, output.json,
                    spec.commandLine().getOut(), spec.commandLine().getErr());
        }
    }
}
