package dev.blip2dl4j.spark;

import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.image.DecodedImage;
import org.apache.spark.sql.Row;

import java.io.Serializable;
import java.util.List;

/** What a stage asks of the model for a batch of rows, shipped to the tasks with the stage's settings. */
public interface BatchTask extends Serializable {
    /**
     * The output values of each row, in the order of the stage's output columns. A row that cannot be answered
     * (a null text, a prompt too long) throws a {@link dev.blip2dl4j.BadInputException}: the batch is then
     * answered row by row, so that only that row gets the error.
     */
    List<Object[]> run(Blip2 model, List<DecodedImage> images, List<Row> rows);
}
