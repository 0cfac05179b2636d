package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecReaderGoneException;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.exec.ExecStream;
import io.veggur.agent.monitor.ExecChannel;
import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmManager;
import io.veggur.host.vm.VmSpec;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The monitoring VM built by monitor/build-image.sh, booted under QEMU (TCG here) with its two virtio-serial ports,
 * and commands run in it through {@link ExecChannel}. What the guest has (ports, devices, file systems) is asked of
 * the guest itself. The image is built from this build's CLI jar ({@link TestDocker#monitorImage}) unless
 * {@code VEGGUR_MONITOR_DIR} names a built one; a build with unchanged inputs is reused in about a second.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ExecChannelIT {
    private static final String VM = "monitor";
    private static final List<String> PORTS = List.of("io.veggur.vmi", ExecChannel.PORT_NAME);
    private static final Duration BOOT_TIMEOUT = Duration.ofSeconds(120);
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private Path home;
    private VmManager manager;
    private Path port;

    @BeforeAll
    void boot() throws Exception {
        Path image = image();
        String append = Files.readString(image.resolve("append")).strip();
        home = Files.createTempDirectory("veggur-monitor-it-");
        manager = new VmManager(new VeggurHome(home));
        long start = System.nanoTime();
        manager.start(VmSpec.builtinGuest(VM)
                .withKernel(image.resolve("vmlinuz"), image.resolve("initramfs.cpio.lz4"), append)
                .withMemory(512L << 20)
                .withVcpus(1)
                .withVirtioPorts(PORTS));
        long running = System.nanoTime();
        Matcher ready = new GuestConsole(manager.directory(VM))
                .awaitLine(Pattern.compile("VEGGUR-MONITOR-(READY|ERROR.*)"), BOOT_TIMEOUT);
        assertThat(ready.group()).isEqualTo("VEGGUR-MONITOR-READY");
        long now = System.nanoTime();
        System.out.printf("monitoring VM: READY %d ms after VmManager.start, %d ms after it returned"
                        + " (initramfs %d MiB)%n",
                TimeUnit.NANOSECONDS.toMillis(now - start), TimeUnit.NANOSECONDS.toMillis(now - running),
                Files.size(image.resolve("initramfs.cpio.lz4")) >> 20);
        port = manager.directory(VM).virtioPortSocket(PORTS.indexOf(ExecChannel.PORT_NAME));
    }

    @AfterAll
    void stop() throws Exception {
        try {
            if (manager != null) {
                manager.stop(VM);
            }
        } finally {
            if (home != null) {
                try (Stream<Path> paths = Files.walk(home)) {
                    for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                        Files.deleteIfExists(path);
                    }
                }
            }
        }
    }

    @Test
    void versionMatchesTheJar() throws Exception {
        long start = System.nanoTime();
        Run result = run("veggur", "--version");
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        System.out.printf("monitoring VM: `veggur --version` took %d ms%n", millis);
        assertThat(result.exitCode()).as(text(result.stderr())).isZero();
        assertThat(text(result.stdout())).isEqualTo(hostVersion());
        // The static AppCDS archive maps with the VM's flags (-Xshare:on fails otherwise).
        Run cds = run("/opt/veggur/jre/bin/java", "-Xshare:on", "-XX:SharedArchiveFile=/opt/veggur/veggur.jsa",
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xlog:aot=off", "-Xlog:cds=off",
                "-jar", "/opt/veggur/veggur.jar", "--version");
        assertThat(cds.exitCode()).as(text(cds.stderr())).isZero();
    }

    @Test
    void quickCommandsReturnAsSoonAsTheyEnd() throws Exception {
        // The guest notices a command's end at once, not at its timeout (30 s here).
        List<Long> millis = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            long start = System.nanoTime();
            assertThat(ExecChannel.exec(port, List.of("true"), TIMEOUT.dividedBy(2), new Captured()).exitCode()).isZero();
            millis.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
        }
        List<Long> sorted = millis.stream().sorted().toList();
        System.out.printf("monitoring VM: `true` took %d ms (median of 30; slowest %d ms)%n", sorted.get(15),
                sorted.getLast());
        assertThat(sorted.getLast()).isLessThan(5000);
    }

    @Test
    void argumentsArriveVerbatim() throws Exception {
        List<String> arguments = List.of("two words", "'single'", "\"double\"", "$HOME", "$(id -u)", "`id`",
                "semi;colon", "new\nline", "", "back\\slash", "*", "-n", "ünï€ode", " ");
        List<String> argv = new ArrayList<>(List.of("/bin/busybox", "printf", "%s|"));
        argv.addAll(arguments);
        Run result = run(argv);
        assertThat(result.exitCode()).isZero();
        assertThat(text(result.stdout())).isEqualTo(arguments.stream().map(a -> a + "|").collect(Collectors.joining()));
        assertThat(result.stderr()).isEmpty();
    }

    @Test
    void streamsAndExitStatusAreSeparate() throws Exception {
        Run result = run("sh", "-c", "echo out; echo err >&2; exit 7");
        assertThat(result.exitCode()).isEqualTo(7);
        assertThat(text(result.stdout())).isEqualTo("out\n");
        assertThat(text(result.stderr())).isEqualTo("err\n");

        // Interleaved over time, each stream keeps its order.
        Run interleaved = run("sh", "-c", "echo a; sleep 0.5; echo b >&2; sleep 0.5; echo c; echo d >&2");
        assertThat(text(interleaved.stdout())).isEqualTo("a\nc\n");
        assertThat(text(interleaved.stderr())).isEqualTo("b\nd\n");

        Run missing = run("no-such-program");
        assertThat(missing.exitCode()).isEqualTo(127);
        assertThat(text(missing.stderr())).contains("no-such-program");
        // stdin is /dev/null: cat ends at once.
        assertThat(run("cat").exitCode()).isZero();
    }

    @Test
    void aCommandPastItsTimeoutIsKilledAndTheNextOneRuns() throws Exception {
        long start = System.nanoTime();
        Captured output = new Captured();
        ExecResult slow = ExecChannel.exec(port, List.of("sh", "-c", "echo started; sleep 60 & sleep 60"),
                Duration.ofSeconds(2), output);
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertThat(slow.timedOut()).isTrue();
        assertThat(slow.exitCode()).isEqualTo(-1);
        assertThat(text(output.stdout())).isEqualTo("started\n");
        assertThat(millis).isBetween(2000L, 2000 + ExecChannel.SLACK.toMillis());

        assertThat(text(run("echo", "next").stdout())).isEqualTo("next\n");
        // The whole process group went, the background sleep too.
        assertThat(run("pidof", "sleep").exitCode()).isEqualTo(1);
    }

    @Test
    void outputComesWhileTheCommandRuns_andAReaderThatLeavesCancelsIt() throws Exception {
        // The command never ends on its own and may run for 5 minutes: the first line reaches the host while it
        // runs, and the reader's leaving (its write fails) cancels it; the next call finds no trace of it.
        List<String> seen = new ArrayList<>();
        long start = System.nanoTime();
        assertThatThrownBy(() -> ExecChannel.exec(port, List.of("sh", "-c", "echo first; sleep 3600 & sleep 3600"),
                Duration.ofMinutes(5), (stream, bytes, offset, length) -> {
                    seen.add(stream + " " + new String(bytes, offset, length, StandardCharsets.UTF_8));
                    throw new IOException("the reader left");
                }))
                .isInstanceOf(ExecReaderGoneException.class)
                .hasRootCauseMessage("the reader left");
        assertThat(seen).containsExactly("STDOUT first\n");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofMinutes(1));

        assertThat(text(run("echo", "next").stdout())).isEqualTo("next\n");
        assertThat(run("pidof", "sleep").exitCode()).as("the cancelled command's process group is gone").isEqualTo(1);
    }

    @Test
    void aReaderThatLeavesWhileTheCommandIsSilent_cancelsItToo() throws Exception {
        Captured output = new Captured();
        assertThatThrownBy(() -> ExecChannel.exec(port, List.of("sh", "-c", "echo quiet; sleep 3600"),
                Duration.ofMinutes(5), new ExecOutput() {
                    @Override
                    public void write(ExecStream stream, byte[] bytes, int offset, int length) {
                        output.write(stream, bytes, offset, length);
                    }

                    @Override
                    public void keepAlive() throws IOException {
                        throw new IOException("the reader left");
                    }
                }))
                .isInstanceOf(ExecReaderGoneException.class)
                .hasRootCauseMessage("the reader left");
        assertThat(text(output.stdout())).isEqualTo("quiet\n");
        assertThat(run("pidof", "sleep").exitCode()).as("the cancelled command's process group is gone").isEqualTo(1);
    }

    @Test
    void aRequestWhoseHostLeftIsCancelled_andTheNextCallRuns() throws Exception {
        // A host that sends a request and leaves: nobody reads the command's output, so it does not run on.
        try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            channel.connect(UnixDomainSocketAddress.of(port));
            channel.write(ByteBuffer.wrap(ExecChannel.request("00000000000000000000000000000000",
                    List.of("sh", "-c", "echo stale; echo stale >&2; sleep 5; touch /tmp/stale-ran"), 30)));
        }
        Run next = run("echo", "fresh");
        assertThat(text(next.stdout())).isEqualTo("fresh\n");
        assertThat(next.stderr()).isEmpty();
        Thread.sleep(6000);
        assertThat(run("test", "-e", "/tmp/stale-ran").exitCode()).as("the abandoned command ran on").isEqualTo(1);
        assertThat(run("pidof", "sleep").exitCode()).isEqualTo(1);
    }

    @Test
    void eachStreamIsCutByTheGuestAt16MiBAndOneByte() throws Exception {
        long start = System.nanoTime();
        Captured output = new Captured();
        ExecResult big = ExecChannel.exec(port, List.of("sh", "-c", "head -c 17000000 /dev/zero; echo e >&2"), TIMEOUT,
                output);
        System.out.printf("monitoring VM: 16 MiB of output took %d ms in %d writes%n",
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start), output.writes());
        assertThat(output.stdout()).hasSize(ExecChannel.MAX_OUTPUT_BYTES + 1).containsOnly(0);
        assertThat(text(output.stderr())).isEqualTo("e\n");
        assertThat(big.timedOut()).isFalse();
        assertThat(big.exitCode()).isZero();
    }

    @Test
    void concurrentCallsOnOnePortTakeTurns() throws Exception {
        Callable<Run> call = () -> run("sh", "-c", "sleep 1; echo done");
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Run>> results = List.of(pool.submit(call), pool.submit(call), pool.submit(call));
            for (Future<Run> result : results) {
                assertThat(text(result.get().stdout())).isEqualTo("done\n");
            }
        }
    }

    @Test
    void theGuestHasItsPortsAndNoOtherWayOut() throws Exception {
        assertThat(lines(run("ls", "/dev/virtio-ports"))).containsExactlyInAnyOrder("io.veggur.vmi", "io.veggur.exec");
        assertThat(lines(run("ls", "/sys/class/net"))).containsExactly("lo");
        assertThat(lines(run("ls", "/sys/block"))).isEmpty();
        // virtio device ids: 1 net, 2 block, 3 console, 9 9p, 19 vsock, 26 fs; only the console is there.
        assertThat(lines(run("sh", "-c", "cat /sys/bus/virtio/devices/*/device"))).containsExactly("0x0003");
        assertThat(text(run("cat", "/proc/filesystems").stdout())).doesNotContain("9p", "virtiofs", "nfs");
        assertThat(text(run("cat", "/proc/mounts").stdout())).doesNotContain("9p", "virtiofs", "nfs");
        // No login path either: no password, no getty on the console.
        assertThat(text(run("cat", "/etc/passwd").stdout())).doesNotContain("root:x:").contains("root:*:");
        assertThat(run("pidof", "getty").exitCode()).isEqualTo(1);
    }

    @Test
    void malformedRequestsGetAnErrorAndChangeNothing() throws Exception {
        try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            channel.connect(UnixDomainSocketAddress.of(port));
            String lines = "RUN rm -rf /\nEXEC 0123456789abcdef 0 YQ==\n";
            channel.write(ByteBuffer.wrap(lines.getBytes(StandardCharsets.US_ASCII)));
            ByteBuffer reply = ByteBuffer.allocate(4096);
            while (countLines(reply) < 2) {
                assertThat(channel.read(reply)).isPositive();
            }
            String text = new String(reply.array(), 0, reply.position(), StandardCharsets.US_ASCII);
            assertThat(text).startsWith("ERROR ").contains("\nERROR 0123456789abcdef the timeout");
        }
        assertThat(text(run("echo", "still").stdout())).isEqualTo("still\n");
    }

    @Test
    void invalidCallsAreRefusedOnTheHost() {
        Captured output = new Captured();
        assertThatThrownBy(() -> ExecChannel.exec(port, List.of(), TIMEOUT, output))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ExecChannel.exec(port, List.of("echo", "a\0b"), TIMEOUT, output))
                .isInstanceOf(IllegalArgumentException.class);
        String tooLong = "x".repeat(ExecChannel.MAX_ARGV_BYTES);
        assertThatThrownBy(() -> ExecChannel.exec(port, List.of("echo", tooLong), TIMEOUT, output))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ExecChannel.exec(port, List.of("true"), Duration.ZERO, output))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ExecChannel.exec(port, List.of("true"), ExecChannel.MAX_TIMEOUT.plusSeconds(1), output))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ExecChannel.exec(home.resolve("no-such.sock"), List.of("true"), TIMEOUT, output))
                .isInstanceOf(IOException.class).hasMessageContaining("cannot connect");
    }

    /** All a command wrote, per stream, and in how many writes it came. */
    private static final class Captured implements ExecOutput {
        private final ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        private final ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        private int writes;

        @Override
        public void write(ExecStream stream, byte[] bytes, int offset, int length) {
            (stream == ExecStream.STDOUT ? stdout : stderr).write(bytes, offset, length);
            writes++;
        }

        byte[] stdout() {
            return stdout.toByteArray();
        }

        byte[] stderr() {
            return stderr.toByteArray();
        }

        int writes() {
            return writes;
        }
    }

    /** How a command ended, with all it wrote. */
    private record Run(int exitCode, byte[] stdout, byte[] stderr) {}

    private Run run(String... argv) throws IOException {
        return run(List.of(argv));
    }

    private Run run(List<String> argv) throws IOException {
        Captured output = new Captured();
        ExecResult result = ExecChannel.exec(port, argv, TIMEOUT, output);
        assertThat(result.timedOut()).as("%s timed out", argv).isFalse();
        return new Run(result.exitCode(), output.stdout(), output.stderr());
    }

    private static String text(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static List<String> lines(Run result) {
        assertThat(result.exitCode()).as(text(result.stderr())).isZero();
        return text(result.stdout()).lines().map(String::strip).filter(s -> !s.isEmpty()).toList();
    }

    private static int countLines(ByteBuffer buffer) {
        int count = 0;
        for (int i = 0; i < buffer.position(); i++) {
            count += buffer.get(i) == '\n' ? 1 : 0;
        }
        return count;
    }

    /** What the jar says on the host, the ground truth for the guest's answer. */
    private String hostVersion() throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        return output(List.of(java, "-jar", Path.of("target", "veggur.jar").toAbsolutePath().toString(), "--version"),
                Duration.ofMinutes(1));
    }

    private Path image() throws Exception {
        String configured = System.getenv("VEGGUR_MONITOR_DIR");
        return configured != null && !configured.isBlank() ? Path.of(configured) : TestDocker.monitorImage();
    }

    private static String output(List<String> command, Duration timeout) throws Exception {
        Path out = Files.createTempFile("veggur-monitor-it-", ".out");
        Path log = Files.createTempFile("veggur-monitor-it-", ".log");
        try {
            Process process = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(log.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
            if (!process.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new IOException(command + " took more than " + timeout.toSeconds() + " s");
            }
            if (process.exitValue() != 0) {
                throw new IOException(command + " failed (exit " + process.exitValue() + "):\n"
                        + Files.readString(log));
            }
            return Files.readString(out);
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(log);
        }
    }
}
