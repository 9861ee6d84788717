package dev.blip2dl4j.spark;

import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;

import java.io.IOException;
import java.net.URI;
import java.util.concurrent.atomic.AtomicInteger;

/** Local files under the {@code counting:} scheme: a "remote" file system for the tests, counting what is opened. */
public class CountingFileSystem extends RawLocalFileSystem {
    static final AtomicInteger OPENS = new AtomicInteger();

    static void register(org.apache.hadoop.conf.Configuration conf) {
        conf.set("fs.counting.impl", CountingFileSystem.class.getName());
        conf.setBoolean("fs.counting.impl.disable.cache", true);
    }

    @Override
    public URI getUri() {
        return URI.create("counting:///");
    }

    @Override
    public String getScheme() {
        return "counting";
    }

    @Override
    public FSDataInputStream open(Path f, int bufferSize) throws IOException {
        OPENS.incrementAndGet();
        return super.open(f, bufferSize);
    }
}
