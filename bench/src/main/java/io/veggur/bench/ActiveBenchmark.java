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
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.InetAddress;
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
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
 *   <li>the guest's getpid loop ({@code veggur-getpid N PAUSE_MS}) unmonitored and with {@code veggur vmi break
 *       __x64_sys_getpid --pid P --count N} running, the tool started once the workload printed its pid and armed
 *       during the workload's pause; every monitored run must see exactly N hits;</li>
 *   <li>{@code veggur-pi DIGITS} unmonitored and with {@code veggur vmi trace sched} running (armed during a
 *       {@code sleep} before the workload starts, checked afterwards: the tracer must have seen the workload's process
 *       before its exec, under the shell's name);</li>
 *   <li>the event round trip: the time N breakpoint events add, divided by N.</li>
 * </ol>
 * Each monitored run is made in the four flavors, all with role {@code trace}, each environment held by a tenant of
 * its own (a tenant has at most one environment per VM; {@code bench} owns the VM, {@code bench-vm} and
 * {@code bench-net} have trace grants), so all of them exist for the whole run and rounds can interleave them:
 * <ul>
 *   <li><b>native</b>: the CLI as a host {@code java} subprocess against the VM's own socket;</li>
 *   <li><b>container</b>: the same command exec'd through the API in a container environment
 *       ({@code /vmi/vmi.sock});</li>
 *   <li><b>vm</b>: exec'd through the API in a monitoring-VM environment (a TCG guest on these machines, so its
 *       JVM runs emulated), on {@code serial:io.veggur.vmi};</li>
 *   <li><b>network</b>: a host {@code java} subprocess on the network environment's mutual-TLS 1.3 endpoint on
 *       loopback, with the identity the environment's creation issued.</li>
 * </ul>
 * All run the same JVM flags, plus {@code -Xlog:exceptions=info} into a file, which is how expired events are
 * counted: the host's DebugBridge lets the vCPU go on by itself when a client has not resolved an event within 1 s,
 * and the client's late resolution then fails with "event N is not waiting for you", which the CLI swallows; the
 * exception log still names each such event once or more, so the distinct N are the expiries. (The log costs about
 * 2000 lines at JVM start and nothing per event.)
 *
 * <p>The workload's pause, during which the tool starts and arms, is per flavor: before the rounds, each flavor runs
 * {@code vmi break __x64_sys_getpid --pid 1 --count 1 --seconds 1} twice (the first run also fills its profile cache:
 * in the monitoring VM the first kernel discovery over the serial link takes tens of seconds), and the second run's
 * whole duration, start to exit, bounds the time to arm: getpid's pause is max(8 s, 1.5 × that + 4 s), whole seconds
 * (a tool that arms too late waits for hits that never come, up to its 540 s). pi's sleep is shorter, max(8 s, that +
 * 4 s): the sched tracer traps every address-space switch from the moment it is armed, so each second of sleep after
 * that costs several seconds of wall time in the slow flavors (about 200 events per second of guest time, each about
 * 25 ms in the monitoring VM: some 5 s of wall time per second of sleep).
 * A pi run whose tracer armed after pi started is made once more with getpid's pause (and counted in the report).
 * VEGGUR_ACTIVE_PAUSES (e.g. {@code vm=60,network=10}, seconds) sets both instead for the flavors named.
 *
 * <p>Stopping the sched tracer: natively by SIGTERM to its process, in the container by {@code kill} of the pid its
 * shell noted (a second exec). The monitoring VM's exec service runs one command at a time, so there a shell next to
 * the tracer stops it: the guest runs {@code veggur-getpid 1 300} after pi, and once the tracer's output (polled every
 * second) names it, the shell sends the tracer SIGTERM. That is after pi's result line, so it costs pi nothing.
 *
 * <p>Two clocks. The guest's own CLOCK_MONOTONIC (what the workloads print) does not advance while QEMU holds the VM
 * stopped in its gdbstub, so in monitored runs it sees only part of an event's cost. The host clock does: the wall
 * time of a monitored run is taken from when its console lines appeared on the host (the console log is polled every
 * millisecond), minus the workload's pause. Both are reported; their difference per event is the time the VM stood
 * stopped, i.e. mostly the client's handling. Unmonitored runs are never stopped, so there the two clocks agree, and
 * their guest figure is the baseline of both slowdowns: the console's timing is only good to some tens of
 * milliseconds, fine for monitored runs of seconds, too coarse for unmonitored runs of 1 to 100 ms.
 *
 * <p>Usage: {@code ActiveBenchmark CLI_JAR [ROUNDS=3 [GETPID_CALLS=1000 [PI_DIGITS=1000]]]}, with
 * VEGGUR_DOCKER_HOST, VEGGUR_IMAGE, VEGGUR_GUEST_DIR and VEGGUR_MONITOR_IMAGE set (bench/active.sh does all of it).
 * Progress goes to stderr, the markdown report to stdout.
 */
public final class ActiveBenchmark {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String NAME = "bench";
    private static final String VM = AgentClient.vmPath(NAME, NAME);
    private static final String SCRIPT = "bench/active.sh";
    /** The shortest pause between the workload's start line and its calls (getpid) or its start (pi). */
    private static final int MIN_PAUSE_MS = 8000;
    /** Unmonitored runs per round and workload (their median is the round's baseline). */
    private static final int BASELINE_RUNS = 3;
    private static final int TRACER_SECONDS = 540;
    private static final int EXEC_TIMEOUT_SECONDS = 590;
    private static final Duration RUN_TIMEOUT = Duration.ofSeconds(EXEC_TIMEOUT_SECONDS);
    private static final String PI_START = "VEGGUR-BENCH-PI-START";
    /** What the guest runs after pi in the vm flavor; the monitoring VM's shell stops the tracer once it sees it. */
    private static final String PI_END_MARK = "veggur-getpid 1 300";
    private static final Pattern PI_END_DONE = Pattern.compile("GETPID pid=\\d+ calls=1 ns=");
    /** The probe that bounds a flavor's time to arm (pid 1 makes no getpid calls while idle). */
    private static final List<String> PROBE = List.of("vmi", "break", "__x64_sys_getpid", "--pid", "1", "--count", "1",
            "--seconds", "1");

    /** In an exec environment (container, monitoring VM): where a tracer's pid and exception log go. */
    private static final String PID_FILE = "/tmp/veggur-bench-tracer.pid";
    private static final String EXCEPTION_LOG = "/tmp/veggur-bench-exceptions.log";
    private static final String TRACE_OUT = "/tmp/veggur-bench-trace.out";
    /** The last stderr line of an exec'd tracer: how many events expired. */
    private static final String EXPIRED_TAG = "VEGGUR-BENCH-EXPIRED ";
    private static final Pattern EXPIRED_EVENT = Pattern.compile("event (\\d+) is not waiting for you");

    /**
     * As EnvironmentBenchmark: the image launcher's JVM flags (./veggur's run_cli plus -UsePerfData), CDS off
     * everywhere. VEGGUR_ACTIVE_JIT=tiered drops -XX:TieredStopAtLevel=1 (C2 too: the JDK's AES-GCM intrinsics, which
     * TLS wants, are C2's).
     */
    private static final List<String> C1_FLAGS = List.of("--enable-native-access=ALL-UNNAMED",
            "--sun-misc-unsafe-memory-access=allow", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData",
            "-Xshare:off");
    private List<String> jvmFlags = C1_FLAGS;

    enum Flavor {
        NATIVE("native (host subprocess, VM's own socket)"),
        CONTAINER("container (exec through the API, `/vmi/vmi.sock`)"),
        VM("vm (monitoring VM, exec through the API, `serial:io.veggur.vmi`)"),
        NETWORK("network (host subprocess, mutual TLS 1.3 on loopback)");

        final String label;

        Flavor(String label) {
            this.label = label;
        }

        String key() {
            return name().toLowerCase();
        }

        /** The tool runs on the host (else through the exec API in the environment). */
        boolean onHost() {
            return this == NATIVE || this == NETWORK;
        }
    }

    /** One monitored getpid run. armedMs: from the start line to the tool's "breakpoint set" (host flavors; else -1). */
    record GetpidRun(long guestNs, long wallNs, int hits, long armedMs, int expired) {}

    /** One monitored pi run. eventsWhileRunning: switch events from the first that involves pi to the last. */
    record PiRun(long guestNs, long wallNs, int events, int eventsWhileRunning, boolean armedBefore, int expired) {}

    private final Path home;
    private final Path cliJar;
    private final int calls;
    private final int digits;
    private Agent agent;
    private final Map<Flavor, AgentClient> tenants = new EnumMap<>(Flavor.class);
    /** The socket argument of each flavor's tools. */
    private final Map<Flavor, String> sockets = new EnumMap<>(Flavor.class);
    /** Per flavor: the getpid workload's pause, and pi's sleep before it (shorter: see the class comment). */
    private final Map<Flavor, Integer> pausesMs = new EnumMap<>(Flavor.class);
    private final Map<Flavor, Integer> piPausesMs = new EnumMap<>(Flavor.class);
    /** Monitored pi runs made again because the tracer armed after pi had started. */
    private final Map<Flavor, Integer> piRedone = new EnumMap<>(Flavor.class);
    /** Probe durations (ms), first and second run. */
    private final Map<Flavor, long[]> probesMs = new EnumMap<>(Flavor.class);
    private final Set<Flavor> pausesSet = new HashSet<>();
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
    private String monitorAccel = "unknown";
    private static final long STARTED = System.nanoTime();

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
        // 1000 and 1000 (2000 and 2000 before the vm and network flavors): the run stays under about 20 minutes.
        int calls = args.length > 2 ? Integer.parseInt(args[2]) : 1000;
        int digits = args.length > 3 ? Integer.parseInt(args[3]) : 1000;
        ActiveBenchmark bench = new ActiveBenchmark(Files.createTempDirectory("veggur-activebench-"),
                Path.of(args[0]).toAbsolutePath(), calls, digits);
        bench.parsePauses(System.getenv("VEGGUR_ACTIVE_PAUSES"));
        String jit = System.getenv("VEGGUR_ACTIVE_JIT");
        if ("tiered".equals(jit)) {
            bench.jvmFlags = C1_FLAGS.stream().filter(flag -> !flag.startsWith("-XX:TieredStopAtLevel")).toList();
        } else if (jit != null && !jit.isBlank() && !jit.equals("c1")) {
            throw new IllegalArgumentException("VEGGUR_ACTIVE_JIT: c1 (the default) or tiered, not '" + jit + "'");
        }
        // Ctrl-C too must not leave a VM, a container, a monitoring VM, a tracer or a RAM file behind.
        Thread hook = new Thread(bench::cleanUp);
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            bench.run(rounds);
        } finally {
            bench.cleanUp();
            Runtime.getRuntime().removeShutdownHook(hook);
        }
    }

    /** VEGGUR_ACTIVE_PAUSES: {@code flavor=seconds,...}. */
    private void parsePauses(String setting) {
        if (setting == null || setting.isBlank()) {
            return;
        }
        for (String item : setting.split(",")) {
            String[] pair = item.strip().split("=", 2);
            Flavor flavor = Arrays.stream(Flavor.values()).filter(f -> f.key().equals(pair[0].strip())).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("VEGGUR_ACTIVE_PAUSES: no flavor '" + pair[0] + "'"));
            int seconds = pair.length == 2 ? Integer.parseInt(pair[1].strip()) : -1;
            if (seconds < 1 || seconds > 3600) {
                throw new IllegalArgumentException("VEGGUR_ACTIVE_PAUSES: '" + item + "' wants 1 to 3600 seconds");
            }
            pausesMs.put(flavor, seconds * 1000);
            piPausesMs.put(flavor, seconds * 1000);
            pausesSet.add(flavor);
        }
    }

    private void run(int rounds) throws Exception {
        String load = loadAverage();
        String dockerHost = required("VEGGUR_DOCKER_HOST", SCRIPT);
        Path monitorImage = Path.of(required("VEGGUR_MONITOR_IMAGE", SCRIPT)).toAbsolutePath();
        // Network endpoints on loopback; network environments admit loopback clients by default.
        agent = Agent.start(new Agent.Options(new VeggurHome(home), "127.0.0.1", 0, dockerHost,
                required("VEGGUR_IMAGE", SCRIPT), InetAddress.getLoopbackAddress(), monitorImage));
        AgentClient operator = new AgentClient(URI.create(agent.url()),
                Files.readString(home.resolve("agent/operator.token")).strip());
        AgentClient owner = tenant(operator, NAME);
        tenants.put(Flavor.CONTAINER, owner);
        tenants.put(Flavor.VM, tenant(operator, NAME + "-vm"));
        tenants.put(Flavor.NETWORK, tenant(operator, NAME + "-net"));
        progress("booting a 256 MiB VM");
        owner.post("/v1/vms", owner.json().put("name", NAME).put("memoryMib", 256));
        VmInfo vm = new VmManager(new VeggurHome(home)).list().getFirst();   // the only VM in this home so far
        var directory = new VeggurHome(home).vm(vm.name());
        input = new GuestConsole(directory);
        console = new ConsoleTail(directory.consoleLog());
        console.await(0, Pattern.compile("VEGGUR-READY"), Duration.ofSeconds(120));
        sockets.put(Flavor.NATIVE, vm.socket());

        for (Flavor flavor : List.of(Flavor.VM, Flavor.NETWORK)) {
            owner.put(VM + "/grants/" + tenantName(flavor), owner.json().put("role", "trace"));
        }
        owner.put(VM + "/environment", owner.json().put("flavor", "container").put("role", "trace"));
        sockets.put(Flavor.CONTAINER, "/vmi/vmi.sock");
        progress("booting the monitoring VM (vm environment)");
        JsonNode monitor = tenants.get(Flavor.VM).put(VM + "/environment",
                tenants.get(Flavor.VM).json().put("flavor", "vm").put("role", "trace"));
        sockets.put(Flavor.VM, monitor.path("endpoint").asText());
        monitorAccel = new VmManager(new VeggurHome(home)).list().stream().filter(v -> v.name().startsWith("mon-"))
                .map(VmInfo::accel).findFirst().orElse("unknown");
        JsonNode network = tenants.get(Flavor.NETWORK).put(VM + "/environment",
                tenants.get(Flavor.NETWORK).json().put("flavor", "network").put("role", "trace"));
        String endpoint = network.path("endpoint").asText();
        if (!endpoint.matches("tls://127\\.0\\.0\\.1:\\d+")) {
            throw new IOException("unexpected network endpoint '" + endpoint + "' (want TLS on loopback)");
        }
        sockets.put(Flavor.NETWORK, endpoint + "?identity=" + writeIdentity(network));

        // Each flavor's time to arm, which sets its pause; the first probe also fills the flavor's profile cache.
        for (Flavor flavor : Flavor.values()) {
            long[] ms = {probe(flavor), probe(flavor)};
            probesMs.put(flavor, ms);
            if (!pausesSet.contains(flavor)) {
                pausesMs.put(flavor, Math.max(MIN_PAUSE_MS, (int) Math.ceil((1.5 * ms[1] + 4000) / 1000.0) * 1000));
                piPausesMs.put(flavor, Math.max(MIN_PAUSE_MS, (int) Math.ceil((ms[1] + 4000) / 1000.0) * 1000));
            }
            progress("%s: probe %.1f s, then %.1f s; pause %d s (getpid), %d s (pi)", flavor.key(), ms[0] / 1e3,
                    ms[1] / 1e3, pausesMs.get(flavor) / 1000, piPausesMs.get(flavor) / 1000);
        }

        // Warm-up, not reported: the workloads' first runs, and a short monitored run natively and in the container
        // (the guest's first breakpoint hits). The vm and network flavors are left out: their pauses are long, and
        // their tools' first sessions (cold and warm) were the probes.
        progress("warming up");
        unmonitoredGetpid();
        unmonitoredPi();
        for (Flavor flavor : List.of(Flavor.NATIVE, Flavor.CONTAINER)) {
            monitoredGetpid(flavor, 20);
        }

        Flavor[] flavors = Flavor.values();
        long[][] getpidBase = new long[rounds][];
        GetpidRun[][] getpid = new GetpidRun[rounds][flavors.length];
        long[][] piBase = new long[rounds][];
        PiRun[][] pi = new PiRun[rounds][flavors.length];
        for (int r = 0; r < rounds; r++) {
            // The order rotates round by round, so a drift in machine load does not favour one flavor.
            List<Flavor> order = new ArrayList<>();
            for (int i = 0; i < flavors.length; i++) {
                order.add(flavors[(r + i) % flavors.length]);
            }
            getpidBase[r] = new long[BASELINE_RUNS];
            for (int i = 0; i < BASELINE_RUNS; i++) {
                getpidBase[r][i] = unmonitoredGetpid();
            }
            for (Flavor flavor : order) {
                GetpidRun run = monitoredGetpid(flavor, calls);
                getpid[r][flavor.ordinal()] = run;
                progress("round %d getpid %s: guest %.1f ms, wall %.1f ms, %d hits, %d expired (unmonitored %.3f ms)",
                        r + 1, flavor.key(), run.guestNs() / 1e6, run.wallNs() / 1e6, run.hits(), run.expired(),
                        median(getpidBase[r]) / 1e6);
            }
            piBase[r] = new long[BASELINE_RUNS];
            for (int i = 0; i < BASELINE_RUNS; i++) {
                piBase[r][i] = unmonitoredPi();
            }
            for (Flavor flavor : order) {
                PiRun run = monitoredPi(flavor, piPausesMs.get(flavor));
                if (!run.armedBefore()) {
                    // Flagged in the report if it happens again.
                    progress("round %d pi %s: the tracer armed after pi started; once more with a %d s sleep", r + 1,
                            flavor.key(), pausesMs.get(flavor) / 1000);
                    piRedone.merge(flavor, 1, Integer::sum);
                    run = monitoredPi(flavor, pausesMs.get(flavor));
                }
                pi[r][flavor.ordinal()] = run;
                progress("round %d pi %s: guest %.1f ms, wall %.1f ms, %d events (%d while pi ran), armed before: %s, "
                        + "%d expired", r + 1, flavor.key(), run.guestNs() / 1e6, run.wallNs() / 1e6, run.events(),
                        run.eventsWhileRunning(), run.armedBefore(), run.expired());
            }
        }
        report(load, dockerHost, vm, getpidBase, getpid, piBase, pi);
    }

    private AgentClient tenant(AgentClient operator, String name) throws IOException {
        String token = operator.post("/v1/tenants", operator.json().put("name", name)).path("token").asText();
        return new AgentClient(URI.create(agent.url()), token);
    }

    private static String tenantName(Flavor flavor) {
        return switch (flavor) {
            case VM -> NAME + "-vm";
            case NETWORK -> NAME + "-net";
            default -> NAME;
        };
    }

    /** The issued identity as `veggur env create --identity FILE` writes it: FILE and FILE.password, both 0600. */
    private Path writeIdentity(JsonNode environment) throws IOException {
        Path file = home.resolve("bench-net.p12");
        AgentClient.writeIdentity(file, environment);
        return file;
    }

    /** The whole duration (ms) of the probe in this flavor: tool start, arming, 1 s, exit (and the exec's overhead). */
    private long probe(Flavor flavor) throws Exception {
        long start = System.nanoTime();
        Tracer.Output output = start(flavor, PROBE, Stop.NONE).finish();
        long ms = (System.nanoTime() - start) / 1_000_000;
        if (output.exitCode() != 0) {
            throw new IOException(flavor.key() + " probe: exit " + output.exitCode() + ": " + output.stderr());
        }
        return ms;
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
     * The workload prints its pid, pauses (the flavor's pause), then makes its calls; the tracer is started on the pid
     * right away and arms during the pause. Wall time: from the start line to the result line as the host saw them,
     * minus the pause.
     */
    private GetpidRun monitoredGetpid(Flavor flavor, int n) throws Exception {
        int pause = pausesMs.get(flavor);
        int mark = console.size();
        input.type("veggur-getpid " + n + " " + pause);
        ConsoleTail.Line start = console.await(mark, Pattern.compile("GETPID-START pid=(\\d+) calls=" + n + "\\b"), RUN_TIMEOUT);
        String pid = start.matcher().group(1);
        List<String> args = List.of("vmi", "break", "__x64_sys_getpid", "--pid", pid, "--count", Integer.toString(n),
                "--seconds", Integer.toString(TRACER_SECONDS));
        Tracer tracer = start(flavor, args, Stop.NONE);
        ConsoleTail.Line done = console.await(start.index() + 1, getpidDone(n), RUN_TIMEOUT);
        Tracer.Output output = tracer.finish();
        List<String> lines = output.stdout().lines().toList();
        int hits = (int) lines.stream().filter(l -> l.startsWith("hit ")).count();
        String last = lines.isEmpty() ? "" : lines.getLast();
        if (output.exitCode() != 0 || !last.equals(n + " hits") || hits != n) {
            throw new IOException(flavor.key() + " getpid tracer: exit " + output.exitCode() + ", " + hits
                    + " hit lines, last line '" + last + "' (want '" + n + " hits'; too short a pause to arm? "
                    + "see VEGGUR_ACTIVE_PAUSES): " + output.stderr());
        }
        long armedMs = output.armedAt() < 0 ? -1 : Math.round((output.armedAt() - start.seen()) / 1e6);
        return new GetpidRun(Long.parseLong(done.matcher().group(2)), done.seen() - start.seen() - pause * 1_000_000L,
                hits, armedMs, output.expired());
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
     * The tracer starts, then the guest sleeps the flavor's pause (the tracer arms meanwhile), prints a start line and
     * runs pi. Wall time: start line to result line as the host saw them (fork and exec of veggur-pi included, as in
     * the unmonitored runs).
     */
    private PiRun monitoredPi(Flavor flavor, int pauseMs) throws Exception {
        List<String> args = List.of("vmi", "trace", "sched", "--count", "1000000000", "--seconds",
                Integer.toString(TRACER_SECONDS), "--json");
        int mark = console.size();
        Stop stop = switch (flavor) {
            case CONTAINER -> Stop.PID_FILE;
            case VM -> Stop.MARK;
            default -> Stop.NONE;   // a host process: SIGTERM through its handle
        };
        Tracer tracer = start(flavor, args, stop);
        int pauseSeconds = (pauseMs + 999) / 1000;
        input.type("sleep " + pauseSeconds + "; echo " + PI_START + "; veggur-pi " + digits
                + (stop == Stop.MARK ? "; " + PI_END_MARK : ""));
        ConsoleTail.Line start = console.await(mark, Pattern.compile(PI_START), RUN_TIMEOUT);
        ConsoleTail.Line done = console.await(start.index() + 1, piDone(digits), RUN_TIMEOUT);
        tracer.stop();
        Tracer.Output output = tracer.finish();
        if (stop == Stop.MARK) {
            console.await(done.index() + 1, PI_END_DONE, RUN_TIMEOUT);
        }
        // Killed by SIGTERM (143) is how it ends; 0 would mean it stopped by itself.
        if (output.exitCode() != 143 && output.exitCode() != 0) {
            throw new IOException(flavor.key() + " sched tracer: exit " + output.exitCode() + ": " + output.stderr());
        }
        List<JsonNode> events = new ArrayList<>();
        for (String line : output.stdout().lines().toList()) {
            if (line.startsWith("{")) {
                events.add(JSON.readTree(line));
            }
        }
        int piPid = events.stream().filter(e -> e.path("nextComm").asText().equals("veggur-pi"))
                .mapToInt(e -> e.path("nextPid").asInt()).findFirst().orElse(-1);
        if (piPid < 0) {
            throw new IOException(flavor.key() + " sched tracer never saw veggur-pi (" + events.size() + " events)");
        }
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
                first < 0 ? 0 : last - first + 1, armed, output.expired());
    }

    // ---- tracers: a host subprocess or an exec in the environment

    /** How a tracer that runs until stopped is stopped; NONE: it ends by itself (or, on the host, by its handle). */
    private enum Stop { NONE, PID_FILE, MARK }

    private interface Tracer {
        /**
         * armedAt: System.nanoTime() when the tool said it had armed (host flavors only; -1 if unknown). expired: how
         * many of its events the host let go on without its resolution.
         */
        record Output(int exitCode, String stdout, String stderr, long armedAt, int expired) {}

        /** Asks a tracer that runs until stopped to stop (SIGTERM); a no-op where it stops itself. */
        void stop() throws Exception;

        Output finish() throws Exception;
    }

    private Tracer start(Flavor flavor, List<String> args, Stop stop) throws IOException {
        return flavor.onHost() ? startOnHost(flavor, args) : startInEnvironment(flavor, args, stop);
    }

    private Tracer startOnHost(Flavor flavor, List<String> args) throws IOException {
        long run = tracerRuns.incrementAndGet();
        Path exceptions = home.resolve("tracer-" + run + ".exceptions");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        command.addAll(jvmFlags);
        command.add("-Xlog:exceptions=info:file=" + exceptions);
        command.addAll(List.of("-jar", cliJar.toString()));
        command.addAll(args);
        command.addAll(List.of("--socket", sockets.get(flavor)));
        // Its output (a line per event) goes to a file, read when it is done: no consumer wakes up per event on the host
        // meanwhile, so the figure is the tool alone. (With a pipe read line by line by this JVM, the native side came
        // out about 20 % slower than the container in trace sched runs.)
        Path stdoutFile = home.resolve("tracer-" + run + ".out");
        ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(stdoutFile.toFile());
        // Its profile cache stays in the throw-away home instead of root's ~/.cache, one per flavor (two clients).
        builder.environment().put("VEGGUR_CACHE", home.resolve("cache-" + flavor.key()).toString());
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
                    throw new IOException(flavor.key() + " tracer did not end: " + String.join(" ", command));
                }
                err.get(10, TimeUnit.SECONDS);
                processes.remove(process);
                String stdout = Files.readString(stdoutFile);
                Files.delete(stdoutFile);
                Set<String> expired = new HashSet<>();
                if (Files.exists(exceptions)) {
                    Matcher m = EXPIRED_EVENT.matcher(Files.readString(exceptions, StandardCharsets.ISO_8859_1));
                    while (m.find()) {
                        expired.add(m.group(1));
                    }
                    Files.delete(exceptions);
                }
                return new Output(process.exitValue(), stdout, stderr.toString(), armedAt.get(), expired.size());
            }
        };
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

    /**
     * The tracer exec'd through the API, wrapped in a shell ({@code sh -c SCRIPT sh JAVA ARGS...}, busybox in both the
     * tools image and the monitoring VM) that counts its expired events from its exception log when it is done and
     * says so as the last stderr line; and, per {@code stop}, notes its pid (a later exec kills it) or stops it itself
     * once its output names the guest's end mark.
     */
    private Tracer startInEnvironment(Flavor flavor, List<String> args, Stop stop) {
        String countExpired = "n=$(grep -o 'event [0-9]* is not waiting for you' " + EXCEPTION_LOG
                + " 2>/dev/null | sort -u | wc -l); echo \"" + EXPIRED_TAG + "$n\" >&2; rm -f " + EXCEPTION_LOG + "*; ";
        String script = "rm -f " + EXCEPTION_LOG + "* " + TRACE_OUT + "; " + switch (stop) {
            case NONE -> "\"$@\"; rc=$?; ";
            // $! is the JVM itself: `kill` on it stops exactly this tracer.
            case PID_FILE -> "\"$@\" & echo $! > " + PID_FILE + "; wait $!; rc=$?; ";
            // Output to a file polled every second; a zombie (state Z) counts as ended.
            case MARK -> "\"$@\" > " + TRACE_OUT + " & t=$!; "
                    + "while read -r _ _ s _ < /proc/$t/stat && [ \"$s\" != Z ]; do "
                    + "if tail -c 262144 " + TRACE_OUT + " | grep -qF '\"nextComm\":\"veggur-getpid\"'; then "
                    + "kill -TERM $t; break; fi; sleep 1; done 2>/dev/null; "
                    + "wait $t; rc=$?; cat " + TRACE_OUT + "; rm -f " + TRACE_OUT + "; ";
        } + countExpired + "exit $rc";
        List<String> argv = new ArrayList<>(List.of("sh", "-c", script, "sh", "/opt/veggur/jre/bin/java"));
        argv.addAll(jvmFlags);
        argv.add("-Xlog:exceptions=info:file=" + EXCEPTION_LOG);
        // Required in the container, not a tuning: /tmp is noexec there, so junixsocket's library comes from the image.
        // The monitoring VM has the same file (and does not need it for its serial port); the same command line in both.
        argv.addAll(List.of("-Dorg.newsclub.net.unix.library.override=/opt/veggur/lib/libjunixsocket-native.so",
                "-jar", "/opt/veggur/veggur.jar"));
        argv.addAll(args);
        argv.addAll(List.of("--socket", sockets.get(flavor)));
        CompletableFuture<BenchHost.EnvRun> result = CompletableFuture.supplyAsync(() -> {
            try {
                return exec(flavor, argv);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }, background);
        return new Tracer() {
            @Override
            public void stop() throws Exception {
                if (stop != Stop.PID_FILE) {
                    return;
                }
                BenchHost.EnvRun kill = exec(flavor, List.of("sh", "-c", "kill -TERM \"$(cat " + PID_FILE + ")\""));
                if (kill.exitCode() != 0) {
                    throw new IOException("could not stop the " + flavor.key() + " tracer: " + kill.stderr());
                }
            }

            @Override
            public Output finish() throws Exception {
                BenchHost.EnvRun r = result.get(EXEC_TIMEOUT_SECONDS + 30, TimeUnit.SECONDS);
                if (r.timedOut() || r.truncated()) {
                    throw new IOException(flavor.key() + " tracer " + (r.timedOut() ? "timed out" : "output truncated"));
                }
                List<String> stderr = new ArrayList<>(r.stderr().lines().toList());
                int expired = -1;
                if (!stderr.isEmpty() && stderr.getLast().startsWith(EXPIRED_TAG)) {
                    expired = Integer.parseInt(stderr.removeLast().substring(EXPIRED_TAG.length()).strip());
                }
                if (expired < 0) {
                    throw new IOException(flavor.key() + " tracer: no expiry count (exit " + r.exitCode()
                            + "): " + String.join("\n", stderr));
                }
                return new Output(r.exitCode(), r.stdout(), String.join("\n", stderr), -1, expired);
            }
        };
    }

    /** Runs argv in the flavor's environment through the API. */
    private BenchHost.EnvRun exec(Flavor flavor, List<String> argv) throws IOException {
        return BenchHost.exec(tenants.get(flavor), VM, argv, EXEC_TIMEOUT_SECONDS);
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

    private static final String[] COLUMNS = {"getpid slowdown, wall", "getpid slowdown, guest clock", "µs per event, wall",
            "µs per event, guest clock", "pi slowdown, wall", "pi slowdown, guest clock"};

    private void report(String loadBefore, String dockerHost, VmInfo vm, long[][] getpidBase, GetpidRun[][] getpid,
                        long[][] piBase, PiRun[][] pi) throws Exception {
        int rounds = getpid.length;
        Flavor[] flavors = Flavor.values();
        System.out.printf("Machine: %d CPUs (%s), host kernel %s, %s, accel %s (the monitoring VM: %s%s), Docker %s, "
                        + "load average %s before, %s after; run time %.1f min%n",
                Runtime.getRuntime().availableProcessors(), cpuModel(), System.getProperty("os.version"),
                BenchHost.qemuVersion(), vm.accel(), monitorAccel,
                "tcg".equals(monitorAccel) ? ", so the vm flavor's tools run emulated" : "", dockerVersion(dockerHost),
                loadBefore, loadAverage(), (System.nanoTime() - STARTED) / 60e9);
        System.out.printf("Settings: %d rounds (flavor order rotating); getpid loop of %d calls; pi of %d digits; "
                        + "unmonitored figures are the median of %d runs per round; tracer JVM flags %s "
                        + "-Xlog:exceptions=info:file=...%n", rounds, calls, digits, BASELINE_RUNS, String.join(" ", jvmFlags));
        System.out.printf("Pauses to arm, getpid / pi, from the probe `%s` (start to exit, first / second run; getpid "
                        + "pause max(8 s, 1.5 × second + 4 s), pi sleep max(8 s, second + 4 s)%s): %s%n%n",
                String.join(" ", PROBE), pausesSet.isEmpty() ? "" : ", or VEGGUR_ACTIVE_PAUSES",
                String.join("; ", Arrays.stream(flavors).map(f -> "%s %d / %d s (probe %.1f / %.1f s%s%s)".formatted(
                        f.key(), pausesMs.get(f) / 1000, piPausesMs.get(f) / 1000, probesMs.get(f)[0] / 1e3,
                        probesMs.get(f)[1] / 1e3, pausesSet.contains(f) ? ", set" : "",
                        piRedone.containsKey(f) ? "; pi runs redone after a late arm: " + piRedone.get(f) : ""))
                        .toList()));

        // Per flavor, figure and round: slowdowns and µs per event on both clocks.
        double[][][] m = new double[flavors.length][COLUMNS.length][rounds];
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
        System.out.println("Medians over the rounds (the ratio rows: median of the per-round ratios; expired: events the "
                + "host let go on after 1 s without the client's answer, summed over the rounds' getpid / pi runs):");
        System.out.println();
        System.out.println("| flavor | " + String.join(" | ", COLUMNS) + " | expired |");
        System.out.println("|--------|------:|------:|------:|------:|------:|------:|------:|");
        for (Flavor f : flavors) {
            double[][] v = m[f.ordinal()];
            int expiredGetpid = 0;
            int expiredPi = 0;
            for (int r = 0; r < rounds; r++) {
                expiredGetpid += getpid[r][f.ordinal()].expired();
                expiredPi += pi[r][f.ordinal()].expired();
            }
            System.out.printf("| %s | **%.0f×** | %.0f× | **%.0f** | %.0f | **%.1f×** | %.1f× | %d / %d |%n", f.label,
                    median(v[0]), median(v[1]), median(v[2]), median(v[3]), median(v[4]), median(v[5]), expiredGetpid,
                    expiredPi);
        }
        Flavor[][] pairs = {{Flavor.CONTAINER, Flavor.NATIVE}, {Flavor.VM, Flavor.NATIVE}, {Flavor.NETWORK, Flavor.NATIVE},
                {Flavor.NETWORK, Flavor.VM}};
        double[][][] ratios = new double[pairs.length][COLUMNS.length][rounds];
        for (int p = 0; p < pairs.length; p++) {
            for (int k = 0; k < COLUMNS.length; k++) {
                for (int r = 0; r < rounds; r++) {
                    ratios[p][k][r] = m[pairs[p][0].ordinal()][k][r] / m[pairs[p][1].ordinal()][k][r];
                }
            }
            double[][] v = ratios[p];
            System.out.printf("| **%s / %s** | **%.3f** | %.3f | **%.3f** | %.3f | **%.3f** | %.3f | |%n", pairs[p][0].key(),
                    pairs[p][1].key(), median(v[0]), median(v[1]), median(v[2]), median(v[3]), median(v[4]), median(v[5]));
        }

        System.out.printf("%ngetpid loop, %d calls, per round (ms; wall = host clock, start line to result line minus the "
                + "flavor's pause; stopped = (wall − guest) / calls, the part of an event during which the VM stood "
                + "stopped; armed: from the start line to the tool's \"breakpoint set\", host flavors only):%n%n", calls);
        System.out.println("| round | flavor | guest | wall | slowdown, wall | / native, wall | µs per event, wall "
                + "| stopped µs per event | armed after | expired |");
        System.out.println("|------:|--------|------:|------:|------:|------:|------:|------:|------:|------:|");
        for (int r = 0; r < rounds; r++) {
            System.out.printf("| %d | unmonitored (guest; %d runs) | %s | | | | | | | |%n", r + 1, BASELINE_RUNS,
                    String.join(", ", Arrays.stream(getpidBase[r]).mapToObj(ns -> "%.3f".formatted(ns / 1e6)).toList()));
            for (Flavor f : flavors) {
                GetpidRun g = getpid[r][f.ordinal()];
                System.out.printf("| %d | %s | %.0f | %.0f | %.0f× | %.3f | %.0f | %.0f | %s | %d |%n", r + 1, f.key(),
                        g.guestNs() / 1e6, g.wallNs() / 1e6, m[f.ordinal()][0][r],
                        m[f.ordinal()][0][r] / m[Flavor.NATIVE.ordinal()][0][r], m[f.ordinal()][2][r],
                        (g.wallNs() - g.guestNs()) / (double) calls / 1e3, g.armedMs() < 0 ? "–" : g.armedMs() + " ms",
                        g.expired());
            }
        }

        System.out.printf("%npi, %d digits, per round (ms; wall = host clock, from the shell's start line to the result "
                + "line, so fork and exec of veggur-pi included; events: context switches the tracer saw in the whole run / "
                + "from the first that involves pi to the last):%n%n", digits);
        System.out.println("| round | flavor | guest | wall | slowdown, wall | / native, wall | events | armed before pi "
                + "| expired |");
        System.out.println("|------:|--------|------:|------:|------:|------:|------:|------:|------:|");
        for (int r = 0; r < rounds; r++) {
            System.out.printf("| %d | unmonitored (guest; %d runs) | %s | | | | | | |%n", r + 1, BASELINE_RUNS,
                    String.join(", ", Arrays.stream(piBase[r]).mapToObj(ns -> "%.1f".formatted(ns / 1e6)).toList()));
            for (Flavor f : flavors) {
                PiRun p = pi[r][f.ordinal()];
                System.out.printf("| %d | %s | %.0f | %.0f | %.1f× | %.3f | %d / %d | %s | %d |%n", r + 1, f.key(),
                        p.guestNs() / 1e6, p.wallNs() / 1e6, m[f.ordinal()][4][r],
                        m[f.ordinal()][4][r] / m[Flavor.NATIVE.ordinal()][4][r], p.events(), p.eventsWhileRunning(),
                        p.armedBefore() ? "yes" : "**no (armed late)**", p.expired());
            }
        }
        System.out.println();
        for (Flavor f : flavors) {
            double[] perSwitch = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                PiRun p = pi[r][f.ordinal()];
                perSwitch[r] = p.eventsWhileRunning() == 0 ? Double.NaN : (p.wallNs() - median(piBase[r])) / p.eventsWhileRunning() / 1e3;
            }
            System.out.printf("Cross-check, %s: pi's extra wall time per context-switch event while it ran: %s µs%n", f.key(),
                    String.join(", ", Arrays.stream(perSwitch).mapToObj(v -> "%.0f".formatted(v)).toList()));
        }
    }

    // ---- set-up and clean-up

    private static void progress(String format, Object... args) {
        System.err.printf("activebench [%4d s]: %s%n", (System.nanoTime() - STARTED) / 1_000_000_000L, format.formatted(args));
    }

    /**
     * Idempotent: host tracers still running (by their process handles), the grantees' environments (monitoring VM,
     * network endpoint), then the rest as {@link BenchHost#tearDown} does it (the owner's container environment, the
     * VM, the agent, VMs left in the home such as a monitoring VM the API could not remove, the home).
     */
    private void cleanUp() {
        if (!cleaned.compareAndSet(false, true)) {
            return;
        }
        java.util.function.Consumer<String> log = message -> progress("%s", message);
        for (Process process : processes) {
            BenchHost.attempt(log, "stop tracer " + process.pid(), () -> {
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
        for (Flavor flavor : List.of(Flavor.VM, Flavor.NETWORK)) {
            AgentClient tenant = tenants.get(flavor);
            if (tenant != null) {
                BenchHost.attempt(log, "delete the " + flavor.key() + " environment", () -> {
                    if (!tenant.get("/v1/environments").isEmpty()) {
                        tenant.delete(VM + "/environment");
                    }
                });
            }
        }
        BenchHost.tearDown(tenants.get(Flavor.CONTAINER), VM, agent, home, log);
    }
}
