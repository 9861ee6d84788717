package dev.blip2dl4j.cli;

import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.time.Duration;

/**
 * The command line's progress bars, on stderr: redrawn in place on a terminal; in a log, a line every ten
 * seconds for transfers, nothing for counts of questions (their command prints its result anyway).
 */
final class ProgressBars {
    private ProgressBars() {
    }

    /** A bar over {@code total} bytes shown in MB (-1: unknown, an indefinite bar), starting at {@code done}. */
    static ProgressBar megabytes(String task, long total, long done) {
        ProgressBarBuilder builder = new ProgressBarBuilder().setTaskName(task).setInitialMax(total)
                .setStyle(ProgressBarStyle.ASCII).setUnit(" MB", 1_000_000).showSpeed().setMaxRenderedLength(100)
                .startsFrom(done, Duration.ZERO);
        if (System.console() == null) {
            builder.setConsumer(new DelegatingProgressBarConsumer(System.err::println)).setUpdateIntervalMillis(10_000);
        } else {
            builder.setUpdateIntervalMillis(500).continuousUpdate();
        }
        return builder.build();
    }

    /** A bar over {@code total} questions, shown only on a terminal. */
    static ProgressBar questions(String task, int total) {
        ProgressBarBuilder builder = new ProgressBarBuilder().setTaskName(task).setInitialMax(total)
                .setStyle(ProgressBarStyle.ASCII).setUnit(" questions", 1).setMaxRenderedLength(100);
        if (System.console() == null) {
            builder.setConsumer(new DelegatingProgressBarConsumer(line -> { }));
        } else {
            builder.setUpdateIntervalMillis(500).continuousUpdate();
        }
        return builder.build();
    }
}
