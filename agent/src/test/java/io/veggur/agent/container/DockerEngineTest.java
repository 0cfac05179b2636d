package io.veggur.agent.container;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.fail;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.command.BuildImageResultCallback;
import com.github.dockerjava.api.command.InspectContainerResponse;
import com.github.dockerjava.api.model.Capability;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.Image;
import com.github.dockerjava.api.model.MountType;
import com.github.dockerjava.core.DefaultDockerClientConfig;
import com.github.dockerjava.core.DockerClientImpl;
import com.github.dockerjava.core.RemoteApiVersion;
import com.github.dockerjava.zerodep.ZerodepDockerHttpClient;
import io.veggur.agent.exec.CapturedOutput;
import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecReaderGoneException;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.exec.ExecStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Against the real private dockerd ({@code container/dockerd.sh start}, the default VEGGUR_HOME unless the environment
 * sets one), as root. The image is a busybox rootfs built offline; every container this run creates has the name
 * prefix {@link #PREFIX} and is removed after each test.
 */
class DockerEngineTest {
    private static final String IMAGE = "veggur-test-busybox:1";
    private static final String PREFIX = "veggur-test-%08x-".formatted(ThreadLocalRandom.current().nextInt());
    private static final int UID = 230_000 + ThreadLocalRandom.current().nextInt(10_000);
    private static final Duration TIMEOUT = Duration.ofSeconds(20);

    @TempDir
    static Path temp;
    private static String dockerHost;
    private static DockerClient raw;   // a second client, for setting up leftovers and reading what start created
    private static DockerEngine engine;
    private Path socketDirectory;

    @BeforeAll
    static void daemonAndImage() throws Exception {
        assertThat(Files.getAttribute(Path.of("/proc/self"), "unix:uid")).as("these tests run as root").isEqualTo(0);
        Path repository = Path.of("").toAbsolutePath().getParent();
        dockerHost = run(List.of(repository.resolve("container/dockerd.sh").toString(), "start")).strip().lines()
                .reduce((first, second) -> second).orElseThrow();
        var config = new DefaultDockerClientConfig.Builder()
                .withDockerHost(dockerHost).withApiVersion(RemoteApiVersion.VERSION_1_41).build();
        raw = DockerClientImpl.getInstance(config,
                new ZerodepDockerHttpClient.Builder().dockerHost(config.getDockerHost()).build());
        buildImage();
        engine = DockerEngine.connect(dockerHost);
    }

    /** FROM scratch + a deterministic rootfs tar: the legacy builder's cache makes every later build a no-op. */
    private static void buildImage() throws Exception {
        Path busybox = Path.of("/bin/busybox");
        assertThat(busybox).as("static busybox: apt-get install busybox-static").isExecutable();
        Path root = Files.createDirectories(temp.resolve("image/rootfs"));
        Files.createDirectories(root.resolve("bin"));
        Files.copy(busybox, root.resolve("bin/busybox"));
        for (String applet : List.of("sh", "cat", "id", "ls", "sleep", "echo")) {
            Files.createSymbolicLink(root.resolve("bin").resolve(applet), Path.of("busybox"));
        }
        Files.createDirectories(root.resolve("vmi"));
        Files.setPosixFilePermissions(Files.createDirectories(root.resolve("tmp")),
                PosixFilePermissions.fromString("rwxrwxrwx"));
        Path context = root.getParent();
        run(List.of("tar", "-C", root.toString(), "--numeric-owner", "--owner=0", "--group=0", "--sort=name",
                "--mtime=@315532800", "-cf", context.resolve("rootfs.tar").toString(), "."));
        Files.writeString(context.resolve("Dockerfile"), """
                FROM scratch
                ADD rootfs.tar /
                LABEL io.veggur.test=1
                CMD ["sleep", "86400"]
                """);
        Files.writeString(context.resolve(".dockerignore"), "rootfs\n");
        raw.buildImageCmd(context.toFile())
                .withTags(Set.of(IMAGE))
                .withNetworkMode("none")
                .withPull(false)
                .exec(new BuildImageResultCallback())
                .awaitImageId(120, TimeUnit.SECONDS);
    }

    @AfterAll
    static void close() throws IOException {
        if (engine != null) {
            engine.close();
        }
        if (raw != null) {
            raw.close();
        }
    }

    @BeforeEach
    void socketDirectory() throws IOException {
        socketDirectory = Files.createTempDirectory(temp, "sockets");
        Files.setPosixFilePermissions(socketDirectory, PosixFilePermissions.fromString("rwx------"));
        Files.writeString(socketDirectory.resolve("probe"), "probe\n");
        for (Path path : List.of(socketDirectory, socketDirectory.resolve("probe"))) {
            Files.setAttribute(path, "unix:uid", UID);
            Files.setAttribute(path, "unix:gid", UID);
        }
    }

    /** Every container of this run, whatever the test did; raw client, so it works even if the engine's API does not. */
    @AfterEach
    void removeContainers() {
        raw.listContainersCmd().withShowAll(true).withNameFilter(List.of(PREFIX)).exec()
                .forEach(c -> raw.removeContainerCmd(c.getId()).withForce(true).exec());
    }

    @Test
    void start_hardening_isExactlyRunEnvsFlags() throws Exception {
        var spec = spec("flags");
        String id = engine.start(spec);

        InspectContainerResponse container = raw.inspectContainerCmd(id).exec();
        HostConfig host = container.getHostConfig();
        assertThat(container.getConfig().getUser()).isEqualTo(UID + ":" + UID);
        assertThat(container.getConfig().getLabels()).isEqualTo(withImageLabel(spec.labels()));
        // docker-java's ContainerConfig has no StopTimeout field (CreateContainerCmd has): ask docker.io's CLI.
        assertThat(run(List.of("/usr/bin/docker", "-H", dockerHost, "inspect", "-f", "{{.Config.StopTimeout}}", id)))
                .isEqualTo("5\n");
        assertThat(host.getNetworkMode()).isEqualTo("none");
        assertThat(host.getIpcMode()).isEqualTo("none");
        assertThat(host.getCapDrop()).containsExactly(Capability.ALL);
        assertThat(host.getCapAdd()).isNullOrEmpty();
        assertThat(host.getSecurityOpts()).containsExactly("no-new-privileges");
        assertThat(host.getReadonlyRootfs()).isTrue();
        assertThat(host.getTmpFs()).isEqualTo(Map.of("/tmp", "rw,nosuid,nodev,noexec,size=64m"));
        assertThat(host.getPidsLimit()).isEqualTo(128L);
        assertThat(host.getMemory()).isEqualTo(512L << 20);
        assertThat(host.getMemorySwap()).isEqualTo(512L << 20);
        assertThat(host.getUlimits()).singleElement().satisfies(u -> {
            assertThat(u.getName()).isEqualTo("nofile");
            assertThat(List.of(u.getSoftLong(), u.getHardLong())).containsExactly(1024L, 1024L);
        });
        assertThat(host.getRestartPolicy().toString()).isEqualTo("no");
        assertThat(host.getPrivileged()).isFalse();
        assertThat(host.getBinds()).isNullOrEmpty();
        assertThat(host.getDevices()).isNullOrEmpty();
        assertThat(host.getMounts()).singleElement().satisfies(m -> {
            assertThat(m.getType()).isEqualTo(MountType.BIND);
            assertThat(m.getSource()).isEqualTo(socketDirectory.toString());
            assertThat(m.getTarget()).isEqualTo("/vmi");
            assertThat(m.getReadOnly()).isTrue();
        });
        assertThat(container.getMounts()).singleElement().satisfies(m -> {
            assertThat(m.getDestination().getPath()).isEqualTo("/vmi");
            assertThat(m.getRW()).isFalse();
        });
    }

    @Test
    void start_insideTheContainer_unprivilegedIsolatedReadOnly() throws Exception {
        String shortId = engine.start(spec("inside")).substring(0, 12);   // exec takes an id prefix too

        assertThat(ok(shortId, "id", "-u")).isEqualTo(UID + "\n");
        assertThat(ok(shortId, "id", "-g")).isEqualTo(UID + "\n");
        assertThat(ok(shortId, "cat", "/proc/self/status")).contains(
                "CapInh:\t0000000000000000", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000",
                "CapBnd:\t0000000000000000", "CapAmb:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2");
        assertThat(ok(shortId, "ls", "/vmi")).isEqualTo("probe\n");
        assertThat(ok(shortId, "cat", "/vmi/probe")).isEqualTo("probe\n");

        Run rootWrite = exec(shortId, "sh", "-c", "echo x > /written");
        assertThat(rootWrite.exitCode()).isNotZero();
        assertThat(text(rootWrite.stderr())).contains("Read-only file system");
        Run vmiWrite = exec(shortId, "sh", "-c", "echo x > /vmi/written");   // the uid owns the directory
        assertThat(vmiWrite.exitCode()).isNotZero();
        assertThat(text(vmiWrite.stderr())).contains("Read-only file system");
        assertThat(socketDirectory.resolve("written")).doesNotExist();
        assertThat(ok(shortId, "sh", "-c", "echo x > /tmp/written && cat /tmp/written")).isEqualTo("x\n");

        String interfaces = ok(shortId, "cat", "/proc/net/dev");
        assertThat(interfaces.lines().skip(2).map(line -> line.strip().split(":")[0])).containsExactly("lo");
        assertThat(ok(shortId, "cat", "/proc/self/limits")).containsPattern("Max open files\\s+1024\\s+1024");
        assertThat(ok(shortId, "cat", "/sys/fs/cgroup/pids/pids.max")).isEqualTo("128\n");
        assertThat(ok(shortId, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")).isEqualTo((512 << 20) + "\n");
    }

    /**
     * Host filesystems reach the container only through /vmi and Docker's own /etc files. A mount is one of the
     * container's own (rootfs, proc, sysfs, tmpfs...) if its device also appears mounted at its root ("/"):
     * Docker's masks and read-only paths bind parts of those; cgroup hierarchies are views of the kernel's.
     */
    @Test
    void start_mounts_onlyVmiAndDockersEtcFilesComeFromTheHost() throws Exception {
        String id = engine.start(spec("mounts"));

        List<String[]> mounts = ok(id, "cat", "/proc/self/mountinfo").lines().map(line -> line.split(" ")).toList();
        Set<String> ownDevices = new HashSet<>();
        mounts.stream().filter(m -> m[3].equals("/")).forEach(m -> ownDevices.add(m[2]));
        Map<String, String> fromHost = new HashMap<>();   // mount point -> path on its source filesystem
        for (String[] m : mounts) {
            String type = m[List.of(m).indexOf("-") + 1];
            if (!ownDevices.contains(m[2]) && !type.startsWith("cgroup")) {
                fromHost.put(m[4], m[3]);
            }
        }
        assertThat(fromHost.keySet()).containsExactlyInAnyOrder("/vmi", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts");
        // Paths are relative to their filesystem's root, which is / here but need not be (a tmpfs /tmp, say).
        assertThat(socketDirectory.toString()).endsWith(fromHost.get("/vmi"));
        for (String file : List.of("resolv.conf", "hostname", "hosts")) {
            assertThat(dockerFile(id, file)).endsWith(fromHost.get("/etc/" + file));
        }
        assertThat(mounts).filteredOn(m -> m[4].equals("/vmi")).singleElement()
                .satisfies(m -> assertThat(m[5].split(",")).contains("ro"));
    }

    private static String dockerFile(String id, String file) {
        return raw.inspectContainerCmd(id).exec().getResolvConfPath().replace("resolv.conf", file);
    }

    @Test
    void inspectAndEnvironments_startedContainer_foundByNameIdAndLabel() throws Exception {
        var spec = spec("found");
        String id = engine.start(spec);

        var expected = new ContainerStatus(id, spec.name(), true, withImageLabel(spec.labels()));
        assertThat(engine.inspect(spec.name())).contains(expected);
        assertThat(engine.inspect(id)).contains(expected);
        assertThat(engine.environments()).contains(expected);
        assertThat(engine.inspect(PREFIX + "absent")).isEmpty();
    }

    @Test
    void environments_createdButNeverStarted_listedAsNotRunning() throws Exception {
        var spec = spec("created");
        String id = raw.createContainerCmd(IMAGE).withName(spec.name()).withLabels(spec.labels()).exec().getId();

        assertThat(engine.environments())
                .contains(new ContainerStatus(id, spec.name(), false, withImageLabel(spec.labels())));
    }

    @Test
    void remove_twice_trueThenFalse() throws Exception {
        var spec = spec("removed");
        String id = engine.start(spec);

        assertThat(engine.remove(spec.name())).isTrue();
        assertThat(engine.remove(spec.name())).isFalse();
        assertThat(engine.remove(id)).isFalse();
        assertThat(engine.inspect(id)).isEmpty();
        assertThat(engine.environments()).noneMatch(c -> c.id().equals(id));
    }

    @Test
    void start_leftoverOfSameEnvironment_isReplaced() throws Exception {
        var spec = spec("leftover");
        String leftover = raw.createContainerCmd(IMAGE).withName(spec.name()).withLabels(spec.labels()).exec().getId();

        String id = engine.start(spec);

        assertThat(id).isNotEqualTo(leftover);
        assertThat(engine.inspect(leftover)).isEmpty();
        assertThat(engine.inspect(spec.name())).hasValueSatisfying(c -> {
            assertThat(c.id()).isEqualTo(id);
            assertThat(c.running()).isTrue();
        });
        assertThat(engine.start(spec)).isNotEqualTo(id);   // and a running one, too
    }

    @Test
    void start_nameTakenByAnotherEnvironment_refusedAndUntouched() throws Exception {
        var spec = spec("taken");
        String other = raw.createContainerCmd(IMAGE).withName(spec.name())
                .withLabels(Map.of(DockerEngine.ENV_LABEL, "someone-else")).exec().getId();

        assertThatThrownBy(() -> engine.start(spec))
                .isInstanceOf(ContainerException.class)
                .hasMessage("container " + spec.name() + " exists and is not environment " + spec.name()
                        + " (it is someone-else)");
        assertThat(engine.inspect(other)).isPresent();
    }

    @Test
    void start_missingImageOrSocketDirectory_failsAndLeavesNothing() {
        var noImage = new EnvironmentContainer(PREFIX + "noimage", "veggur-test-absent:1", UID, socketDirectory,
                Map.of(DockerEngine.ENV_LABEL, "x"));
        var noDirectory = new EnvironmentContainer(PREFIX + "nodir", IMAGE, UID, socketDirectory.resolve("absent"),
                Map.of(DockerEngine.ENV_LABEL, "x"));

        assertThatThrownBy(() -> engine.start(noImage)).isInstanceOf(ContainerException.class)
                .hasMessage("create container " + PREFIX + "noimage: No such image: veggur-test-absent:1 (HTTP 404)");
        assertThatThrownBy(() -> engine.start(noDirectory)).isInstanceOf(ContainerException.class)
                .hasMessageStartingWith("create container " + PREFIX + "nodir: ")
                .hasMessageContaining("bind source path does not exist")
                .hasMessageNotContaining("\n");
        assertThat(raw.listContainersCmd().withShowAll(true).withNameFilter(List.of(PREFIX)).exec()).isEmpty();
    }

    @Test
    void exec_exitCodeAndStreams_keptApart() throws Exception {
        String id = engine.start(spec("streams"));

        Run result = exec(id, "sh", "-c", "echo out; echo err >&2; exit 7");

        assertThat(result.exitCode()).isEqualTo(7);
        assertThat(text(result.stdout())).isEqualTo("out\n");
        assertThat(text(result.stderr())).isEqualTo("err\n");
        assertThat(result.timedOut()).isFalse();
    }

    @Test
    void exec_passesOutputOnWhileTheCommandRuns() throws Exception {
        String id = engine.start(spec("live"));
        // The command goes on only once the host has seen its first line: a run that held output back until the
        // command ended would wait for ever (here: time out).
        Path go = socketDirectory.resolve("go");
        CapturedOutput captured = new CapturedOutput();
        ExecResult result = engine.exec(id, List.of("sh", "-c",
                "echo first; while [ ! -e /vmi/go ]; do sleep 0.1; done; echo second"), TIMEOUT,
                (stream, bytes, offset, length) -> {
                    captured.write(stream, bytes, offset, length);
                    if (text(captured.stdout()).startsWith("first\n")) {
                        Files.writeString(go, "");
                    }
                });

        assertThat(result.timedOut()).isFalse();
        assertThat(result.exitCode()).isZero();
        assertThat(text(captured.stdout())).isEqualTo("first\nsecond\n");
    }

    @Test
    void exec_muchOutput_isPassedOnWhole() throws Exception {
        String id = engine.start(spec("loud"));
        String loud = "i=0; while [ $i -lt 4000 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done";

        Run out = exec(id, "sh", "-c", loud + "; exit 3");
        Run err = exec(id, "sh", "-c", "(" + loud + ") >&2; echo done");

        assertThat(out.stdout()).hasSize(4000 * 41);
        assertThat(out.exitCode()).isEqualTo(3);
        assertThat(err.stderr()).hasSize(4000 * 41);
        assertThat(text(err.stdout())).isEqualTo("done\n");
    }

    @Test
    void exec_readerGone_killsTheCommand() throws Exception {
        String id = engine.start(spec("gone"));

        assertThatThrownBy(() -> engine.exec(id, List.of("sh", "-c", "echo started; sleep 3600"), TIMEOUT,
                (stream, bytes, offset, length) -> {
                    throw new IOException("the client left");
                }))
                .isInstanceOf(ExecReaderGoneException.class)
                .hasRootCauseMessage("the client left");

        String commands = ok(id, "sh", "-c", "cat /proc/[0-9]*/cmdline").replace('\0', ' ');
        assertThat(commands).doesNotContain("sleep 3600").contains("sleep 86400");
    }

    @Test
    void exec_readerGone_whileTheCommandIsSilent_killsTheCommand() throws Exception {
        String id = engine.start(spec("silent"));
        CapturedOutput captured = new CapturedOutput();

        assertThatThrownBy(() -> engine.exec(id, List.of("sh", "-c", "echo started; sleep 3600"), TIMEOUT,
                new ExecOutput() {
                    @Override
                    public void write(ExecStream stream, byte[] bytes, int offset, int length) {
                        captured.write(stream, bytes, offset, length);
                    }

                    @Override
                    public void keepAlive() throws IOException {
                        throw new IOException("the client left");
                    }
                }))
                .isInstanceOf(ExecReaderGoneException.class)
                .hasRootCauseMessage("the client left");

        assertThat(text(captured.stdout())).isEqualTo("started\n");
        String commands = ok(id, "sh", "-c", "cat /proc/[0-9]*/cmdline").replace('\0', ' ');
        assertThat(commands).doesNotContain("sleep 3600").contains("sleep 86400");
    }

    @Test
    void exec_pastTheTimeout_returnsTimedOutAndKillsTheCommand() throws Exception {
        String id = engine.start(spec("timeout"));

        long start = System.nanoTime();
        CapturedOutput captured = new CapturedOutput();
        ExecResult result = engine.exec(id, List.of("sh", "-c", "echo started; sleep 30; echo never"),
                Duration.ofSeconds(1), captured);
        long elapsedMillis = (System.nanoTime() - start) / 1_000_000;

        assertThat(result.timedOut()).isTrue();
        assertThat(result.exitCode()).isEqualTo(-1);
        assertThat(text(captured.stdout())).isEqualTo("started\n");
        assertThat(elapsedMillis).isBetween(1000L, 3000L);
        // Neither the shell nor its sleep is left: every cmdline in the container's pid namespace.
        String commands = ok(id, "sh", "-c", "cat /proc/[0-9]*/cmdline").replace('\0', ' ');
        assertThat(commands).doesNotContain("sleep 30").contains("sleep 86400");
    }

    @Test
    void exec_absentContainer_clearError() {
        assertThatThrownBy(() -> engine.exec(PREFIX + "absent", List.of("id"), TIMEOUT, new CapturedOutput()))
                .isInstanceOf(ContainerException.class)
                .hasMessage("exec id in container " + PREFIX + "absent: No such container: " + PREFIX + "absent (HTTP 404)");
    }

    @Test
    void connect_noDaemonAtThatSocket_clearOneLineError() {
        String host = "unix://" + temp.resolve("absent.sock");

        assertThatThrownBy(() -> DockerEngine.connect(host))
                .isInstanceOf(ContainerException.class)
                .hasMessageStartingWith("Docker Engine at " + host + " does not answer: ")
                .hasMessageNotContaining("\n");
        assertThatThrownBy(() -> DockerEngine.connect("tcp://127.0.0.1:2375"))
                .isInstanceOf(IllegalArgumentException.class);
    }

    /** build-image.sh's label marks tools images; the test image has none, so it is never chosen. */
    @Test
    void newestToolsImage_labelledImagesOnly() throws Exception {
        List<Image> tools = raw.listImagesCmd().withLabelFilter(DockerEngine.TOOLS_IMAGE_LABEL).exec();
        if (tools.isEmpty()) {
            assertThatThrownBy(engine::newestToolsImage).isInstanceOf(ContainerException.class)
                    .hasMessageContaining("build-image.sh");
        } else {
            String newest = engine.newestToolsImage();
            assertThat(raw.inspectImageCmd(newest).exec().getConfig().getLabels())
                    .containsKey(DockerEngine.TOOLS_IMAGE_LABEL);
            long created = tools.stream().mapToLong(Image::getCreated).max().orElseThrow();
            assertThat(tools).filteredOn(i -> i.getCreated() == created)
                    .anySatisfy(i -> assertThat(i.getId()).isEqualTo(raw.inspectImageCmd(newest).exec().getId()));
        }
        assertThat(raw.inspectImageCmd(IMAGE).exec().getConfig().getLabels())
                .containsEntry("io.veggur.test", "1").doesNotContainKey(DockerEngine.TOOLS_IMAGE_LABEL);
    }

    @Test
    void environmentContainer_invalidSpecs_refused() {
        Map<String, String> labels = Map.of(DockerEngine.ENV_LABEL, "e");
        assertThatThrownBy(() -> new EnvironmentContainer("-bad", IMAGE, UID, socketDirectory, labels))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new EnvironmentContainer("a".repeat(64), IMAGE, UID, socketDirectory, labels))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new EnvironmentContainer("ok", IMAGE, 0, socketDirectory, labels))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new EnvironmentContainer("ok", IMAGE, UID, Path.of("relative"), labels))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new EnvironmentContainer("ok", IMAGE, UID, socketDirectory, Map.of()))
                .isInstanceOf(IllegalArgumentException.class);
    }

    private EnvironmentContainer spec(String suffix) {
        String name = PREFIX + suffix;
        return new EnvironmentContainer(name, IMAGE, UID, socketDirectory,
                Map.of(DockerEngine.ENV_LABEL, name, "io.veggur.socket-dir", socketDirectory.toString()));
    }

    /** Docker merges the image's labels into the container's. */
    private static Map<String, String> withImageLabel(Map<String, String> labels) {
        var merged = new HashMap<>(labels);
        merged.put("io.veggur.test", "1");
        return merged;
    }

    /** How a command ended, with all it wrote. */
    private record Run(int exitCode, boolean timedOut, byte[] stdout, byte[] stderr) {}

    private static Run exec(String container, String... argv) throws ContainerException, ExecReaderGoneException {
        CapturedOutput captured = new CapturedOutput();
        ExecResult ended = engine.exec(container, List.of(argv), TIMEOUT, captured);
        return new Run(ended.exitCode(), ended.timedOut(), captured.stdout(), captured.stderr());
    }

    /** Stdout of a command that must succeed. */
    private static String ok(String container, String... argv) throws ContainerException, ExecReaderGoneException {
        Run result = exec(container, argv);
        assertThat(result.exitCode()).as("%s: %s", List.of(argv), text(result.stderr())).isZero();
        return text(result.stdout());
    }

    private static String text(byte[] bytes) {
        return new String(bytes, UTF_8);
    }

    private static String run(List<String> command) throws Exception {
        Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(process.getInputStream().readAllBytes(), UTF_8);
        if (!process.waitFor(120, TimeUnit.SECONDS) || process.exitValue() != 0) {
            fail(command + " failed: " + out);
        }
        return out;
    }
}
