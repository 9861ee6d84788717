package dev.blip2dl4j.spark;

import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class SparkSmokeTest {
    @Test
    void localSessionRuns() {
        try (SparkSession spark = SparkSession.builder().master("local[2]").appName("smoke").getOrCreate()) {
            assertEquals(10, spark.range(10).count());
        }
    }
}
