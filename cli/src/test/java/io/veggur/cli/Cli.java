package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs the packaged {@code veggur} jar as a separate process, exactly as a user's shell would. */
final class Cli {
    record Result(int exitCode, String stdout, String stderr) {}

    private static final Path JAR = Path.of("target", "veggur.jar").toAbsolutePath();

    private Cli() {}

    static Result run(Path home, String... args) throws IOException, InterruptedException {
        return run(home, Map.of(), args);
    }

    /** Runs a command that must succeed silently on stderr and print JSON, with its own profile cache. */
    static JsonNode json(Path home, Path cache, String... args) throws IOException, InterruptedException {
        Result result = run(home, Map.of("VEGGUR_CACHE", cache.toString()), args);
        assertThat(result.exitCode()).as(result.stderr()).isZero();
        assertThat(result.stderr()).as("no warnings").isEmpty();
        return Json.MAPPER.readTree(result.stdout());
    }

    /** Starts the CLI and returns at once, for commands whose output a test follows as it comes. */
    static Process start(Path home, String... args) throws IOException {
        return startIn(null, home, Map.of(), args);
    }

    /** {@link #start} in network namespace {@code netns} (null: the test's own), with more environment variables. */
    static Process startIn(String netns, Path home, Map<String, String> environment, String... args) throws IOException {
        ProcessBuilder builder = new ProcessBuilder(command(netns, args));
        builder.environment().put("VEGGUR_HOME", home.toString());
        builder.environment().putAll(environment);
        return builder.start();
    }

    private static List<String> command(String netns, String... args) {
        if (!Files.isRegularFile(JAR)) {
            throw new IllegalStateException("the CLI jar is not built at " + JAR + "; run through mvn verify");
        }
        List<String> command = new ArrayList<>();
        if (netns != null) {
            command.addAll(List.of("ip", "netns", "exec", netns));
        }
        command.addAll(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-jar", JAR.toString()));
        command.addAll(List.of(args));
        return command;
    }

    static Result run(Path home, Map<String, String> environment, String... args) throws IOException, InterruptedException {
        return runIn(null, home, environment, args);
    }

    /** {@link #run} in network namespace {@code netns} (null: the test's own). */
    static Result runIn(String netns, Path home, Map<String, String> environment, String... args)
            throws IOException, InterruptedException {
        List<String> command = command(netns, args);
        Path out = Files.createTempFile("veggur-cli-", ".out");
        Path err = Files.createTempFile("veggur-cli-", ".err");
        try {
            ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile());
            builder.environment().put("VEGGUR_HOME", home.toString());
            builder.environment().putAll(environment);
            Process process = builder.start();
            if (!process.waitFor(180, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new AssertionError("veggur " + String.join(" ", args) + " did not finish within 180 s");
            }
            return new Result(process.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }
}
