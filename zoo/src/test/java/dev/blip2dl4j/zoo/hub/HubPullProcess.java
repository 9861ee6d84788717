package dev.blip2dl4j.zoo.hub;

import java.net.URI;
import java.nio.file.Path;
import java.util.Map;

/**
 * One pull in a process of its own, for the tests of pulls in several processes: {@code CATALOGUE CACHE_DIR
 * ENDPOINT NAME}. Prints the artifact's path, and the pull's messages on stderr; exit code 1 and the message
 * on failure.
 */
public final class HubPullProcess {
    private HubPullProcess() {
    }

    public static void main(String[] args) {
        try {
            Hub hub = new Hub(Catalogue.read(Path.of(args[0])), HubSettings.fromEnvironment(Map.of(), args[1])
                    .withCacheDir(Path.of(args[1])).withEndpoint(URI.create(args[2])).withPolicy(LoopbackHub.quickPolicy()));
            System.out.println(hub.pull(args[3], new PullListener() {
                @Override
                public void message(String text) {
                    System.err.println(text);
                }
            }));
        } catch (RuntimeException e) {
            System.err.println(e.getMessage());
            System.exit(1);
        }
    }
}
