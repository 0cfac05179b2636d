package io.veggur.bench;

import static io.veggur.bench.BenchHost.cpuModel;
import static io.veggur.bench.BenchHost.dockerVersion;
import static io.veggur.bench.BenchHost.loadAverage;
import static io.veggur.bench.BenchHost.median;
import static io.veggur.bench.BenchHost.qemuVersion;
import static io.veggur.bench.BenchHost.required;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.veggur.agent.Agent;
import io.veggur.agent.client.AgentClient;
import io.veggur.agent.client.AgentException;
import io.veggur.agent.environment.ContainerEnvironments;
import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The paper's figure 4 ("introspection performance": 5000 process lists, every cache flushed before each) across every
 * flavor, each as a ratio to Native, plus the deployment time of each environment flavor, in one run through an
 * in-process agent in a throw-away home: one 256 MiB VM (1 vCPU, TCG), everything through the REST API as tenants
 * would use it.
 *
 * <p>Flavors, all running the same {@code veggur vmi bench --count N --json} with the same JVM flags ({@link #jvmFlags}):
 * <ul>
 *   <li><b>Native</b>: a host {@code java} subprocess on the VM's own socket; memory through the zero-copy descriptor.</li>
 *   <li><b>NativeSocket</b>: the same with {@code --no-descriptor}: reads through the UNIX socket with the client page
 *       cache. The paper's Native read through a socket (KVMi), so this is the like-for-like baseline for the network
 *       rows.</li>
 *   <li><b>FromDocker</b>: exec'd through the API in a container environment, on {@code /vmi/vmi.sock} (descriptor).</li>
 *   <li><b>Virtio</b>: exec'd through the API in a monitoring-VM environment (TCG), on {@code serial:io.veggur.vmi};
 *       few lists (each takes far longer).</li>
 *   <li><b>NetCoHost</b>: from network namespace {@code vgb-co} (10.233.1.2) over its veth pair, mutual TLS to the
 *       network environment's endpoint.</li>
 *   <li><b>NetRemote</b>: the same from namespace {@code vgb-re} (10.233.2.2) through {@link DelayProxy}, which delays
 *       every chunk by a fixed time each way (no netem on these hosts).</li>
 * </ul>
 * Three tenants, one per environment flavor, because a tenant has at most one environment per VM: {@code bench} owns
 * the VM and has the container environment, {@code bench-vm} and {@code bench-net} have read grants and the
 * monitoring-VM and network environments. bench-net's one certificate admits both namespaces' addresses, so NetCoHost
 * and NetRemote use the same endpoint and identity and differ only in the path (direct, or through the delay line).
 *
 * <p>List runs alternate between flavors in rounds (forward order in even rounds, reversed in odd ones, so a drift in
 * machine load favours none); each flavor's ratio to Native (and to NativeSocket) is taken per round, then its median.
 * Deployment: PUT environment, then {@code veggur vmi info} through that flavor (exec in the container or the
 * monitoring VM; for the network flavor from vgb-co with the issued identity) exits 0, timed together, then DELETE;
 * one unreported warm-up round per flavor first.
 *
 * <p>Usage: {@code FlavorBenchmark CLI_JAR [ROUNDS=5] [--lists N] [--vm-lists N] [--net-lists N] [--remote-lists N]
 * [--delay-us N] [--deploy-rounds N] [--vm-deploy-rounds N] [--jit tiered|c1] [--flavors A,B,...]} with VEGGUR_DOCKER_HOST, VEGGUR_IMAGE
 * and VEGGUR_GUEST_DIR set, and VEGGUR_MONITOR_IMAGE for the vm flavor (bench/flavors.sh does all of it). A flavor the
 * agent does not offer (501) is reported as unavailable; one that fails is reported as failed and the run goes on
 * (exit status 1 at the end). Progress goes to stderr, the markdown report to stdout.
 */
public final class FlavorBenchmark {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SCRIPT = "bench/flavors.sh";
    private static final String OWNER = "bench";
    private static final String VM_TENANT = "bench-vm";
    private static final String NET_TENANT = "bench-net";
    private static final String VM = AgentClient.vmPath(OWNER, OWNER);
    /** Below the agent's 10-minute cap on one exec. */
    private static final int EXEC_TIMEOUT_SECONDS = 590;
    private static final Duration RUN_TIMEOUT = Duration.ofMinutes(30);
    private static final Duration INFO_TIMEOUT = Duration.ofMinutes(3);
    private static final String SERIAL_ENDPOINT = "serial:io.veggur.vmi";
    private static final int PING_COUNT = 500;

    /**
     * The JVM flags of every list run on every side: the image launcher's (container/image/veggur) minus its paths,
     * with CDS off as EnvironmentBenchmark has it (the image's archive cannot be mapped by the host JDK; CDS only
     * changes start-up, which the figures exclude). The launcher stops at C1, which suits short CLI runs but not a
     * run of thousands of lists, and TLS in particular: the JDK's AES-GCM intrinsics are C2's, so with C1 only a
     * network list took 35-37 ms instead of 7 ms here. Hence by default full tiered compilation; {@code --jit c1} gives
     * the launcher's flags exactly.
     */
    private static List<String> jvmFlags(boolean c1Only) {
        List<String> flags = new ArrayList<>(List.of("--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow"));
        if (c1Only) {
            flags.add("-XX:TieredStopAtLevel=1");
        }
        flags.addAll(List.of("-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xshare:off"));
        return List.copyOf(flags);
    }
    /** Required in the container, not a tuning: /tmp is noexec there, so junixsocket's library comes from the image. */
    private static final List<String> IMAGE_JAVA = List.of("/opt/veggur/jre/bin/java");
    private static final List<String> IMAGE_JAR = List.of(
            "-Dorg.newsclub.net.unix.library.override=/opt/veggur/lib/libjunixsocket-native.so", "-jar",
            "/opt/veggur/veggur.jar");

    enum Flavor {
        NATIVE("Native", "host subprocess, the VM's own socket, zero-copy descriptor", "1 (baseline)"),
        NATIVE_SOCKET("NativeSocket", "host subprocess, the VM's own socket, `--no-descriptor` (UNIX socket reads, "
                + "client page cache)", "(the paper's Native read through a socket)"),
        FROM_DOCKER("FromDocker", "container environment, exec through the API, `/vmi/vmi.sock` (descriptor)", "1.30"),
        VIRTIO("Virtio", "monitoring-VM environment (TCG), exec through the API, `serial:io.veggur.vmi`", "3.63"),
        NET_COHOST("NetCoHost", "network environment, mutual TLS from namespace vgb-co over veth", "> 25"),
        NET_REMOTE("NetRemote", "network environment, mutual TLS from namespace vgb-re through the delay line", "> 25");

        final String label;
        final String how;
        final String paper;

        Flavor(String label, String how, String paper) {
            this.label = label;
            this.how = how;
            this.paper = paper;
        }

        boolean network() {
            return this == NET_COHOST || this == NET_REMOTE;
        }

        static Flavor parse(String text) {
            for (Flavor flavor : values()) {
                if (flavor.label.equalsIgnoreCase(text.strip()) || flavor.name().equalsIgnoreCase(text.strip())) {
                    return flavor;
                }
            }
            throw new IllegalArgumentException("unknown flavor '" + text + "' (" + Arrays.stream(values())
                    .map(f -> f.label).toList() + ")");
        }
    }

    /** The environment flavors whose deployment is timed (the network one from vgb-co). */
    private static final List<Flavor> DEPLOYED = List.of(Flavor.FROM_DOCKER, Flavor.VIRTIO, Flavor.NET_COHOST);

    record Settings(int rounds, int lists, int vmLists, int netLists, int remoteLists, long delayMicros,
                    int deployRounds, int vmDeployRounds, Set<Flavor> flavors, boolean c1Only) {
        static Settings parse(String[] args) {
            int rounds = 5;
            int lists = 5000;
            int vmLists = 200;
            int netLists = 5000;
            int remoteLists = 2000;
            long delay = 250;
            int deployRounds = 5;
            int vmDeployRounds = 3;
            Set<Flavor> flavors = EnumSet.allOf(Flavor.class);
            boolean c1Only = false;
            int i = 1;
            if (i < args.length && !args[i].startsWith("--")) {
                rounds = Integer.parseInt(args[i++]);
            }
            for (; i < args.length; i += 2) {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(args[i] + " needs a value");
                }
                String value = args[i + 1];
                switch (args[i]) {
                    case "--lists" -> lists = Integer.parseInt(value);
                    case "--vm-lists" -> vmLists = Integer.parseInt(value);
                    case "--net-lists" -> netLists = Integer.parseInt(value);
                    case "--remote-lists" -> remoteLists = Integer.parseInt(value);
                    case "--delay-us" -> delay = Long.parseLong(value);
                    case "--deploy-rounds" -> deployRounds = Integer.parseInt(value);
                    case "--vm-deploy-rounds" -> vmDeployRounds = Integer.parseInt(value);
                    case "--jit" -> c1Only = switch (value) {
                        case "c1" -> true;
                        case "tiered" -> false;
                        default -> throw new IllegalArgumentException("--jit takes c1 or tiered");
                    };
                    case "--flavors" -> {
                        flavors = EnumSet.of(Flavor.NATIVE);   // the baseline of every ratio
                        for (String name : value.split(",")) {
                            flavors.add(Flavor.parse(name));
                        }
                    }
                    default -> throw new IllegalArgumentException("unknown option " + args[i]);
                }
            }
            if (rounds < 1 || lists < 1 || vmLists < 1 || netLists < 1 || remoteLists < 1 || delay < 0
                    || deployRounds < 0 || vmDeployRounds < 0) {
                throw new IllegalArgumentException("rounds and list counts must be at least 1, the rest at least 0");
            }
            return new Settings(rounds, lists, vmLists, netLists, remoteLists, delay, deployRounds, vmDeployRounds,
                    flavors, c1Only);
        }

        int lists(Flavor flavor) {
            return switch (flavor) {
                case NATIVE, NATIVE_SOCKET, FROM_DOCKER -> lists;
                case VIRTIO -> vmLists;
                case NET_COHOST -> netLists;
                case NET_REMOTE -> remoteLists;
            };
        }

        int deployRounds(Flavor flavor) {
            return flavor == Flavor.VIRTIO ? vmDeployRounds : deployRounds;
        }

        boolean wantsNetwork() {
            return flavors.contains(Flavor.NET_COHOST) || flavors.contains(Flavor.NET_REMOTE);
        }
    }

    /** One timed deployment: PUT alone, and request to tool connected. */
    record Deployment(long put, long connected) {}

    private final Path home;
    private final Path cliJar;
    private final Path benchJar;
    private final Settings settings;
    private final Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    private Agent agent;
    private String dockerHost;
    private AgentClient owner;
    private AgentClient vmTenant;
    private AgentClient netTenant;
    private BenchNetns cohost;
    private BenchNetns remote;
    private String vmSocket;
    /** The list runs' network environment: its port, identity file, and the delay line's port in vgb-re. */
    private int netPort;
    private Path identity;
    private int proxyPort;
    private final List<String> proxyLines = new CopyOnWriteArrayList<>();
    private String ping;
    /** Flavors the agent does not offer (501), and flavors that failed: why. */
    private final Map<Flavor, String> unavailable = new EnumMap<>(Flavor.class);
    private final Map<Flavor, String> failed = new EnumMap<>(Flavor.class);
    private final List<Process> processes = new CopyOnWriteArrayList<>();
    private final AtomicBoolean cleaned = new AtomicBoolean();
    private int identities;

    private FlavorBenchmark(Path home, Path cliJar, Path benchJar, Settings settings) {
        this.home = home;
        this.cliJar = cliJar;
        this.benchJar = benchJar;
        this.settings = settings;
    }

    public static void main(String[] args) throws Exception {
        Settings settings;
        try {
            if (args.length < 1 || !Files.isRegularFile(Path.of(args[0]))) {
                throw new IllegalArgumentException("give the CLI jar first");
            }
            settings = Settings.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("FlavorBenchmark: " + e.getMessage());
            System.err.println("usage: FlavorBenchmark CLI_JAR [ROUNDS] [--lists N] [--vm-lists N] [--net-lists N] "
                    + "[--remote-lists N] [--delay-us N] [--deploy-rounds N] [--vm-deploy-rounds N] [--jit tiered|c1] "
                    + "[--flavors A,B,...]");
            System.exit(2);
            return;
        }
        Path benchJar = Path.of(FlavorBenchmark.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        FlavorBenchmark bench = new FlavorBenchmark(Files.createTempDirectory("veggur-flavorbench-"),
                Path.of(args[0]).toAbsolutePath(), benchJar, settings);
        // Ctrl-C too must not leave a VM, a monitoring VM, a container, a namespace or a RAM file behind.
        Thread hook = new Thread(bench::cleanUp);
        Runtime.getRuntime().addShutdownHook(hook);
        boolean allRan;
        try {
            allRan = bench.run();
        } finally {
            bench.cleanUp();
            Runtime.getRuntime().removeShutdownHook(hook);
        }
        if (!allRan) {
            System.exit(1);
        }
    }

    /** False if some flavor failed (not merely unavailable). */
    private boolean run() throws Exception {
        String load = loadAverage();
        dockerHost = required("VEGGUR_DOCKER_HOST", SCRIPT);
        String image = required("VEGGUR_IMAGE", SCRIPT);
        String monitorImage = System.getenv("VEGGUR_MONITOR_IMAGE");
        if (settings.wantsNetwork()) {
            // Before the agent: an endpoint's server certificate names the host's addresses as they are then.
            cohost = BenchNetns.create("vgb-co", "10.233.1");
            remote = BenchNetns.create("vgb-re", "10.233.2");
        }
        agent = Agent.start(new Agent.Options(new VeggurHome(home), "127.0.0.1", 0, dockerHost, image,
                InetAddress.getByName("0.0.0.0"),
                monitorImage == null || monitorImage.isBlank() ? null : Path.of(monitorImage).toAbsolutePath()));
        AgentClient operator = new AgentClient(URI.create(agent.url()),
                Files.readString(home.resolve("agent/operator.token")).strip());
        owner = tenant(operator, OWNER);
        vmTenant = tenant(operator, VM_TENANT);
        netTenant = tenant(operator, NET_TENANT);

        progress("booting a 256 MiB VM");
        long bootStart = System.nanoTime();
        owner.post("/v1/vms", owner.json().put("name", OWNER).put("memoryMib", 256));
        VmInfo vm = new VmManager(new VeggurHome(home)).list().getFirst();   // the only VM in this home so far
        new GuestConsole(new VeggurHome(home).vm(vm.name())).awaitLine(Pattern.compile("VEGGUR-READY"), Duration.ofSeconds(120));
        long boot = System.nanoTime() - bootStart;
        vmSocket = vm.socket();
        for (String grantee : List.of(VM_TENANT, NET_TENANT)) {
            owner.put(VM + "/grants/" + grantee, owner.json().put("role", "read"));
        }

        Map<Flavor, List<Deployment>> deployments = deploy();
        JsonNode[][] lists = lists();
        report(load, dockerHost, vm, boot, deployments, lists);
        return failed.isEmpty();
    }

    private AgentClient tenant(AgentClient operator, String name) throws IOException {
        String token = operator.post("/v1/tenants", operator.json().put("name", name)).path("token").asText();
        return new AgentClient(URI.create(agent.url()), token);
    }

    // ---- deployment

    private Map<Flavor, List<Deployment>> deploy() throws Exception {
        Map<Flavor, List<Deployment>> results = new EnumMap<>(Flavor.class);
        // The JVM does not create the CDS archive's directory (and fails to start without it), as ./veggur does.
        Files.createDirectories(home.resolve("cache/cds"));
        List<Flavor> flavors = DEPLOYED.stream().filter(settings.flavors()::contains)
                .filter(f -> settings.deployRounds(f) > 0).toList();
        int rounds = flavors.stream().mapToInt(settings::deployRounds).max().orElse(0);
        for (int round = 0; round <= rounds; round++) {   // round 0: the warm-up, not reported
            for (Flavor flavor : round % 2 == 1 ? flavors : flavors.reversed()) {
                if (round > settings.deployRounds(flavor) || !usable(flavor)) {
                    continue;
                }
                try {
                    Deployment deployment = deployOnce(flavor);
                    if (round > 0) {
                        results.computeIfAbsent(flavor, f -> new ArrayList<>()).add(deployment);
                    }
                    progress("deployment %s %s: PUT %d ms, to vmi info done %d ms", flavor.label,
                            round == 0 ? "warm-up" : round + "/" + settings.deployRounds(flavor), millis(deployment.put()),
                            millis(deployment.connected()));
                } catch (Unavailable e) {
                    unavailable.put(flavor, e.getMessage());
                    progress("%s is unavailable: %s", flavor.label, e.getMessage());
                } catch (Exception e) {
                    fail(flavor, "deployment", e);
                }
            }
        }
        return results;
    }

    private Deployment deployOnce(Flavor flavor) throws Exception {
        AgentClient tenant = tenantOf(flavor);
        long t0 = System.nanoTime();
        JsonNode environment = create(flavor);
        long t1 = System.nanoTime();
        try {
            switch (flavor) {
                case FROM_DOCKER -> exec(tenant, INFO_TIMEOUT, List.of("veggur", "vmi", "info", "--socket", "/vmi/vmi.sock"));
                case VIRTIO -> exec(tenant, INFO_TIMEOUT, List.of("veggur", "vmi", "info", "--socket", SERIAL_ENDPOINT));
                case NET_COHOST -> {
                    // What `veggur env create --identity FILE` does with the answer, then the tool in the namespace.
                    Path file = writeIdentity(environment);
                    List<String> command = new ArrayList<>(List.of(java.toString()));
                    command.addAll(cliFlags());
                    command.addAll(List.of("-jar", cliJar.toString(), "vmi", "info", "--socket",
                            tls(cohost.hostAddress, port(environment), file)));
                    runHost(cohost.exec(command), INFO_TIMEOUT, "vmi info from " + cohost.name);
                }
                default -> throw new IllegalArgumentException(flavor + " has no environment");
            }
            return new Deployment(t1 - t0, System.nanoTime() - t0);
        } finally {
            tenant.delete(VM + "/environment");
        }
    }

    /**
     * A user's short-lived CLI on the host: ./veggur's run_cli flags (C1, serial GC, a dynamic AppCDS archive made on
     * first use; the warm-up round makes it), as the container and the monitoring VM run their image's launcher with
     * its archive.
     */
    private List<String> cliFlags() {
        return List.of("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:+AutoCreateSharedArchive",
                "-XX:SharedArchiveFile=" + home.resolve("cache/cds/veggur.jsa"), "-Xlog:cds=off", "-Xlog:cds+dynamic=off");
    }

    // ---- process lists

    private JsonNode[][] lists() throws Exception {
        Flavor[] flavors = Flavor.values();
        JsonNode[][] results = new JsonNode[settings.rounds()][flavors.length];
        setUpListEnvironments();
        List<Flavor> order = Arrays.stream(flavors).filter(settings.flavors()::contains).toList();
        for (int round = 0; round < settings.rounds(); round++) {
            for (Flavor flavor : round % 2 == 0 ? order : order.reversed()) {
                if (!usable(flavor)) {
                    continue;
                }
                try {
                    JsonNode run = listRun(flavor);
                    results[round][flavor.ordinal()] = run;
                    progress("round %d/%d %s: %.1f us per list (%d lists)", round + 1, settings.rounds(), flavor.label,
                            medianMicros(run), run.path("lists").asInt());
                } catch (Exception e) {
                    if (flavor == Flavor.NATIVE) {
                        throw e;   // no baseline, no ratios
                    }
                    fail(flavor, "process lists", e);
                }
            }
        }
        return results;
    }

    /** One environment per flavor, kept for all rounds, and for NetRemote the delay line (and what it adds). */
    private void setUpListEnvironments() throws Exception {
        for (Flavor flavor : List.of(Flavor.FROM_DOCKER, Flavor.VIRTIO, Flavor.NET_COHOST)) {
            List<Flavor> users = flavor == Flavor.NET_COHOST ? List.of(Flavor.NET_COHOST, Flavor.NET_REMOTE) : List.of(flavor);
            if (users.stream().noneMatch(this::usable)) {
                continue;
            }
            try {
                progress("creating the %s environment for the process lists", flavor == Flavor.NET_COHOST ? "network" : flavor.label);
                JsonNode environment = create(flavor);
                if (flavor == Flavor.NET_COHOST) {
                    netPort = port(environment);
                    identity = writeIdentity(environment);
                }
            } catch (Unavailable e) {
                users.forEach(f -> unavailable.put(f, e.getMessage()));
            } catch (Exception e) {
                for (Flavor user : users) {
                    if (usable(user)) {
                        fail(user, "creating its environment", e);
                    }
                }
            }
        }
        if (usable(Flavor.NET_REMOTE)) {
            try {
                measurePing();
                startProxy();
            } catch (Exception e) {
                fail(Flavor.NET_REMOTE, "starting the delay line", e);
            }
        }
    }

    private JsonNode listRun(Flavor flavor) throws Exception {
        List<String> bench = List.of("vmi", "bench", "--count", Integer.toString(settings.lists(flavor)), "--json",
                "--socket");
        return switch (flavor) {
            case NATIVE, NATIVE_SOCKET -> {
                List<String> command = hostJava();
                command.addAll(bench);
                command.add(vmSocket);
                if (flavor == Flavor.NATIVE_SOCKET) {
                    command.add("--no-descriptor");
                }
                yield JSON.readTree(runHost(command, RUN_TIMEOUT, flavor.label + " vmi bench"));
            }
            case FROM_DOCKER, VIRTIO -> {
                List<String> argv = new ArrayList<>(IMAGE_JAVA);
                argv.addAll(jvmFlags(settings.c1Only()));
                argv.addAll(IMAGE_JAR);
                argv.addAll(bench);
                argv.add(flavor == Flavor.FROM_DOCKER ? "/vmi/vmi.sock" : SERIAL_ENDPOINT);
                yield JSON.readTree(exec(tenantOf(flavor), Duration.ofSeconds(EXEC_TIMEOUT_SECONDS), argv));
            }
            case NET_COHOST, NET_REMOTE -> {
                List<String> command = hostJava();
                command.addAll(bench);
                command.add(flavor == Flavor.NET_COHOST ? tls(cohost.hostAddress, netPort, identity)
                        : tls("127.0.0.1", proxyPort, identity));
                BenchNetns netns = flavor == Flavor.NET_COHOST ? cohost : remote;
                yield JSON.readTree(runHost(netns.exec(command), RUN_TIMEOUT, flavor.label + " vmi bench"));
            }
        };
    }

    private List<String> hostJava() {
        List<String> command = new ArrayList<>(List.of(java.toString()));
        command.addAll(jvmFlags(settings.c1Only()));
        command.addAll(List.of("-jar", cliJar.toString()));
        return command;
    }

    /**
     * What the delay line adds to a TCP round trip, measured from vgb-re: one-byte round trips to an echo server on
     * the host end of its veth pair, directly and through an in-process DelayProxy with the same delay.
     */
    private void measurePing() {
        try (DelayProxy.Echo echo = new DelayProxy.Echo(InetAddress.getByName(remote.hostAddress))) {
            List<String> command = remote.exec(List.of(java.toString(), "--enable-native-access=ALL-UNNAMED",
                    "-XX:+UseSerialGC", "-XX:-UsePerfData", "-cp", benchJar.toString(), DelayProxy.class.getName(), "--ping",
                    remote.hostAddress + ":" + echo.port(), Long.toString(settings.delayMicros()), Integer.toString(PING_COUNT)));
            String out = runHost(command, Duration.ofMinutes(2), "ping through the delay line").strip();
            Matcher m = Pattern.compile("direct=([0-9.]+) delayed=([0-9.]+)").matcher(out);
            ping = m.find() ? "TCP round trip from vgb-re to the host (median of " + PING_COUNT + "): direct " + m.group(1)
                    + " µs, through the delay line " + m.group(2) + " µs" : "ping: unexpected output '" + out + "'";
        } catch (Exception e) {
            ping = "ping failed: " + e.getMessage();
        }
        progress("%s", ping);
    }

    private void startProxy() throws Exception {
        List<String> command = remote.exec(List.of(java.toString(), "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseSerialGC", "-XX:-UsePerfData", "-cp", benchJar.toString(), DelayProxy.class.getName(), "0",
                remote.hostAddress + ":" + netPort, Long.toString(settings.delayMicros())));
        Process proxy = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        processes.add(proxy);
        Thread.ofPlatform().daemon().name("flavorbench-proxy").start(() -> {
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(proxy.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    proxyLines.add(line);
                }
            } catch (IOException e) {
                // the proxy is gone
            }
        });
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (proxyLines.isEmpty()) {
            if (!proxy.isAlive() || System.nanoTime() > deadline) {
                throw new IOException("the delay line did not start in " + remote.name);
            }
            Thread.sleep(20);
        }
        Matcher m = Pattern.compile("^listening 127\\.0\\.0\\.1:(\\d+)$").matcher(proxyLines.getFirst());
        if (!m.find()) {
            throw new IOException("the delay line said '" + proxyLines.getFirst() + "'");
        }
        proxyPort = Integer.parseInt(m.group(1));
        progress("delay line in %s: 127.0.0.1:%d -> %s:%d, %d us each way", remote.name, proxyPort, remote.hostAddress,
                netPort, settings.delayMicros());
    }

    // ---- the API, environments and subprocesses

    private static final class Unavailable extends Exception {
        Unavailable(String message) {
            super(message);
        }
    }

    private AgentClient tenantOf(Flavor flavor) {
        return switch (flavor) {
            case FROM_DOCKER -> owner;
            case VIRTIO -> vmTenant;
            case NET_COHOST, NET_REMOTE -> netTenant;
            default -> throw new IllegalArgumentException(flavor + " has no environment");
        };
    }

    /** PUT of the flavor's environment; 501 (the agent does not offer the flavor) becomes {@link Unavailable}. */
    private JsonNode create(Flavor flavor) throws IOException, Unavailable {
        AgentClient tenant = tenantOf(flavor);
        ObjectNode body = tenant.json().put("role", "read");
        switch (flavor) {
            case FROM_DOCKER -> body.put("flavor", "container");
            case VIRTIO -> body.put("flavor", "vm");
            default -> {
                body.put("flavor", "network");
                body.putArray("clients").add(cohost.clientAddress + "/32").add(remote.clientAddress + "/32");
            }
        }
        try {
            return tenant.put(VM + "/environment", body);
        } catch (AgentException e) {
            if (e.status() == 501) {
                throw new Unavailable(e.getMessage() + " (HTTP 501)");
            }
            throw e;
        }
    }

    /** Runs argv in the tenant's environment through the API; its stdout, or an exception if it did not exit 0. */
    private String exec(AgentClient tenant, Duration timeout, List<String> argv) throws IOException {
        return BenchHost.exec(tenant, VM, argv, timeout.toSeconds()).stdoutIfOk(argv);
    }

    /** Runs a host command (its profile and CDS caches in the throw-away home); its stdout if it exits 0. */
    private String runHost(List<String> command, Duration timeout, String what) throws IOException, InterruptedException {
        Path out = Files.createTempFile(home, "run-", ".out");
        Path err = Files.createTempFile(home, "run-", ".err");
        try {
            ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile());
            builder.environment().put("VEGGUR_CACHE", home.resolve("cache").toString());
            Process process = builder.start();
            processes.add(process);
            try {
                if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    process.destroyForcibly();
                    throw new IOException(what + " did not finish within " + timeout.toSeconds() + " s");
                }
            } finally {
                processes.remove(process);
            }
            if (process.exitValue() != 0) {
                // The JVM reports some start-up errors on stdout.
                throw new IOException(what + ": exit " + process.exitValue() + ": " + BenchHost.tail(Files.readString(err) + "\n"
                        + Files.readString(out)));
            }
            return Files.readString(out);
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** The issued identity, written as `veggur env create --identity FILE` writes it: FILE and FILE.password, 0600. */
    private Path writeIdentity(JsonNode environment) throws IOException {
        Path directory = Files.createDirectories(home.resolve("identities"));
        Path file = directory.resolve("bench-net-" + ++identities + ".p12");
        AgentClient.writeIdentity(file, environment);
        return file;
    }

    private static String tls(String host, int port, Path identity) {
        return "tls://" + host + ":" + port + "?identity=" + identity;
    }

    private static int port(JsonNode environment) throws IOException {
        String endpoint = environment.path("endpoint").asText();
        Matcher m = Pattern.compile("^tls://.+:(\\d+)$").matcher(endpoint);
        if (!m.find()) {
            throw new IOException("unexpected network endpoint '" + endpoint + "'");
        }
        return Integer.parseInt(m.group(1));
    }

    private boolean usable(Flavor flavor) {
        return settings.flavors().contains(flavor) && !unavailable.containsKey(flavor) && !failed.containsKey(flavor);
    }

    private void fail(Flavor flavor, String what, Exception e) {
        if (cleaned.get()) {
            return;   // interrupted (SIGTERM, Ctrl-C): the clean-up pulled things away under the run
        }
        String reason = what + ": " + e.getMessage();
        failed.put(flavor, reason);
        progress("%s FAILED (%s); the run goes on without it", flavor.label, reason);
    }

    // ---- report

    private void report(String loadBefore, String dockerHost, VmInfo vm, long boot, Map<Flavor, List<Deployment>> deployments,
                        JsonNode[][] lists) throws Exception {
        System.out.printf("Machine: %d CPUs (%s), host kernel %s, %s, accel %s, Docker %s, load average %s before, %s after%n",
                Runtime.getRuntime().availableProcessors(), cpuModel(), System.getProperty("os.version"), qemuVersion(),
                vm.accel(), dockerVersion(dockerHost), loadBefore, loadAverage());
        int processes = Arrays.stream(lists).map(r -> r[Flavor.NATIVE.ordinal()]).filter(j -> j != null)
                .mapToInt(j -> j.path("processes").asInt()).findFirst().orElse(0);
        String counts = String.join(", ", Arrays.stream(Flavor.values()).filter(settings.flavors()::contains)
                .map(f -> f.label + " " + settings.lists(f)).toList());
        System.out.printf("Settings: %d rounds (flavor order forward in odd rounds, reversed in even ones); process lists "
                        + "per run: %s, each run after its own unreported warm-up of max(100, lists/10) lists; %d "
                        + "processes per list; %s; list JVM flags %s%n", settings.rounds(), counts, processes,
                settings.flavors().contains(Flavor.NET_REMOTE) ? "delay line " + settings.delayMicros() + " µs each way"
                        : "no delay line", String.join(" ", jvmFlags(settings.c1Only())));
        if (ping != null) {
            System.out.println(ping);
        }
        String held = proxyLines.stream().filter(l -> l.startsWith("held ")).reduce((a, b) -> b).orElse(null);
        if (held != null) {
            System.out.println("Delay line, every chunk of the run, µs held (read to write): " + held.substring(5));
        }
        System.out.println();

        System.out.println("Process list, caches flushed (the paper's figure 4): µs per list (median of the rounds' "
                + "medians); ratios: median of the per-round ratios");
        System.out.println();
        System.out.println("| flavor | how | lists per run | µs per list | / Native | / NativeSocket | paper, / Native |");
        System.out.println("|--------|-----|--------------:|------------:|---------:|---------------:|----------------:|");
        for (Flavor flavor : Flavor.values()) {
            if (!settings.flavors().contains(flavor)) {
                continue;
            }
            String how = flavor == Flavor.NET_REMOTE ? flavor.how + " (" + settings.delayMicros() + " µs each way)" : flavor.how;
            double[] micros = column(lists, flavor);
            if (micros.length == 0) {
                System.out.printf("| %s | %s | %d | %s | | | %s |%n", flavor.label, how, settings.lists(flavor),
                        status(flavor), flavor.paper);
                continue;
            }
            System.out.printf("| %s | %s | %d | %s | %s | %s | %s |%n", flavor.label, how, settings.lists(flavor),
                    "%.1f".formatted(median(micros)) + (failed.containsKey(flavor) ? " (" + status(flavor) + ")" : ""),
                    ratio(lists, flavor, Flavor.NATIVE), ratio(lists, flavor, Flavor.NATIVE_SOCKET), flavor.paper);
        }

        System.out.println();
        System.out.println("Per round, µs per list (median of the run):");
        System.out.println();
        List<Flavor> shown = Arrays.stream(Flavor.values()).filter(settings.flavors()::contains).toList();
        System.out.println("| round | " + String.join(" | ", shown.stream().map(f -> f.label).toList()) + " |");
        System.out.println("|------:|" + "-----:|".repeat(shown.size()));
        for (int r = 0; r < lists.length; r++) {
            JsonNode[] round = lists[r];
            System.out.println("| " + (r + 1) + " | " + String.join(" | ", shown.stream().map(f -> round[f.ordinal()] == null
                    ? "-" : "%.1f".formatted(medianMicros(round[f.ordinal()]))).toList()) + " |");
        }

        System.out.println();
        System.out.println("Deployment: request (PUT environment) to VMI tool connected (`veggur vmi info` exits 0 through "
                + "the flavor: exec in the container or the monitoring VM; for the network flavor from vgb-co with the "
                + "issued identity), then DELETE; one unreported warm-up round per flavor first");
        System.out.println();
        System.out.println("| flavor | rounds | PUT environment, median | **request to VMI tool connected**, median | min | max |");
        System.out.println("|--------|-------:|------------------------:|------------------------------------------:|----:|----:|");
        for (Flavor flavor : DEPLOYED) {
            if (!settings.flavors().contains(flavor) || settings.deployRounds(flavor) == 0) {
                continue;
            }
            String label = flavor == Flavor.NET_COHOST ? "network (from vgb-co)" : flavor.label;
            List<Deployment> runs = deployments.getOrDefault(flavor, List.of());
            if (runs.isEmpty()) {
                System.out.printf("| %s | 0 | %s | | | |%n", label, status(flavor));
                continue;
            }
            long[] put = runs.stream().mapToLong(Deployment::put).toArray();
            long[] connected = runs.stream().mapToLong(Deployment::connected).toArray();
            System.out.printf("| %s | %d | %d ms | **%d ms**%s | %d ms | %d ms |%n", label, runs.size(), millis(Math.round(median(put))),
                    millis(Math.round(median(connected))), failed.containsKey(flavor) ? " (" + status(flavor) + ")" : "",
                    millis(Arrays.stream(connected).min().orElseThrow()), millis(Arrays.stream(connected).max().orElseThrow()));
        }
        System.out.printf("| for comparison: POST /v1/vms until the guest is ready (one boot, 256 MiB) | 1 | | %d ms | | |%n",
                millis(boot));
        List<Deployment> docker = deployments.getOrDefault(Flavor.FROM_DOCKER, List.of());
        List<Deployment> monitor = deployments.getOrDefault(Flavor.VIRTIO, List.of());
        if (!docker.isEmpty() && !monitor.isEmpty()) {
            System.out.printf("%nVirtio / FromDocker deployment (medians): %.1f× (paper: 9.4×, \"841%%\")%n",
                    median(monitor.stream().mapToLong(Deployment::connected).toArray())
                            / median(docker.stream().mapToLong(Deployment::connected).toArray()));
        }
        if (!unavailable.isEmpty() || !failed.isEmpty()) {
            System.out.println();
            unavailable.forEach((f, why) -> System.out.printf("- %s: unavailable: %s%n", f.label, why));
            failed.forEach((f, why) -> System.out.printf("- %s: FAILED: %s%n", f.label, why));
        }
    }

    private String status(Flavor flavor) {
        if (unavailable.containsKey(flavor)) {
            return "unavailable: " + unavailable.get(flavor);
        }
        return failed.containsKey(flavor) ? "failed: " + failed.get(flavor).replace("|", "\\|").replace("\n", " ") : "no runs";
    }

    /** The flavor's run medians over the rounds it ran in. */
    private static double[] column(JsonNode[][] lists, Flavor flavor) {
        return Arrays.stream(lists).map(r -> r[flavor.ordinal()]).filter(j -> j != null)
                .mapToDouble(FlavorBenchmark::medianMicros).toArray();
    }

    /** Median of the per-round ratios flavor / base, over rounds where both ran. */
    private static String ratio(JsonNode[][] lists, Flavor flavor, Flavor base) {
        double[] ratios = Arrays.stream(lists).filter(r -> r[flavor.ordinal()] != null && r[base.ordinal()] != null)
                .mapToDouble(r -> medianMicros(r[flavor.ordinal()]) / medianMicros(r[base.ordinal()])).toArray();
        if (ratios.length == 0) {
            return "";
        }
        String value = "%.3f".formatted(median(ratios));
        return flavor == Flavor.NATIVE ? value : "**" + value + "**";
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
        System.err.printf("flavorbench: " + format + "%n", args);
    }

    private static void removeContainers(String dockerHost, String label) throws IOException, InterruptedException {
        Process list = new ProcessBuilder("docker", "--host", dockerHost, "ps", "-aq", "--filter", "label=" + label)
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        List<String> ids = new String(list.getInputStream().readAllBytes(), StandardCharsets.UTF_8).lines()
                .filter(line -> !line.isBlank()).toList();
        if (!list.waitFor(30, TimeUnit.SECONDS) || list.exitValue() != 0) {
            throw new IOException("docker ps failed");
        }
        if (ids.isEmpty()) {
            return;
        }
        List<String> command = new ArrayList<>(List.of("docker", "--host", dockerHost, "rm", "-f"));
        command.addAll(ids);
        Process remove = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(remove.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!remove.waitFor(60, TimeUnit.SECONDS) || remove.exitValue() != 0) {
            throw new IOException("docker rm failed: " + output.strip());
        }
        progress("removed leftover container(s) %s", String.join(" ", ids));
    }

    /**
     * Idempotent: subprocesses still running (the delay line, a client), the three tenants' environments (container,
     * monitoring VM, endpoint) through the API and, if that is gone already, this agent's containers directly, then
     * the VM, the agent and the home as {@link BenchHost#tearDown} does it, last the namespaces.
     */
    private void cleanUp() {
        if (!cleaned.compareAndSet(false, true)) {
            return;
        }
        java.util.function.Consumer<String> log = message -> progress("%s", message);
        for (Process process : processes) {
            BenchHost.attempt(log, "stop process " + process.pid(), () -> {
                process.destroy();
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            });
        }
        for (AgentClient tenant : new AgentClient[] {owner, vmTenant, netTenant}) {
            if (tenant != null) {
                BenchHost.attempt(log, "delete an environment", () -> {
                    if (!tenant.get("/v1/environments").isEmpty()) {
                        tenant.delete(VM + "/environment");
                    }
                });
            }
        }
        // On SIGTERM or Ctrl-C Helidon's own shutdown hook may have stopped the API already: then the container is
        // removed directly, by this agent's label (monitoring VMs are stopped with the other VMs of the home).
        if (dockerHost != null) {
            BenchHost.attempt(log, "remove this agent's containers", () -> removeContainers(dockerHost,
                    ContainerEnvironments.AGENT_LABEL + "=" + ContainerEnvironments.agentId(new VeggurHome(home))));
        }
        BenchHost.tearDown(owner, VM, agent, home, log);
        for (BenchNetns netns : new BenchNetns[] {cohost, remote}) {
            if (netns != null) {
                BenchHost.attempt(log, "remove namespace " + netns.name, netns::close);
            }
        }
    }
}
