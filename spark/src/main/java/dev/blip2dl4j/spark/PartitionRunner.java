package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.image.DecodedImage;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * One partition through a stage: rows read {@code batchSize} at a time (never the whole partition in memory),
 * their images decoded, the good ones answered in one batch by the executor's model, and the rows given back
 * in their order with the outputs and the error column appended.
 */
final class PartitionRunner implements MapPartitionsFunction<Row, Row> {
    private final ModelReference model;
    private final HadoopSettings hadoop;
    private final ImageInput images;
    private final BatchTask task;
    private final int outputs;
    private final int batchSize;

    PartitionRunner(ModelReference model, HadoopSettings hadoop, ImageInput images, BatchTask task, int outputs,
                    int batchSize) {
        this.model = model;
        this.hadoop = hadoop;
        this.images = images;
        this.task = task;
        this.outputs = outputs;
        this.batchSize = batchSize;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
        int partition = TaskContext.getPartitionId();
        Configuration conf = hadoop.configuration();
        return new Iterator<>() {
            private final ArrayDeque<Row> ready = new ArrayDeque<>();
            private long position;

            @Override
            public boolean hasNext() {
                if (ready.isEmpty() && rows.hasNext()) {
                    List<Row> batch = new ArrayList<>();
                    while (batch.size() < batchSize && rows.hasNext()) {
                        batch.add(rows.next());
                    }
                    ready.addAll(answer(batch, position, partition, conf));
                    position += batch.size();
                }
                return !ready.isEmpty();
            }

            @Override
            public Row next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                return ready.poll();
            }
        };
    }

    private List<Row> answer(List<Row> batch, long first, int partition, Configuration conf) {
        int n = batch.size();
        String[] names = new String[n];
        String[] errors = new String[n];
        Object[][] values = new Object[n][];
        List<Integer> good = new ArrayList<>();
        List<DecodedImage> decoded = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            names[i] = images.name(batch.get(i), first + i, partition);
            try {
                decoded.add(images.read(batch.get(i), conf));
                good.add(i);
            } catch (BadInputException e) {
                errors[i] = names[i] + ": " + e.getMessage();
            }
        }
        if (!good.isEmpty()) {
            List<Row> goodRows = good.stream().map(batch::get).toList();
            ExecutorModels.use(model, hadoop, blip2 -> {
                try {
                    fill(values, good, task.run(blip2, decoded, goodRows));
                } catch (RuntimeException batchFailed) {
                    // one row's fault fails the batch: answer them one by one to find it
                    for (int j = 0; j < good.size(); j++) {
                        int i = good.get(j);
                        try {
                            values[i] = task.run(blip2, List.of(decoded.get(j)), List.of(goodRows.get(j))).get(0);
                        } catch (RuntimeException e) {
                            errors[i] = names[i] + ": " + describe(e);
                        }
                    }
                }
                return null;
            });
        }
        List<Row> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            Row row = batch.get(i);
            Object[] fields = new Object[row.length() + outputs + 1];
            for (int c = 0; c < row.length(); c++) {
                fields[c] = row.get(c);
            }
            if (values[i] != null) {
                System.arraycopy(values[i], 0, fields, row.length(), outputs);
            }
            fields[fields.length - 1] = errors[i];
            out.add(RowFactory.create(fields));
        }
        return out;
    }

    private static void fill(Object[][] values, List<Integer> good, List<Object[]> answered) {
        for (int j = 0; j < good.size(); j++) {
            values[good.get(j)] = answered.get(j);
        }
    }

    private static String describe(RuntimeException e) {
        if (e instanceof BadInputException) {
            return e.getMessage();
        }
        return e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
    }
}
