package io.veggur.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The private dockerd, the tools image and the monitoring VM image built from this build's CLI jar, through the project's own scripts
 * (container/dockerd.sh installs docker.io as root if missing). Started once per test JVM and left running, as a host
 * keeps its dockerd; an image build is skipped when the jar is unchanged.
 */
final class TestDocker {
    record Setup(String dockerHost, String image) {}

    private static final Path REPO = Path.of("").toAbsolutePath().getParent();
    private static Setup setup;
    private static Path monitorImage;

    private TestDocker() {}

    static synchronized Setup get() throws IOException, InterruptedException {
        if (setup == null) {
            String host = lastLine(List.of(REPO.resolve("container/dockerd.sh").toString(), "start"));
            String image = lastLine(List.of(REPO.resolve("container/build-image.sh").toString(),
                    Path.of("target", "veggur.jar").toAbsolutePath().toString()));
            setup = new Setup(host, image);
        }
        return setup;
    }

    /** The monitoring VM image (monitor/build-image.sh) built from this build's CLI jar, once per test JVM. */
    static synchronized Path monitorImage() throws IOException, InterruptedException {
        if (monitorImage == null) {
            monitorImage = Path.of(lastLine(List.of(REPO.resolve("monitor/build-image.sh").toString(),
                    Path.of("target", "veggur.jar").toAbsolutePath().toString())));
        }
        return monitorImage;
    }

    static String docker(String... args) throws IOException, InterruptedException {
        List<String> command = new java.util.ArrayList<>(List.of("/usr/bin/docker", "-H", get().dockerHost()));
        command.addAll(List.of(args));
        return run(command);
    }

    private static String lastLine(List<String> command) throws IOException, InterruptedException {
        List<String> lines = run(command).lines().toList();
        if (lines.isEmpty()) {
            throw new IOException(command + " printed nothing");
        }
        return lines.getLast().trim();
    }

    private static String run(List<String> command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        byte[] out = process.getInputStream().readAllBytes();
        if (!process.waitFor(600, TimeUnit.SECONDS) || process.exitValue() != 0) {
            process.destroyForcibly();
            throw new IOException(command + " failed (exit " + (process.isAlive() ? "timeout" : process.exitValue()) + ")");
        }
        return new String(out, StandardCharsets.UTF_8);
    }
}
