package io.veggur.host.vm;

import io.veggur.host.vm.VmState.Phase;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;

/**
 * Starts, stops and describes VMs under a {@link VeggurHome}. Each VM is owned by a detached supervisor process
 * (its own session, so it outlives this JVM); this class only spawns supervisors, signals them and reads the state
 * they record.
 */
public final class VmManager {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(20);
    private static final String SUPERVISOR_CLASS = "io.veggur.host.supervisor.SupervisorMain";

    private final VeggurHome home;

    public VmManager(VeggurHome home) {
        this.home = home;
    }

    public VmInfo start(VmSpec spec) throws VmException, IOException, InterruptedException {
        VmDirectory directory = home.vm(spec.name());
        Optional<VmState> existing = state(directory);
        if (existing.isPresent() && isAlive(existing.get())) {
            throw new VmException("VM '" + spec.name() + "' is already " + phaseName(existing.get()));
        }
        if (existing.isPresent()) {
            cleanUpAfterSupervisor(directory, existing.get());
        }
        VmConfig config = configure(spec);
        Files.createDirectories(home.vmsDirectory());
        VeggurHome.privateDirectory(directory.root());
        for (Path stale : List.of(directory.state(), directory.consoleLog(), directory.qemuLog())) {
            Files.deleteIfExists(stale);
        }
        JsonFiles.write(directory.config(), config);
        spawnSupervisor(directory);
        return awaitStarted(directory);
    }

    private VmConfig configure(VmSpec spec) throws VmException {
        Path kernel = spec.kernel();
        Path initrd = spec.initrd();
        String append = spec.append();
        if (kernel == null) {
            if (initrd != null) {
                throw new VmException("--initrd needs --kernel");
            }
            BuiltinGuest guest = BuiltinGuest.locate();
            kernel = guest.kernel();
            initrd = guest.initrd();
            append = append == null ? BuiltinGuest.APPEND : BuiltinGuest.APPEND + " " + append;
        }
        kernel = readableFile(kernel, "kernel");
        initrd = initrd == null ? null : readableFile(initrd, "initrd");
        Path disk = spec.disk() == null ? null : readableFile(spec.disk(), "disk");
        if (spec.memoryBytes() < VmSpec.MIN_MEMORY || spec.memoryBytes() % (1 << 20) != 0) {
            throw new VmException("memory must be a whole number of MiB and at least 64M, got " + spec.memoryBytes() + " bytes");
        }
        if (spec.vcpus() < 1 || spec.vcpus() > VmSpec.MAX_VCPUS) {
            throw new VmException("vcpus must be 1.." + VmSpec.MAX_VCPUS + ", got " + spec.vcpus());
        }
        String accel = Accelerator.resolve(spec.accel(), kernel, initrd);
        String cpu = spec.cpuModel() != null ? spec.cpuModel() : accel.equals("kvm") ? "host" : "max";
        if (!cpu.matches("[A-Za-z0-9_.,=+-]+")) {
            throw new VmException("invalid CPU model '" + cpu + "'");
        }
        String id = HexFormat.of().formatHex(SecureRandom.getSeed(8));
        Path ramFile = Path.of("/dev/shm", "veggur-" + id, "ram");
        return new VmConfig(spec.name(), id, kernel, initrd, append, disk, spec.memoryBytes(), spec.vcpus(), cpu, accel,
                spec.allowWrite(), ramFile, spec.virtioPorts());
    }

    private static Path readableFile(Path path, String what) throws VmException {
        Path absolute = path.toAbsolutePath().normalize();
        if (!Files.isRegularFile(absolute) || !Files.isReadable(absolute)) {
            throw new VmException(what + " file not found or not readable: " + path);
        }
        return absolute;
    }

    private void spawnSupervisor(VmDirectory directory) throws IOException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = List.of("setsid", java, "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow", "-Xmx256m", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), SUPERVISOR_CLASS, directory.root().toString());
        new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(directory.supervisorLog().toFile()))
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .start();
    }

    private VmInfo awaitStarted(VmDirectory directory) throws VmException, IOException, InterruptedException {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            Optional<VmState> state = state(directory);
            if (state.isPresent()) {
                switch (state.get().phase()) {
                    case RUNNING -> {
                        return info(directory);
                    }
                    case FAILED, STOPPED -> throw new VmException("VM '" + directory.name() + "' failed to start: "
                            + state.get().error() + " (see " + directory.supervisorLog() + ")");
                    default -> { }
                }
            }
            Thread.sleep(25);
        }
        throw new VmException("VM '" + directory.name() + "' did not start within " + START_TIMEOUT.toSeconds()
                + " s (see " + directory.supervisorLog() + ")");
    }

    /** Stops a VM: SIGTERM to its supervisor, which quits QEMU and cleans up; escalates to SIGKILL on timeout. */
    public VmInfo stop(String name) throws VmException, IOException, InterruptedException {
        VmDirectory directory = existing(name);
        VmState state = state(directory).orElseThrow(() -> new VmException("VM '" + name + "' has no recorded state"));
        Optional<ProcessHandle> supervisor = supervisor(state, directory);
        if (supervisor.isPresent()) {
            supervisor.get().destroy();
            try {
                supervisor.get().onExit().get(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException | ExecutionException e) {
                supervisor.get().destroyForcibly();
                ProcessHandle.of(state.qemuPid()).ifPresent(ProcessHandle::destroyForcibly);
                JsonFiles.write(directory.state(), VmState.of(Phase.FAILED, 0, 0, "killed after not stopping within "
                        + STOP_TIMEOUT.toSeconds() + " s"));
            }
        }
        cleanUpAfterSupervisor(directory, state);
        return info(directory);
    }

    /**
     * What a supervisor that died without cleaning up (SIGKILL, crash) leaves behind: its QEMU, now orphaned (killed
     * only if its command line names this VM's RAM file, so a recycled pid is never touched), and the RAM file on
     * tmpfs, which would otherwise hold the guest's memory until reboot. Nothing to do after a clean stop.
     */
    private void cleanUpAfterSupervisor(VmDirectory directory, VmState state) throws IOException {
        if (supervisor(state, directory).isPresent()) {
            return;
        }
        VmConfig config = JsonFiles.read(directory.config(), VmConfig.class);
        ProcessHandle.of(state.qemuPid())
                .filter(ProcessHandle::isAlive)
                .filter(qemu -> commandLine(qemu.pid()).contains(config.ramFile().toString()))
                .ifPresent(qemu -> {
                    qemu.destroyForcibly();
                    qemu.onExit().join();
                });
        Files.deleteIfExists(config.ramFile());
        Files.deleteIfExists(config.ramFile().getParent());
    }

    public List<VmInfo> list() throws IOException {
        if (!Files.isDirectory(home.vmsDirectory())) {
            return List.of();
        }
        List<VmInfo> result = new ArrayList<>();
        try (Stream<Path> entries = Files.list(home.vmsDirectory())) {
            for (Path entry : entries.sorted().toList()) {
                VmDirectory directory = new VmDirectory(entry);
                if (Files.exists(directory.config())) {
                    result.add(info(directory));
                }
            }
        }
        return result;
    }

    public VmInfo info(String name) throws VmException, IOException {
        return info(existing(name));
    }

    public VmDirectory directory(String name) throws VmException {
        return existing(name);
    }

    private VmDirectory existing(String name) throws VmException {
        VmDirectory directory;
        try {
            directory = home.vm(name);
        } catch (IllegalArgumentException e) {
            throw new VmException(e.getMessage());
        }
        if (!Files.exists(directory.config())) {
            throw new VmException("no VM named '" + name + "'");
        }
        return directory;
    }

    private VmInfo info(VmDirectory directory) throws IOException {
        VmConfig config = JsonFiles.read(directory.config(), VmConfig.class);
        Optional<VmState> state = state(directory);
        String phase = state.map(this::phaseName).orElse("unknown");
        return new VmInfo(config.name(), config.id(), phase, directory.introspectionSocket().toString(),
                directory.consoleLog().toString(),
                config.memoryBytes(), config.vcpus(), config.accel(), config.cpuModel(),
                state.map(VmState::supervisorPid).orElse(0L), state.map(VmState::qemuPid).orElse(0L),
                state.map(VmState::error).orElse(null));
    }

    /** A state whose supervisor died without recording it (SIGKILL, crash) is reported as failed. */
    private String phaseName(VmState state) {
        if (state.isActive() && !isAlive(state)) {
            return "failed";
        }
        return state.phase().name().toLowerCase(Locale.ROOT);
    }

    private boolean isAlive(VmState state) {
        return state.isActive() && ProcessHandle.of(state.supervisorPid()).map(ProcessHandle::isAlive).orElse(false);
    }

    /** The live supervisor process, checked by its command line so a recycled pid is never signalled. */
    private Optional<ProcessHandle> supervisor(VmState state, VmDirectory directory) {
        return ProcessHandle.of(state.supervisorPid())
                .filter(ProcessHandle::isAlive)
                .filter(p -> commandLine(p.pid()).contains(SUPERVISOR_CLASS)
                        && commandLine(p.pid()).contains(directory.root().toString()));
    }

    private static String commandLine(long pid) {
        try {
            return new String(Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline"))).replace('\0', ' ');
        } catch (IOException e) {
            return "";
        }
    }

    private static Optional<VmState> state(VmDirectory directory) throws IOException {
        if (!Files.exists(directory.state())) {
            return Optional.empty();
        }
        return Optional.of(JsonFiles.read(directory.state(), VmState.class));
    }
}
