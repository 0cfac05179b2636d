package io.veggur.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A network namespace joined to the host by a veth pair, standing for a client machine (the idea of the CLI tests'
 * TestNetns, with the benchmarks' own names and subnet so the two never collide): the host end has
 * {@code PREFIX.1/24}, the namespace {@code PREFIX.2/24} and its own loopback. Needs root and iproute2. Closing
 * removes both (deleting the namespace deletes its end of the pair, which deletes the host end).
 */
final class BenchNetns implements AutoCloseable {
    final String name;
    final String hostAddress;
    final String clientAddress;

    private BenchNetns(String name, String prefix) {
        this.name = name;
        this.hostAddress = prefix + ".1";
        this.clientAddress = prefix + ".2";
    }

    /** {@code name}: at most 11 characters (it also names the veth ends); an earlier run's leftovers are removed. */
    static BenchNetns create(String name, String prefix) throws IOException, InterruptedException {
        BenchNetns netns = new BenchNetns(name, prefix);
        ip(true, "netns", "del", name);
        ip(true, "link", "del", name + "-h");
        try {
            ip(false, "netns", "add", name);
            ip(false, "link", "add", name + "-h", "type", "veth", "peer", "name", name + "-c");
            ip(false, "link", "set", name + "-c", "netns", name);
            ip(false, "addr", "add", netns.hostAddress + "/24", "dev", name + "-h");
            ip(false, "link", "set", name + "-h", "up");
            ip(false, "-n", name, "addr", "add", netns.clientAddress + "/24", "dev", name + "-c");
            ip(false, "-n", name, "link", "set", name + "-c", "up");
            ip(false, "-n", name, "link", "set", "lo", "up");
        } catch (IOException | InterruptedException e) {
            netns.close();
            throw e;
        }
        return netns;
    }

    /** The command, run inside the namespace. */
    List<String> exec(List<String> command) {
        List<String> wrapped = new ArrayList<>(List.of("ip", "netns", "exec", name));
        wrapped.addAll(command);
        return wrapped;
    }

    @Override
    public void close() throws IOException, InterruptedException {
        ip(true, "netns", "del", name);
        ip(true, "link", "del", name + "-h");
    }

    private static void ip(boolean mayFail, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("ip"));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IOException(String.join(" ", command) + " did not finish");
        }
        if (process.exitValue() != 0 && !mayFail) {
            throw new IOException(String.join(" ", command) + " failed: " + output.strip());
        }
    }
}
