package dev.blip2dl4j.finetune.data;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.text.PromptTemplate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The three data formats, image paths, and rows that cannot be used. */
class VqaDatasetTest {
    @TempDir
    Path dir;

    private Path image(String relative) throws IOException {
        Path p = dir.resolve(relative);
        Files.createDirectories(p.getParent());
        Files.write(p, new byte[]{1});
        return p;
    }

    private Path file(String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.writeString(p, content);
        return p;
    }

    @Test
    void jsonlImagesAreRelativeToTheFileOrTheImageRoot() throws IOException {
        Path a = image("data/img/a.png");
        Path b = image("elsewhere/b.png");
        Path data = file("data/train.jsonl", """
                {"image": "img/a.png", "question": "What color?", "answer": "red"}

                {"image": "%s", "question": "How many?", "answers": ["two", "2", "two"], "question_id": 7}
                """.formatted(b));
        VqaDataset read = VqaDataset.read(VqaSource.of(data), BadRowPolicy.FAIL);
        assertEquals(2, read.examples().size());
        VqaExample first = read.examples().get(0);
        assertEquals(a, first.image());
        assertEquals("red", first.answer());
        assertEquals(List.of("red"), first.answers());
        assertEquals("line 1", first.id());
        VqaExample second = read.examples().get(1);
        assertEquals(b, second.image(), "an absolute path stays as it is");
        assertEquals("two", second.answer(), "the most frequent human answer is trained on");
        assertEquals(List.of("two", "2", "two"), second.answers());
        assertEquals("7", second.id());
        assertEquals("line 3", second.position());
        assertEquals(1, read.files().size());
        assertEquals(64, read.files().get(0).sha256().length());

        Path rooted = file("data/rooted.jsonl", "{\"image\": \"b.png\", \"question\": \"q\", \"answer\": \"x\"}\n");
        VqaDataset withRoot = VqaDataset.read(new VqaSource(rooted, null, dir.resolve("elsewhere")), BadRowPolicy.FAIL);
        assertEquals(b, withRoot.examples().get(0).image());
    }

    @Test
    void aBadRowStopsTheReadWithItsFileAndLine() throws IOException {
        image("a.png");
        Path data = file("bad.jsonl", """
                {"image": "a.png", "question": "q", "answer": "yes"}
                {"image": "missing.png", "question": "q", "answer": "yes"}
                """);
        BadInputException e = assertThrows(BadInputException.class,
                () -> VqaDataset.read(VqaSource.of(data), BadRowPolicy.FAIL));
        assertTrue(e.getMessage().contains(data.toString()) && e.getMessage().contains("line 2")
                && e.getMessage().contains("not found"), e.getMessage());
        assertTrue(e.getMessage().contains("--on-bad-row skip"), e.getMessage());
    }

    @Test
    void skippedRowsAreCountedWithWhatWasWrong() throws IOException {
        image("a.png");
        Path data = file("mixed.jsonl", """
                {"image": "a.png", "question": "q", "answer": "yes"}
                {"image": "missing.png", "question": "q", "answer": "yes"}
                {"image": "a.png", "question": "q", "answer": "  "}
                not json
                {"image": "a.png", "answer": "no"}
                ["a list"]
                {"question": "q", "answer": "no"}
                {"image": "a.png", "question": "q2", "answers": ["", "no"]}
                """);
        VqaDataset read = VqaDataset.read(VqaSource.of(data), BadRowPolicy.SKIP);
        assertEquals(2, read.examples().size());
        assertEquals("no", read.examples().get(1).answer(), "empty human answers are dropped");
        List<String> skipped = read.skipped().stream().map(BadRow::toString).toList();
        assertEquals(6, skipped.size(), skipped.toString());
        assertTrue(skipped.get(0).endsWith("line 2: image " + dir.resolve("missing.png") + " not found"), skipped.get(0));
        assertTrue(skipped.get(1).endsWith("line 3: empty answer"), skipped.get(1));
        assertTrue(skipped.get(2).contains("line 4: not JSON"), skipped.get(2));
        assertTrue(skipped.get(3).endsWith("line 5: no question"), skipped.get(3));
        assertTrue(skipped.get(4).endsWith("line 6: not a JSON object"), skipped.get(4));
        assertTrue(skipped.get(5).endsWith("line 7: no \"image\""), skipped.get(5));
        assertTrue(skipped.stream().allMatch(s -> s.startsWith(data.toString())), skipped.toString());
    }

    @Test
    void anEmptyQuestionIsACaptionRowWithNoPrompt() throws IOException {
        image("a.png");
        Path data = file("captions.jsonl", """
                {"image": "a.png", "question": "", "answer": "a dog on a beach"}
                {"image": "a.png", "question": "   ", "answer": "a dog"}
                """);
        VqaDataset read = VqaDataset.read(VqaSource.of(data), BadRowPolicy.SKIP);
        assertEquals(1, read.examples().size());
        assertEquals("a dog on a beach", read.examples().get(0).answer());
        assertTrue(read.skipped().get(0).toString().endsWith("line 2: no question"), "only \"\" is a caption row");
        VqaPrompt prompt = new VqaPrompt(new PromptTemplate("Question: {} Answer:"), new QuestionCleaner(50));
        assertEquals("", prompt.format(read.examples().get(0).question()));
        assertEquals("Question: why? Answer:", prompt.format("why?"));
    }

    @Test
    void aCompleteSparkOutputFolderIsReadPartByPart() throws IOException {
        Path a = image("a.png");
        file("out.jsonl/part-00001-x-c000.json", "{\"image\": \"a.png\", \"question\": \"\", \"answer\": \"second\"}\n");
        file("out.jsonl/part-00000-x-c000.json", "{\"image\": \"%s\", \"question\": \"\", \"answer\": \"first\"}\n".formatted(a));
        file("out.jsonl/._SUCCESS.crc", "");
        Path folder = dir.resolve("out.jsonl");
        BadInputException incomplete = assertThrows(BadInputException.class,
                () -> VqaDataset.read(VqaSource.of(folder), BadRowPolicy.FAIL));
        assertTrue(incomplete.getMessage().contains("_SUCCESS"), incomplete.getMessage());

        file("out.jsonl/_SUCCESS", "");
        VqaDataset read = VqaDataset.read(VqaSource.of(folder), BadRowPolicy.FAIL);
        assertEquals(List.of("first", "second"), read.examples().stream().map(VqaExample::answer).toList());
        assertEquals(a, read.examples().get(1).image(), "relative to the folder's folder, as for a file");
        assertEquals(2, read.files().size());
    }

    @Test
    void nothingUsableIsAnError() throws IOException {
        Path data = file("none.jsonl", "{\"image\": \"missing.png\", \"question\": \"q\", \"answer\": \"a\"}\n");
        BadInputException e = assertThrows(BadInputException.class,
                () -> VqaDataset.read(VqaSource.of(data), BadRowPolicy.SKIP));
        assertTrue(e.getMessage().contains("no usable question") && e.getMessage().contains("line 1"), e.getMessage());
        assertThrows(BadInputException.class, () -> VqaDataset.read(VqaSource.of(dir.resolve("absent.jsonl")),
                BadRowPolicy.FAIL));
    }

    @Test
    void lavisJsonIsAListWithHumanAnswers() throws IOException {
        Path img = image("val2014/COCO_val2014_000000000042.jpg");
        Path data = file("vqa_val.json", """
                [{"question_id": 42001, "question": "What is on the plate?", "answer": ["pizza", "pizza", "food"],
                  "image": "val2014/COCO_val2014_000000000042.jpg", "dataset": "vqa"},
                 {"question_id": 42002, "question": "Is it hot?", "answer": "yes",
                  "image": "val2014/COCO_val2014_000000000042.jpg"},
                 {"question_id": 42003, "question": "Is it cold?", "answer": [],
                  "image": "val2014/COCO_val2014_000000000042.jpg"}]
                """);
        VqaDataset read = VqaDataset.read(VqaSource.of(data), BadRowPolicy.SKIP);
        assertEquals(2, read.examples().size());
        assertEquals(img, read.examples().get(0).image());
        assertEquals("pizza", read.examples().get(0).answer());
        assertEquals(List.of("pizza", "pizza", "food"), read.examples().get(0).answers());
        assertEquals("42001", read.examples().get(0).id());
        assertEquals("yes", read.examples().get(1).answer());
        assertEquals(List.of("entry 3: empty answer"),
                read.skipped().stream().map(r -> r.position() + ": " + r.problem()).toList());
        assertEquals(read.examples(), VqaDataset.read(VqaSource.of(data), VqaFormat.LAVIS, BadRowPolicy.SKIP).examples());
    }

    @Test
    void vqav2QuestionsWithTheirAnnotations() throws IOException {
        Path nested = image("images/val2014/COCO_val2014_000000000009.jpg");
        Path direct = image("images/COCO_val2014_000000000010.jpg");
        Path questions = file("v2_OpenEnded_mscoco_val2014_questions.json", """
                {"data_subtype": "val2014", "task_type": "Open-Ended", "questions": [
                  {"image_id": 9, "question": "How many dogs?", "question_id": 9000},
                  {"image_id": 10, "question": "What sport?", "question_id": 10000},
                  {"image_id": 10, "question": "Unannotated?", "question_id": 10001}]}
                """);
        Path annotations = file("v2_mscoco_val2014_annotations.json", """
                {"annotations": [
                  {"question_id": 9000, "image_id": 9, "multiple_choice_answer": "2",
                   "answers": [{"answer": "2", "answer_id": 1}, {"answer": "two", "answer_id": 2}, {"answer": "2", "answer_id": 3}]},
                  {"question_id": 10000, "image_id": 10, "multiple_choice_answer": "tennis",
                   "answers": [{"answer": "tennis", "answer_id": 1}]}]}
                """);
        VqaDataset read = VqaDataset.read(new VqaSource(questions, annotations, dir.resolve("images")), BadRowPolicy.SKIP);
        assertEquals(2, read.examples().size());
        assertEquals(nested, read.examples().get(0).image(), "found in the image root's subtype folder");
        assertEquals(direct, read.examples().get(1).image());
        assertEquals("2", read.examples().get(0).answer());
        assertEquals(List.of("2", "two", "2"), read.examples().get(0).answers());
        assertEquals("9000", read.examples().get(0).id());
        assertEquals("question_id 10001", read.skipped().get(0).position());
        assertEquals(2, read.files().size(), "both files are recorded");

        BadInputException withoutAnnotations = assertThrows(BadInputException.class,
                () -> VqaDataset.read(VqaSource.of(questions), BadRowPolicy.FAIL));
        assertTrue(withoutAnnotations.getMessage().contains("annotations"), withoutAnnotations.getMessage());
        assertThrows(BadInputException.class, () -> VqaDataset.read(VqaSource.of(questions), VqaFormat.VQAV2, BadRowPolicy.FAIL));
    }

    @Test
    void aSplitHoldsOutWholeImagesTheSameWayForTheSameSeed() {
        List<VqaExample> examples = new java.util.ArrayList<>();
        for (int i = 0; i < 20; i++) {
            for (int q = 0; q < 2; q++) {
                examples.add(new VqaExample(Path.of("img" + i + ".png"), "q" + q, "a", List.of("a"), i + "/" + q,
                        Path.of("d.jsonl"), "line " + (2 * i + q + 1)));
            }
        }
        DataSplit split = DataSplit.of(examples, 0.25, 7);
        assertEquals(10, split.validation().size(), "5 of 20 images, both questions of each");
        assertEquals(30, split.train().size());
        assertTrue(split.validation().stream().noneMatch(v -> split.train().stream().anyMatch(t -> t.image().equals(v.image()))));
        assertEquals(split, DataSplit.of(examples, 0.25, 7));
        assertTrue(!split.equals(DataSplit.of(examples, 0.25, 8)));
        assertThrows(IllegalArgumentException.class, () -> DataSplit.of(examples, 1.0, 7));
    }
}
