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
import java.io.BufferedReader;
import java.io.IOException;
import java.net.InetAddress;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Active introspection after the paper's figure 5 (issue 6), through an in-process agent in a throw-away home, one
 * 256 MiB VM (1 vCPU, TCG), in one run with interleaved rounds:
 * <ol>
 *   <li>the guest's getpid loop ({@code veggur-getpid N DELAY_MS}) unmonitored and with {@code veggur vmi break
 *       __x64_sys_getpid --pid P --count N} running, the tool started once the workload printed its pid and armed
 *       during the workload's pause; every monitored run must see exactly N hits;</li>
 *   <li>{@code veggur-pi DIGITS} unmonitored and with {@code veggur vmi trace sched} running (armed during a
 *       {@code sleep} before the workload starts, checked afterwards: the tracer must have seen the workload's process
 *       before its exec, under the shell's name);</li>
 *   <li>the event round trip: the time N breakpoint events add, divided by N.</li>
 * </ol>
 * Each monitored run is made in two flavors: <b>native</b>, the CLI as a host {@code java} subprocess against the VM's
 * own socket, and <b>container</b>, the same command exec'd through the API in an environment with role {@code trace}
 * (the VM and network flavors do not exist yet). Both run the same JVM flags.
 *
 * <p>Two clocks. The guest's own CLOCK_MONOTONIC (what the workloads print) does not advance while QEMU holds the VM
 * stopped in its gdbstub, so in monitored runs it sees only part of an event's cost. The host clock does: the wall
 * time of a monitored run is taken from when its console lines appeared on the host (the console log is polled every
 * millisecond), minus the workload's pause. Both are reported. Unmonitored runs are never stopped, so there the two
 * clocks agree, and their guest figure is the baseline of both slowdowns: the console's timing is only good to some
 * tens of milliseconds, fine for monitored runs of seconds, too coarse for unmonitored runs of 1 to 100 ms.
 *
 * <p>Usage: {@code ActiveBenchmark CLI_JAR [ROUNDS=3 [GETPID_CALLS=2000 [PI_DIGITS=2000]]]}, with VEGGUR_DOCKER_HOST,
 * VEGGUR_IMAGE and VEGGUR_GUEST_DIR set (bench/active.sh does all of it). Progress goes to stderr, the markdown report
 * to stdout.
 */
public final class ActiveBenchmark {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String NAME = "bench";
    private static final String VM = AgentClient.vmPath(NAME, NAME);
    /** The getpid workload's pause between printing its pid and the calls: the tracer starts and arms meanwhile. */
    private static final int DELAY_MS = 8000;
    /** The same for pi, as a shell {@code sleep} before it (veggur-pi has no pause of its own). */
    private static final int PI_DELAY_SECONDS = 8;
    /** Unmonitored runs per round and workload (their median is the round's baseline). */
    private static final int BASELINE_RUNS = 3;
    private static final int TRACER_SECONDS = 540;
    private static final int EXEC_TIMEOUT_SECONDS = 590;
    private static final Duration RUN_TIMEOUT = Duration.ofSeconds(EXEC_TIMEOUT_SECONDS);
    private static final String PI_START = "VEGGUR-BENCH-PI-START";
    /** Where the container's sched tracer notes its pid, so that it can be stopped by pid. */
    private static final String CONTAINER_PID_FILE = "/tmp/veggur-bench-sched.pid";

    /** As EnvironmentBenchmark: the image launcher's JVM flags (./veggur's run_cli plus -UsePerfData), CDS off on both sides. */
    private static final List<String> JVM_FLAGS = List.of("--enable-native-access=ALL-UNNAMED",
            "--sun-misc-unsafe-memory-access=allow", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData",
            "-Xshare:off");

    enum Flavor {
        NATIVE("native (host subprocess, VM's own socket)"),
        CONTAINER("container (role trace, exec through the API)");

        final String label;

        Flavor(String label) {
            this.label = label;
        }
    }

    /** One monitored getpid run. */
    record GetpidRun(long guestNs, long wallNs, int hits, long armedMs) {}

    /** One monitored pi run. eventsWhileRunning: switch events from the first that involves pi to the last. */
    record PiRun(long guestNs, long wallNs, int events, int eventsWhileRunning, boolean armedBefore) {}

    private final Path home;
    private final Path cliJar;
    private final int calls;
    private final int digits;
    private Agent agent;
    private AgentClient tenant;
    private ConsoleTail console;
    private GuestConsole input;
    private final List<Process> processes = new CopyOnWriteArrayList<>();
    private final AtomicLong tracerRuns = new AtomicLong();
    private final ExecutorService background = Executors.newCachedThreadPool(r -> {
        Thread thread = new Thread(r, "activebench-exec");
        thread.setDaemon(true);
        return thread;
    });
    private final AtomicBoolean cleaned = new AtomicBoolean();

    private ActiveBenchmark(Path home, Path cliJar, int calls, int digits) {
        this.home = home;
        this.cliJar = cliJar;
        this.calls = calls;
        this.digits = digits;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || !Files.isRegularFile(Path.of(args[0]))) {
            System.err.println("usage: ActiveBenchmark CLI_JAR [ROUNDS [GETPID_CALLS [PI_DIGITS]]]");
            System.exit(2);
        }
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int calls = args.length > 2 ? Integer.parseInt(args[2]) : 2000;
        int digits = args.length > 3 ? Integer.parseInt(args[3]) : 2000;
        ActiveBenchmark bench = new ActiveBenchmark(Files.createTempDirectory("veggur-activebench-"),
                Path.of(args[0]).toAbsolutePath(), calls, digits);
        // Ctrl-C too must not leave a VM, a container, a tracer or a RAM file behind.
        Thread hook = new Thread(bench::cleanUp);
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            bench.run(rounds);
        } finally {
            bench.cleanUp();
            Runtime.getRuntime().removeShutdownHook(hook);
        }
    }

    private void run(int rounds) throws Exception {
        String load = loadAverage();
        String dockerHost = required("VEGGUR_DOCKER_HOST", "bench/active.sh");
        agent = Agent.start(new Agent.Options(new VeggurHome(home), "127.0.0.1", 0, dockerHost, required("VEGGUR_IMAGE", "bench/active.sh"),
                InetAddress.getLoopbackAddress(), null));
        String operatorToken = Files.readString(home.resolve("agent/operator.token")).strip();
        AgentClient operator = new AgentClient(URI.create(agent.url()), operatorToken);
        String token = operator.post("/v1/tenants", operator.json().put("name", NAME)).path("token").asText();
        tenant = new AgentClient(URI.create(agent.url()), token);
        progress("booting a 256 MiB VM");
        tenant.post("/v1/vms", tenant.json().put("name", NAME).put("memoryMib", 256));
        VmInfo vm = new VmManager(new VeggurHome(home)).list().getFirst();   // the only VM in this home
        var directory = new VeggurHome(home).vm(vm.name());
        input = new GuestConsole(directory);
        console = new ConsoleTail(directory.consoleLog());
        console.await(0, Pattern.compile("VEGGUR-READY"), Duration.ofSeconds(120));
        tenant.put(VM + "/environment", tenant.json().put("flavor", "container").put("role", "trace"));

        // Warm-up, not reported: the workloads' first runs, and one short monitored run per flavor (the guest's first
        // breakpoint, the native tool's profile cache).
        progress("warming up");
        unmonitoredGetpid();
        unmonitoredPi();
        for (Flavor flavor : Flavor.values()) {
            monitoredGetpid(flavor, 20);
        }

        long[][] getpidBase = new long[rounds][];
        GetpidRun[][] getpid = new GetpidRun[rounds][Flavor.values().length];
        long[][] piBase = new long[rounds][];
        PiRun[][] pi = new PiRun[rounds][Flavor.values().length];
        for (int r = 0; r < rounds; r++) {
            // Which flavor goes first alternates, so a drift in machine load does not favour one of them.
            List<Flavor> order = r % 2 == 0 ? List.of(Flavor.NATIVE, Flavor.CONTAINER) : List.of(Flavor.CONTAINER, Flavor.NATIVE);
            getpidBase[r] = new long[BASELINE_RUNS];
            for (int i = 0; i < BASELINE_RUNS; i++) {
                getpidBase[r][i] = unmonitoredGetpid();
            }
            for (Flavor flavor : order) {
                GetpidRun run = monitoredGetpid(flavor, calls);
                getpid[r][flavor.ordinal()] = run;
                progress("round %d getpid %s: guest %.1f ms, wall %.1f ms, %d hits (unmonitored %.3f ms)", r + 1, flavor,
                        run.guestNs() / 1e6, run.wallNs() / 1e6, run.hits(), median(getpidBase[r]) / 1e6);
            }
            piBase[r] = new long[BASELINE_RUNS];
            for (int i = 0; i < BASELINE_RUNS; i++) {
                piBase[r][i] = unmonitoredPi();
            }
            for (Flavor flavor : order) {
                PiRun run = monitoredPi(flavor);
                pi[r][flavor.ordinal()] = run;
                progress("round %d pi %s: guest %.1f ms, wall %.1f ms, %d events (%d while pi ran), armed before: %s", r + 1,
                        flavor, run.guestNs() / 1e6, run.wallNs() / 1e6, run.events(), run.eventsWhileRunning(), run.armedBefore());
            }
        }
        report(load, dockerHost, vm, getpidBase, getpid, piBase, pi);
    }

    // ---- workloads

    private static Pattern getpidDone(int n) {
        return Pattern.compile("GETPID pid=(\\d+) calls=" + n + " ns=(\\d+)");
    }

    /** Guest ns of N unmonitored getpid calls. */
    private long unmonitoredGetpid() throws Exception {
        int mark = console.size();
        input.type("veggur-getpid " + calls);
        return Long.parseLong(console.await(mark, getpidDone(calls), RUN_TIMEOUT).matcher().group(2));
    }

    /**
     * The workload prints its pid, pauses DELAY_MS, then makes its calls; the tracer is started on the pid right away
     * and arms during the pause. Wall time: from the start line to the result line as the host saw them, minus the
     * pause.
     */
    private GetpidRun monitoredGetpid(Flavor flavor, int n) throws Exception {
        int mark = console.size();
        input.type("veggur-getpid " + n + " " + DELAY_MS);
        ConsoleTail.Line start = console.await(mark, Pattern.compile("GETPID-START pid=(\\d+) calls=" + n + "\\b"), RUN_TIMEOUT);
        String pid = start.matcher().group(1);
        List<String> args = List.of("vmi", "break", "__x64_sys_getpid", "--pid", pid, "--count", Integer.toString(n),
                "--seconds", Integer.toString(TRACER_SECONDS));
        Tracer tracer = start(flavor, args, false);
        ConsoleTail.Line done = console.await(start.index() + 1, getpidDone(n), RUN_TIMEOUT);
        Tracer.Output output = tracer.finish();
        List<String> lines = output.stdout().lines().toList();
        int hits = (int) lines.stream().filter(l -> l.startsWith("hit ")).count();
        String last = lines.isEmpty() ? "" : lines.getLast();
        if (output.exitCode() != 0 || !last.equals(n + " hits")) {
            throw new IOException(flavor + " getpid tracer: exit " + output.exitCode() + ", last line '" + last
                    + "' (want '" + n + " hits'): " + output.stderr());
        }
        long armedMs = output.armedAt() < 0 ? -1 : Math.round((output.armedAt() - start.seen()) / 1e6);
        return new GetpidRun(Long.parseLong(done.matcher().group(2)), done.seen() - start.seen() - DELAY_MS * 1_000_000L,
                hits, armedMs);
    }

    private static Pattern piDone(int digits) {
        return Pattern.compile("PI digits=" + digits + " ns=(\\d+)");
    }

    /** Guest ns of pi, unmonitored. */
    private long unmonitoredPi() throws Exception {
        int mark = console.size();
        input.type("veggur-pi " + digits);
        return Long.parseLong(console.await(mark, piDone(digits), RUN_TIMEOUT).matcher().group(1));
    }

    /**
     * The tracer starts, then the guest sleeps PI_DELAY_SECONDS (the tracer arms meanwhile), prints a start line and
     * runs pi. Wall time: start line to result line as the host saw them (fork and exec of veggur-pi included, as in
     * the unmonitored runs).
     */
    private PiRun monitoredPi(Flavor flavor) throws Exception {
        List<String> args = List.of("vmi", "trace", "sched", "--count", "1000000000", "--seconds",
                Integer.toString(TRACER_SECONDS), "--json");
        int mark = console.size();
        Tracer tracer = start(flavor, args, true);
        input.type("sleep " + PI_DELAY_SECONDS + "; echo " + PI_START + "; veggur-pi " + digits);
        ConsoleTail.Line start = console.await(mark, Pattern.compile(PI_START), RUN_TIMEOUT);
        ConsoleTail.Line done = console.await(start.index() + 1, piDone(digits), RUN_TIMEOUT);
        tracer.stop();
        Tracer.Output output = tracer.finish();
        // Killed by SIGTERM (143) is how it ends; 0 would mean it stopped by itself.
        if (output.exitCode() != 143 && output.exitCode() != 0) {
            throw new IOException(flavor + " sched tracer: exit " + output.exitCode() + ": " + output.stderr());
        }
        List<JsonNode> events = new ArrayList<>();
        for (String line : output.stdout().lines().toList()) {
            if (line.startsWith("{")) {
                events.add(JSON.readTree(line));
            }
        }
        int piPid = events.stream().filter(e -> e.path("nextComm").asText().equals("veggur-pi"))
                .mapToInt(e -> e.path("nextPid").asInt()).findFirst().orElse(-1);
        // Armed before pi's exec: the tracer saw the forked child under the shell's name first.
        boolean armed = events.stream().anyMatch(e -> e.path("nextPid").asInt() == piPid
                && !e.path("nextComm").asText().equals("veggur-pi"));
        int first = -1;
        int last = -1;
        for (int i = 0; i < events.size(); i++) {
            JsonNode e = events.get(i);
            if (e.path("nextPid").asInt() == piPid || e.path("prevPid").asInt() == piPid) {
                first = first < 0 ? i : first;
                last = i;
            }
        }
        return new PiRun(Long.parseLong(done.matcher().group(1)), done.seen() - start.seen(), events.size(),
                first < 0 ? 0 : last - first + 1, armed);
    }

    // ---- tracers: a host subprocess or an exec in the environment

    private interface Tracer {
        /** armedAt: System.nanoTime() when the tool said it had armed (native only; -1 if unknown). */
        record Output(int exitCode, String stdout, String stderr, long armedAt) {}

        /** Asks a tracer that runs until stopped to stop (SIGTERM, by pid). */
        void stop() throws Exception;

        Output finish() throws Exception;
    }

    private Tracer start(Flavor flavor, List<String> args, boolean stoppable) throws IOException {
        return flavor == Flavor.NATIVE ? startNative(args) : startInContainer(args, stoppable);
    }

    private Tracer startNative(List<String> args) throws IOException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        command.addAll(JVM_FLAGS);
        command.addAll(List.of("-jar", cliJar.toString()));
        command.addAll(args);
        command.addAll(List.of("--socket", vmSocket()));
        // Its output (a line per event) goes to a file, read when it is done: no consumer wakes up per event on the host
        // meanwhile, so the native figure is the tool alone. (With a pipe read line by line by this JVM, the native
        // side came out about 20 % slower than the container in trace sched runs.)
        Path stdoutFile = home.resolve("tracer-" + tracerRuns.incrementAndGet() + ".out");
        ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(stdoutFile.toFile());
        // Its profile cache stays in the throw-away home instead of root's ~/.cache.
        builder.environment().put("VEGGUR_CACHE", home.resolve("cache").toString());
        Process process = builder.start();
        processes.add(process);
        StringBuilder stderr = new StringBuilder();
        AtomicLong armedAt = new AtomicLong(-1);
        CompletableFuture<Void> err = CompletableFuture.runAsync(() -> readLines(process.getErrorStream(), line -> {
            if (line.startsWith("veggur: breakpoint set") || line.equals("veggur: tracing")) {
                armedAt.compareAndSet(-1, System.nanoTime());
            }
            stderr.append(line).append('\n');
        }), background);
        return new Tracer() {
            @Override
            public void stop() {
                process.destroy();
            }

            @Override
            public Output finish() throws Exception {
                if (!process.waitFor(EXEC_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    throw new IOException("native tracer did not end: " + String.join(" ", command));
                }
                err.get(10, TimeUnit.SECONDS);
                processes.remove(process);
                String stdout = Files.readString(stdoutFile);
                Files.delete(stdoutFile);
                return new Output(process.exitValue(), stdout, stderr.toString(), armedAt.get());
            }
        };
    }

    private String vmSocket() throws IOException {
        return new VmManager(new VeggurHome(home)).list().getFirst().socket();
    }

    private static void readLines(InputStream stream, java.util.function.Consumer<String> sink) {
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                sink.accept(line);
            }
        } catch (IOException e) {
            // the process is gone
        }
    }

    private Tracer startInContainer(List<String> args, boolean stoppable) {
        List<String> argv = new ArrayList<>();
        if (stoppable) {
            // sh notes its pid, then becomes the JVM: `kill` on that pid later stops exactly this tracer.
            argv.addAll(List.of("sh", "-c", "echo $$ > " + CONTAINER_PID_FILE + " && exec \"$@\"", "sh"));
        }
        argv.add("/opt/veggur/jre/bin/java");
        argv.addAll(JVM_FLAGS);
        // Required, not a tuning: /tmp is noexec in the container, so junixsocket's library comes from the image.
        argv.addAll(List.of("-Dorg.newsclub.net.unix.library.override=/opt/veggur/lib/libjunixsocket-native.so",
                "-jar", "/opt/veggur/veggur.jar"));
        argv.addAll(args);
        argv.addAll(List.of("--socket", "/vmi/vmi.sock"));
        CompletableFuture<JsonNode> result = CompletableFuture.supplyAsync(() -> {
            try {
                return exec(argv);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }, background);
        return new Tracer() {
            @Override
            public void stop() throws Exception {
                JsonNode kill = exec(List.of("sh", "-c", "kill -TERM \"$(cat " + CONTAINER_PID_FILE + ")\""));
                if (kill.path("exitCode").asInt(-1) != 0) {
                    throw new IOException("could not stop the container's tracer: " + decode(kill.path("stderr")));
                }
            }

            @Override
            public Output finish() throws Exception {
                JsonNode r = result.get(EXEC_TIMEOUT_SECONDS + 30, TimeUnit.SECONDS);
                if (r.path("timedOut").asBoolean() || r.path("truncated").asBoolean()) {
                    throw new IOException("container tracer " + (r.path("timedOut").asBoolean() ? "timed out" : "output truncated"));
                }
                return new Output(r.path("exitCode").asInt(-1), decode(r.path("stdout")), decode(r.path("stderr")), -1);
            }
        };
    }

    /** Runs argv in the environment through the API; the API's answer (exit code, stdout, stderr). */
    private JsonNode exec(List<String> argv) throws IOException {
        var body = tenant.json().put("timeoutSeconds", EXEC_TIMEOUT_SECONDS);
        argv.forEach(body.putArray("argv")::add);
        return tenant.post(VM + "/environment/exec", body);
    }

    private static String decode(JsonNode base64) {
        return new String(Base64.getDecoder().decode(base64.asText()), StandardCharsets.UTF_8);
    }

    // ---- the console as the host sees it, line by line, with the time each line appeared

    /**
     * Follows the VM's console log: a thread polls its size every millisecond and timestamps each complete line when it
     * first sees it. Only appended-to, so "lines after index i" are the output of whatever was typed after line i.
     */
    static final class ConsoleTail {
        record Line(int index, String text, long seen, Matcher matcher) {}

        private record Seen(String text, long seen) {}

        private final List<Seen> lines = new CopyOnWriteArrayList<>();
        private final Thread thread;

        ConsoleTail(Path log) {
            thread = new Thread(() -> follow(log), "activebench-console");
            thread.setDaemon(true);
            thread.start();
        }

        private void follow(Path log) {
            long offset = 0;
            StringBuilder partial = new StringBuilder();
            ByteBuffer buffer = ByteBuffer.allocate(64 << 10);
            java.io.ByteArrayOutputStream pending = new java.io.ByteArrayOutputStream();
            while (!Thread.currentThread().isInterrupted()) {
                try {
                    if (Files.exists(log) && Files.size(log) > offset) {
                        try (FileChannel channel = FileChannel.open(log, StandardOpenOption.READ)) {
                            channel.position(offset);
                            int n;
                            while ((n = channel.read(buffer)) > 0) {
                                offset += n;
                                pending.write(buffer.array(), 0, n);
                                buffer.clear();
                            }
                        }
                        long now = System.nanoTime();
                        byte[] bytes = pending.toByteArray();
                        int lineStart = 0;
                        for (int i = 0; i < bytes.length; i++) {
                            if (bytes[i] == '\n') {
                                partial.append(new String(bytes, lineStart, i - lineStart, StandardCharsets.UTF_8));
                                lines.add(new Seen(partial.toString().replace("\r", ""), now));
                                partial.setLength(0);
                                lineStart = i + 1;
                            }
                        }
                        pending.reset();
                        pending.write(bytes, lineStart, bytes.length - lineStart);
                    }
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    return;
                } catch (IOException e) {
                    // the log is being created or rotated away at VM stop; try again
                }
            }
        }

        int size() {
            return lines.size();
        }

        /** The first line at index {@code from} or later that matches. */
        Line await(int from, Pattern pattern, Duration timeout) throws IOException, InterruptedException {
            long deadline = System.nanoTime() + timeout.toNanos();
            int next = from;
            while (true) {
                for (; next < lines.size(); next++) {
                    Seen line = lines.get(next);
                    Matcher m = pattern.matcher(line.text());
                    if (m.find()) {
                        return new Line(next, line.text(), line.seen(), m);
                    }
                }
                if (System.nanoTime() > deadline) {
                    throw new IOException("the guest console showed no line matching '" + pattern + "' within "
                            + timeout.toSeconds() + " s");
                }
                Thread.sleep(1);
            }
        }

        void close() {
            thread.interrupt();
        }
    }

    // ---- report

    private void report(String loadBefore, String dockerHost, VmInfo vm, long[][] getpidBase, GetpidRun[][] getpid,
                        long[][] piBase, PiRun[][] pi) throws Exception {
        int rounds = getpid.length;
        System.out.printf("Machine: %d CPUs (%s), host kernel %s, %s, accel %s, Docker %s, load average %s before, %s after%n",
                Runtime.getRuntime().availableProcessors(), cpuModel(), System.getProperty("os.version"), qemuVersion(),
                vm.accel(), dockerVersion(dockerHost), loadBefore, loadAverage());
        System.out.printf("Settings: %d rounds; getpid loop of %d calls (pause %d ms to arm); pi of %d digits (sleep %d s "
                        + "to arm); unmonitored figures are the median of %d runs per round; tracer JVM flags %s%n%n",
                rounds, calls, DELAY_MS, digits, PI_DELAY_SECONDS, BASELINE_RUNS, String.join(" ", JVM_FLAGS));

        Flavor[] flavors = Flavor.values();
        // Per round and flavor: slowdowns and µs per event on both clocks.
        double[][][] m = new double[flavors.length][6][rounds];
        for (int r = 0; r < rounds; r++) {
            double base = median(getpidBase[r]);
            double piBaseline = median(piBase[r]);
            for (Flavor f : flavors) {
                GetpidRun g = getpid[r][f.ordinal()];
                PiRun p = pi[r][f.ordinal()];
                m[f.ordinal()][0][r] = g.wallNs() / base;
                m[f.ordinal()][1][r] = g.guestNs() / base;
                m[f.ordinal()][2][r] = (g.wallNs() - base) / calls / 1e3;
                m[f.ordinal()][3][r] = (g.guestNs() - base) / calls / 1e3;
                m[f.ordinal()][4][r] = p.wallNs() / piBaseline;
                m[f.ordinal()][5][r] = p.guestNs() / piBaseline;
            }
        }
        System.out.println("Medians over the rounds (the container / native row: median of the per-round ratios):");
        System.out.println();
        System.out.println("| flavor | getpid slowdown, wall | getpid slowdown, guest clock | µs per event, wall "
                + "| µs per event, guest clock | pi slowdown, wall | pi slowdown, guest clock |");
        System.out.println("|--------|------:|------:|------:|------:|------:|------:|");
        for (Flavor f : flavors) {
            double[][] v = m[f.ordinal()];
            System.out.printf("| %s | **%.0f×** | %.0f× | **%.0f** | %.0f | **%.1f×** | %.1f× |%n", f.label, median(v[0]),
                    median(v[1]), median(v[2]), median(v[3]), median(v[4]), median(v[5]));
        }
        System.out.println("| VM | not built yet (issue 5) | | | | | |");
        System.out.println("| network | not built yet (issue 5) | | | | | |");
        double[][] ratio = new double[6][rounds];
        for (int k = 0; k < 6; k++) {
            for (int r = 0; r < rounds; r++) {
                ratio[k][r] = m[Flavor.CONTAINER.ordinal()][k][r] / m[Flavor.NATIVE.ordinal()][k][r];
            }
        }
        System.out.printf("| **container / native** | **%.3f** | %.3f | **%.3f** | %.3f | **%.3f** | %.3f |%n",
                median(ratio[0]), median(ratio[1]), median(ratio[2]), median(ratio[3]), median(ratio[4]), median(ratio[5]));

        System.out.printf("%ngetpid loop, %d calls, per round (ms; wall = host clock, start line to result line minus the "
                + "%d ms pause):%n%n", calls, DELAY_MS);
        System.out.println("| round | unmonitored (guest; %d runs) | native guest | native wall | container guest | container wall "
                .formatted(BASELINE_RUNS) + "| native: armed after the start line | container / native slowdown, wall |");
        System.out.println("|------:|------:|------:|------:|------:|------:|------:|------:|");
        for (int r = 0; r < rounds; r++) {
            GetpidRun n = getpid[r][Flavor.NATIVE.ordinal()];
            GetpidRun c = getpid[r][Flavor.CONTAINER.ordinal()];
            System.out.printf("| %d | %s | %.0f | %.0f | %.0f | %.0f | %d ms | %.3f |%n", r + 1,
                    String.join(", ", Arrays.stream(getpidBase[r]).mapToObj(ns -> "%.3f".formatted(ns / 1e6)).toList()),
                    n.guestNs() / 1e6, n.wallNs() / 1e6, c.guestNs() / 1e6, c.wallNs() / 1e6, n.armedMs(), ratio[0][r]);
        }

        System.out.printf("%npi, %d digits, per round (ms; wall = host clock, from the shell's start line to the result "
                + "line, so fork and exec of veggur-pi included; events: context switches the tracer saw in the whole run / "
                + "from the first that involves pi to the last):%n%n", digits);
        System.out.println("| round | unmonitored (guest; %d runs) | native guest | native wall | native events "
                .formatted(BASELINE_RUNS) + "| container guest | container wall | container events | container / native slowdown, wall |");
        System.out.println("|------:|------:|------:|------:|------:|------:|------:|------:|------:|");
        for (int r = 0; r < rounds; r++) {
            PiRun n = pi[r][Flavor.NATIVE.ordinal()];
            PiRun c = pi[r][Flavor.CONTAINER.ordinal()];
            System.out.printf("| %d | %s | %.0f | %.0f | %d / %d%s | %.0f | %.0f | %d / %d%s | %.3f |%n", r + 1,
                    String.join(", ", Arrays.stream(piBase[r]).mapToObj(ns -> "%.1f".formatted(ns / 1e6)).toList()),
                    n.guestNs() / 1e6, n.wallNs() / 1e6, n.events(), n.eventsWhileRunning(), n.armedBefore() ? "" : " (armed late!)",
                    c.guestNs() / 1e6, c.wallNs() / 1e6, c.events(), c.eventsWhileRunning(), c.armedBefore() ? "" : " (armed late!)",
                    ratio[4][r]);
        }
        System.out.println();
        for (Flavor f : flavors) {
            double[] perSwitch = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                PiRun p = pi[r][f.ordinal()];
                perSwitch[r] = p.eventsWhileRunning() == 0 ? Double.NaN : (p.wallNs() - median(piBase[r])) / p.eventsWhileRunning() / 1e3;
            }
            System.out.printf("Cross-check, %s: pi's extra wall time per context-switch event while it ran: %s µs%n", f,
                    String.join(", ", Arrays.stream(perSwitch).mapToObj(v -> "%.0f".formatted(v)).toList()));
        }
    }

    private static String qemuVersion() {
        return BenchHost.firstLine("qemu-system-x86_64", "--version");
    }

    // ---- set-up and clean-up

    private static void progress(String format, Object... args) {
        System.err.printf("activebench: " + format + "%n", args);
    }

    /**
     * Idempotent: native tracers still running (by their process handles), then the rest as
     * {@link BenchHost#tearDown} does it.
     */
    private void cleanUp() {
        if (!cleaned.compareAndSet(false, true)) {
            return;
        }
        for (Process process : processes) {
            BenchHost.attempt(message -> progress("%s", message), "stop tracer " + process.pid(), () -> {
                process.destroy();
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            });
        }
        if (console != null) {
            console.close();
        }
        background.shutdownNow();
        BenchHost.tearDown(tenant, VM, agent, home, message -> progress("%s", message));
    }
}
