package dev.blip2dl4j.cli;

import dev.blip2dl4j.finetune.Finetuner;
import me.tongfei.progressbar.ProgressBar;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;

/**
 * {@code blip2 finetune}'s progress line on stderr: step, loss, learning rate, steps per second and the time
 * left. On a terminal it is redrawn in place at every step; in a log it is a line every ten seconds (and the
 * first and last step), so that a long run's log stays readable. Validation shows a bar of the questions
 * answered on a terminal ({@link ProgressBars#questions}); its result and checkpoints get lines of their own.
 */
final class TrainingProgress implements Finetuner.Listener {
    private static final long LOG_INTERVAL_NANOS = 10_000_000_000L;

    private final PrintWriter err;
    private final boolean terminal = System.console() != null;
    private int firstStep;
    private long started;
    private long lastPrinted;
    private boolean lineOpen;
    private ProgressBar validation;

    TrainingProgress(PrintWriter err) {
        this.err = err;
    }

    @Override
    public void started(int firstStep, int totalSteps) {
        this.firstStep = firstStep;
        started = System.nanoTime();
        err.printf("training: %d optimizer steps%s%n", totalSteps, firstStep > 0 ? ", resuming after step " + firstStep : "");
        err.flush();
    }

    @Override
    public void stepped(Finetuner.StepRecord s) {
        long now = System.nanoTime();
        boolean last = s.step() == s.totalSteps();
        if (!terminal && !last && s.step() != firstStep + 1 && now - lastPrinted < LOG_INTERVAL_NANOS) {
            return;
        }
        lastPrinted = now;
        double seconds = (now - started) / 1e9;
        double rate = (s.step() - firstStep) / Math.max(seconds, 1e-9);
        String line = String.format(Locale.ROOT, "step %d/%d  epoch %d  loss %.4f  lr %.2e  %.2f it/s  ETA %s",
                s.step(), s.totalSteps(), s.epoch() + 1, s.loss(), s.learningRate(), rate,
                duration((s.totalSteps() - s.step()) / rate));
        if (terminal) {
            err.print("\r" + line + "   ");
            lineOpen = !last;
            if (last) {
                err.println();
            }
        } else {
            err.println(line);
        }
        err.flush();
    }

    @Override
    public void validating(int examples) {
        endLine();
        err.flush();
        validation = ProgressBars.questions("validating", examples);
    }

    @Override
    public void answered(int done) {
        validation.stepTo(done);
    }

    @Override
    public void validated(Finetuner.ValidationRecord v) {
        validation.close();
        err.printf(Locale.ROOT, "validation at step %d: loss %.4f, VQA accuracy %.1f%%, exact match %.1f%%%n", v.step(),
                v.loss(), 100 * v.evaluation().accuracy(), 100 * v.evaluation().exactMatch());
        err.flush();
    }

    @Override
    public void checkpointed(Path file, int step) {
        if (!terminal) {
            err.printf("checkpoint at step %d: %s%n", step, file);
            err.flush();
        }
    }

    @Override
    public void warned(String message) {
        endLine();
        err.println("warning: " + message);
        err.flush();
    }

    private void endLine() {
        if (lineOpen) {
            err.println();
            lineOpen = false;
        }
    }

    /** "1h02m", "3m05s", "12s". */
    static String duration(double seconds) {
        long s = Math.round(seconds);
        if (s >= 3600) {
            return String.format(Locale.ROOT, "%dh%02dm", s / 3600, s % 3600 / 60);
        }
        return s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60) : s + "s";
    }
}
