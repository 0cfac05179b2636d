package io.veggur.bench;

import static io.veggur.bench.BenchHost.cpuModel;
import static io.veggur.bench.BenchHost.dockerVersion;
import static io.veggur.bench.BenchHost.loadAverage;
import static io.veggur.bench.BenchHost.median;
import static io.veggur.bench.BenchHost.required;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.veggur.agent.Agent;
import io.veggur.agent.client.AgentClient;
import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

/**
 * The container flavor measured end to end (issue 4), through an in-process agent in a throw-away home:
 * <ol>
 *   <li>deployment, "from request to the VMI tool connected inside the container": PUT environment, then
 *       {@code veggur vmi info} run in it through the API, timed together, a fresh environment each round;</li>
 *   <li>{@code veggur vmi bench} (process lists, caches flushed) inside the container and natively on the host, run
 *       alternately, so both see the same machine noise; the figure is the ratio of their medians.</li>
 * </ol>
 * Usage: {@code EnvironmentBenchmark CLI_JAR [DEPLOY_ROUNDS=10 [LIST_ROUNDS=5]]}, with VEGGUR_DOCKER_HOST,
 * VEGGUR_IMAGE and VEGGUR_GUEST_DIR set (bench/environments.sh does all of it). Progress goes to stderr, the
 * markdown report to stdout.
 */
public final class EnvironmentBenchmark {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String NAME = "bench";
    private static final String VM = AgentClient.vmPath(NAME, NAME);
    private static final int LISTS = 5000;
    private static final int EXEC_TIMEOUT_SECONDS = 300;

    /**
     * The image launcher's JVM flags (container/image/veggur) minus its paths. CDS is off on both sides: the image's
     * static archive is trained on the image's own JRE and paths and cannot be mapped by the host JDK, and the jlinked
     * JRE has no default archive, so -Xshare:off makes the host JVM match it. CDS only changes start-up anyway; the
     * medians are of lists after a warm-up.
     */
    private static final List<String> JVM_FLAGS = List.of("--enable-native-access=ALL-UNNAMED",
            "--sun-misc-unsafe-memory-access=allow", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData",
            "-Xshare:off");

    private final Path home;
    private final Path cliJar;
    private Agent agent;
    private AgentClient tenant;
    private final AtomicBoolean cleaned = new AtomicBoolean();

    private EnvironmentBenchmark(Path home, Path cliJar) {
        this.home = home;
        this.cliJar = cliJar;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || !Files.isRegularFile(Path.of(args[0]))) {
            System.err.println("usage: EnvironmentBenchmark CLI_JAR [DEPLOY_ROUNDS [LIST_ROUNDS]]");
            System.exit(2);
        }
        int deployRounds = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        int listRounds = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        EnvironmentBenchmark bench = new EnvironmentBenchmark(Files.createTempDirectory("veggur-envbench-"),
                Path.of(args[0]).toAbsolutePath());
        // Ctrl-C too must not leave a VM, a container or a RAM file behind.
        Thread hook = new Thread(bench::cleanUp);
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            bench.run(deployRounds, listRounds);
        } finally {
            bench.cleanUp();
            Runtime.getRuntime().removeShutdownHook(hook);
        }
    }

    private void run(int deployRounds, int listRounds) throws Exception {
        String load = loadAverage();
        String dockerHost = required("VEGGUR_DOCKER_HOST", "bench/environments.sh");
        agent = Agent.start(new Agent.Options(new VeggurHome(home), "127.0.0.1", 0, dockerHost, required("VEGGUR_IMAGE", "bench/environments.sh"),
                InetAddress.getLoopbackAddress(), null));
        String operatorToken = Files.readString(home.resolve("agent/operator.token")).strip();
        AgentClient operator = new AgentClient(URI.create(agent.url()), operatorToken);
        String token = operator.post("/v1/tenants", operator.json().put("name", NAME)).path("token").asText();
        tenant = new AgentClient(URI.create(agent.url()), token);
        progress("booting a 256 MiB VM");
        long bootStart = System.nanoTime();
        tenant.post("/v1/vms", tenant.json().put("name", NAME).put("memoryMib", 256));
        VmInfo vm = new VmManager(new VeggurHome(home)).list().getFirst();   // the only VM in this home
        new GuestConsole(new VeggurHome(home).vm(vm.name())).awaitLine(Pattern.compile("VEGGUR-READY"), Duration.ofSeconds(120));
        // The anchor for the paper's comparison: a monitoring VM would cost at least one such boot.
        long boot = System.nanoTime() - bootStart;

        long[] put = new long[deployRounds];
        long[] total = new long[deployRounds];
        long[] execTrue = new long[deployRounds];
        long[] version = new long[deployRounds];
        for (int i = 0; i < deployRounds; i++) {
            long t0 = System.nanoTime();
            tenant.put(VM + "/environment", tenant.json().put("flavor", "container").put("role", "read"));
            long t1 = System.nanoTime();
            exec("veggur", "vmi", "info", "--socket", "/vmi/vmi.sock");
            long t2 = System.nanoTime();
            put[i] = t1 - t0;
            total[i] = t2 - t0;
            // Outside the timed span: where the exec's time goes (the docker exec round trip, then JVM start-up).
            execTrue[i] = timed(() -> exec("true"));
            version[i] = timed(() -> exec("veggur", "--version"));
            tenant.delete(VM + "/environment");
            progress("deployment %d/%d: PUT %d ms, to vmi info done %d ms", i + 1, deployRounds, millis(put[i]), millis(total[i]));
        }

        tenant.put(VM + "/environment", tenant.json().put("flavor", "container").put("role", "read"));
        List<String> nativeCommand = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        nativeCommand.addAll(JVM_FLAGS);
        nativeCommand.addAll(List.of("-jar", cliJar.toString(), "vmi", "bench", "--socket", vm.socket(),
                "--count", String.valueOf(LISTS), "--json"));
        List<String> containerCommand = new ArrayList<>(List.of("/opt/veggur/jre/bin/java"));
        containerCommand.addAll(JVM_FLAGS);
        // Required, not a tuning: /tmp is noexec in the container, so junixsocket's library comes from the image.
        containerCommand.addAll(List.of("-Dorg.newsclub.net.unix.library.override=/opt/veggur/lib/libjunixsocket-native.so",
                "-jar", "/opt/veggur/veggur.jar", "vmi", "bench", "--socket", "/vmi/vmi.sock",
                "--count", String.valueOf(LISTS), "--json"));
        List<String> launcherCommand = List.of("veggur", "vmi", "bench", "--socket", "/vmi/vmi.sock",
                "--count", String.valueOf(LISTS), "--json");
        JsonNode[][] lists = new JsonNode[listRounds][];
        for (int i = 0; i < listRounds; i++) {
            // Which side goes first alternates, so a drift in machine load does not favour one of them.
            JsonNode nativeRun = i % 2 == 0 ? runNative(nativeCommand) : null;
            JsonNode containerRun = JSON.readTree(exec(containerCommand.toArray(String[]::new)));
            JsonNode launcherRun = JSON.readTree(exec(launcherCommand.toArray(String[]::new)));
            if (nativeRun == null) {
                nativeRun = runNative(nativeCommand);
            }
            lists[i] = new JsonNode[] {nativeRun, containerRun, launcherRun};
            progress("process lists %d/%d: native %.1f us, container %.1f us, container launcher %.1f us", i + 1,
                    listRounds, medianMicros(nativeRun), medianMicros(containerRun), medianMicros(launcherRun));
        }
        report(load, dockerHost, vm, boot, put, total, execTrue, version, lists);
    }

    // ---- measurements

    /** Runs argv in the environment through the API; its stdout, or an exception if it did not exit 0. */
    private String exec(String... argv) throws IOException {
        return BenchHost.exec(tenant, VM, List.of(argv), EXEC_TIMEOUT_SECONDS).stdoutIfOk(List.of(argv));
    }

    private JsonNode runNative(List<String> command) throws IOException, InterruptedException {
        ProcessBuilder builder = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT);
        // Its profile cache stays in the throw-away home instead of root's ~/.cache.
        builder.environment().put("VEGGUR_CACHE", home.resolve("cache").toString());
        Process process = builder.start();
        byte[] out = process.getInputStream().readAllBytes();
        if (!process.waitFor(EXEC_TIMEOUT_SECONDS, TimeUnit.SECONDS) || process.exitValue() != 0) {
            process.destroyForcibly();
            throw new IOException("native vmi bench failed: " + String.join(" ", command));
        }
        return JSON.readTree(out);
    }

    private static long timed(BenchHost.Step step) throws Exception {
        long start = System.nanoTime();
        step.run();
        return System.nanoTime() - start;
    }

    // ---- report

    private void report(String loadBefore, String dockerHost, VmInfo vm, long boot, long[] put, long[] total,
                        long[] execTrue, long[] version, JsonNode[][] lists) throws Exception {
        System.out.printf("Machine: %d CPUs (%s), kernel %s, Docker %s, image %s, QEMU accel %s, load average %s before,"
                + " %s after%n%n", Runtime.getRuntime().availableProcessors(), cpuModel(), System.getProperty("os.version"),
                dockerVersion(dockerHost), required("VEGGUR_IMAGE", "bench/environments.sh"), vm.accel(), loadBefore, loadAverage());

        System.out.printf("Deployment, %d rounds (PUT environment, then `veggur vmi info` exec'd in it):%n%n", put.length);
        System.out.println("| step | median | min | max |");
        System.out.println("|------|-------:|----:|----:|");
        row("PUT environment (container created, started, socket ready)", put);
        row("**request to VMI tool connected** (PUT + `vmi info` exec)", total);
        row("exec of `true` alone (API + docker exec round trip)", execTrue);
        row("exec of `veggur --version` (+ JVM start, CDS)", version);
        row("for comparison: POST /v1/vms until the guest is ready (one boot, 256 MiB)", new long[] {boot});

        System.out.printf("%nProcess list, caches flushed, %d lists per run (%d processes), median µs per list:%n%n",
                LISTS, lists[0][0].path("processes").asInt());
        System.out.println("| round | native | container | container / native | container launcher (its CDS) | launcher / native |");
        System.out.println("|------:|-------:|----------:|-------------------:|----------------------------:|------------------:|");
        double[] ratios = new double[lists.length];
        double[] launcherRatios = new double[lists.length];
        for (int i = 0; i < lists.length; i++) {
            double nativeMedian = medianMicros(lists[i][0]);
            ratios[i] = medianMicros(lists[i][1]) / nativeMedian;
            launcherRatios[i] = medianMicros(lists[i][2]) / nativeMedian;
            System.out.printf("| %d | %.1f | %.1f | %.3f | %.1f | %.3f |%n", i + 1, nativeMedian, medianMicros(lists[i][1]),
                    ratios[i], medianMicros(lists[i][2]), launcherRatios[i]);
        }
        System.out.printf("| **median** | | | **%.3f** | | **%.3f** |%n", median(ratios), median(launcherRatios));
        System.out.printf("%nMeans (µs, all rounds): native %s; container %s; launcher %s%n", means(lists, 0), means(lists, 1),
                means(lists, 2));
    }

    private static void row(String step, long[] nanos) {
        System.out.printf("| %s | %d ms | %d ms | %d ms |%n", step, millis(Math.round(median(nanos))),
                millis(Arrays.stream(nanos).min().orElseThrow()), millis(Arrays.stream(nanos).max().orElseThrow()));
    }

    private static String means(JsonNode[][] lists, int side) {
        return String.join(", ", Arrays.stream(lists).map(r -> String.format("%.1f", r[side].path("meanMicros").asDouble())).toList());
    }

    /** What one `vmi bench --json` run reports as its median, in µs per list. */
    private static double medianMicros(JsonNode bench) {
        return bench.path("medianMicros").asDouble();
    }

    private static long millis(long nanos) {
        return Math.round(nanos / 1e6);
    }

    // ---- set-up and clean-up

    private static void progress(String format, Object... args) {
        System.err.printf("envbench: " + format + "%n", args);
    }

    private void cleanUp() {
        if (cleaned.compareAndSet(false, true)) {
            BenchHost.tearDown(tenant, VM, agent, home, message -> progress("%s", message));
        }
    }
}
