package io.veggur.bench;

import io.veggur.agent.Agent;
import io.veggur.agent.client.AgentClient;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * What the agent-driven benchmark harnesses (EnvironmentBenchmark, ActiveBenchmark, FlavorBenchmark) share: facts
 * about the machine for their reports, their settings from the environment, medians, commands run in an environment,
 * and the tear-down of their throw-away Veggur home.
 */
final class BenchHost {
    private BenchHost() {}

    /** What a command run in an environment wrote, and how it ended. */
    record EnvRun(int exitCode, boolean timedOut, boolean truncated, String stdout, String stderr) {
        /** Its stdout, or an exception if it did not exit 0. */
        String stdoutIfOk(List<String> argv) throws IOException {
            if (exitCode != 0 || timedOut) {
                throw new IOException(String.join(" ", argv) + ": exit " + exitCode + (timedOut ? " (timed out)" : "")
                        + ": " + tail(stderr));
            }
            return stdout;
        }
    }

    /** The end of a tool's error output, for an exception message. */
    static String tail(String text) {
        String stripped = text.strip();
        return stripped.length() <= 600 ? stripped : "..." + stripped.substring(stripped.length() - 600);
    }

    /** Runs argv in the tenant's environment for the VM at vmPath through the API, its output kept. */
    static EnvRun exec(AgentClient tenant, String vmPath, List<String> argv, long timeoutSeconds) throws IOException {
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        AgentClient.ExecEnded ended = tenant.exec(vmPath, argv, timeoutSeconds, stdout, stderr);
        return new EnvRun(ended.exitCode(), ended.timedOut(), ended.truncated(), stdout.toString(StandardCharsets.UTF_8),
                stderr.toString(StandardCharsets.UTF_8));
    }

    interface Step {
        void run() throws Exception;
    }

    /** The middle value, or the mean of the two middle ones. */
    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    static double median(long[] values) {
        return median(Arrays.stream(values).asDoubleStream().toArray());
    }

    static String cpuModel() throws IOException {
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("model name")).findFirst().map(l -> l.substring(l.indexOf(':') + 1).strip())
                    .orElse("unknown CPU");
        }
    }

    static String loadAverage() throws IOException {
        String[] fields = Files.readString(Path.of("/proc/loadavg")).split(" ");
        return fields[0] + " " + fields[1] + " " + fields[2];
    }

    /** The first line a command prints, or "unknown" if it fails. */
    static String firstLine(String... command) {
        try {
            Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            return process.waitFor() == 0 && !out.isEmpty() ? out.lines().findFirst().orElse("unknown") : "unknown";
        } catch (IOException e) {
            return "unknown";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "unknown";
        }
    }

    static String qemuVersion() {
        return firstLine("qemu-system-x86_64", "--version");
    }

    static String dockerVersion(String dockerHost) {
        return firstLine("docker", "--host", dockerHost, "version", "--format", "{{.Server.Version}}");
    }

    /** A setting the harness's script exports. */
    static String required(String variable, String script) {
        String value = System.getenv(variable);
        if (value == null || value.isBlank()) {
            throw new IllegalStateException(variable + " is not set (" + script + " sets it)");
        }
        return value;
    }

    /** Runs a clean-up step; a failure is reported and the next step still runs. */
    static void attempt(Consumer<String> log, String what, Step step) {
        try {
            step.run();
        } catch (Exception e) {
            log.accept("clean-up: could not " + what + ": " + e);
        }
    }

    /**
     * Idempotent tear-down: the tenant's environment and VM through the API (the VM's DELETE stops it and removes its
     * RAM file), then the agent, which leaves VMs running when it stops, so a VM the API could not delete is stopped
     * directly; last the home. {@code tenant} and {@code agent} may be null (set-up failed before them).
     */
    static void tearDown(AgentClient tenant, String vmPath, Agent agent, Path home, Consumer<String> log) {
        if (tenant != null) {
            attempt(log, "delete the environment", () -> {
                if (!tenant.get("/v1/environments").isEmpty()) {
                    tenant.delete(vmPath + "/environment");
                }
            });
            attempt(log, "delete the VM", () -> tenant.delete(vmPath));
        }
        if (agent != null) {
            attempt(log, "stop the agent", agent::close);
        }
        attempt(log, "stop leftover VMs", () -> {
            VmManager vms = new VmManager(new VeggurHome(home));
            for (VmInfo vm : vms.list()) {
                vms.stop(vm.name());
            }
        });
        attempt(log, "remove " + home, () -> {
            try (Stream<Path> paths = Files.walk(home)) {
                for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        });
    }
}
