package dev.blip2dl4j.spark;

import org.apache.hadoop.conf.Configuration;

import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;

/**
 * The driver's Hadoop settings (credentials, file system implementations, {@code spark.hadoop.*}) carried to the
 * tasks: Hadoop's {@link Configuration} is not serializable, its entries are.
 */
public final class HadoopSettings implements Serializable {
    private final HashMap<String, String> entries;
    private transient Configuration configuration;

    private HadoopSettings(HashMap<String, String> entries) {
        this.entries = entries;
    }

    public static HadoopSettings of(Configuration configuration) {
        HashMap<String, String> entries = new HashMap<>();
        for (Map.Entry<String, String> e : configuration) {
            entries.put(e.getKey(), e.getValue());
        }
        return new HadoopSettings(entries);
    }

    public synchronized Configuration configuration() {
        if (configuration == null) {
            Configuration c = new Configuration(false);
            entries.forEach(c::set);
            configuration = c;
        }
        return configuration;
    }
}
