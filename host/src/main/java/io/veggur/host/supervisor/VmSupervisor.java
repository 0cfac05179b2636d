package io.veggur.host.supervisor;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.veggur.host.qemu.GdbStub;
import io.veggur.host.qemu.GdbVcpuControl;
import io.veggur.host.qemu.QemuCommandLine;
import io.veggur.host.qemu.QemuMemoryMap;
import io.veggur.host.qemu.QmpClient;
import io.veggur.host.server.AccessPolicy;
import io.veggur.host.server.GuestRam;
import io.veggur.host.server.IntrospectedVm;
import io.veggur.host.server.IntrospectionServer;
import io.veggur.host.server.Role;
import io.veggur.host.vm.JsonFiles;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmConfig;
import io.veggur.host.vm.VmDirectory;
import io.veggur.host.vm.VmState;
import io.veggur.host.vm.VmState.Phase;
import io.veggur.protocol.Event;
import io.veggur.protocol.MemoryMap;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Owns one QEMU process and its introspection socket for the VM's whole life.
 *
 * <p>Start-up order matters: QEMU starts with vCPUs stopped, the supervisor attaches QMP and the gdbstub, maps RAM,
 * opens the introspection socket, and only then lets the guest run, so a client never sees a VM it cannot inspect.
 * The VM ends when QEMU exits (guest power-off, panic) or on SIGTERM (the supervisor asks QEMU to quit, then kills
 * it after a grace period). Either way the socket and the RAM file are removed and the final state is recorded.
 */
final class VmSupervisor {
    private static final Logger LOG = System.getLogger(VmSupervisor.class.getName());
    private static final Duration SOCKET_WAIT = Duration.ofSeconds(20);
    private static final Duration QUIT_GRACE = Duration.ofSeconds(10);

    private final VmConfig config;
    private final VmDirectory directory;
    private final long pid = ProcessHandle.current().pid();
    private final CountDownLatch finished = new CountDownLatch(1);
    private volatile Process qemu;
    private volatile QmpClient qmp;
    private volatile boolean stopRequested;
    private GdbStub gdb;
    private GuestRam ram;
    private IntrospectedVm vm;
    private IntrospectionServer server;
    private ConsoleRelay console;
    private ControlChannel control;

    VmSupervisor(VmConfig config, VmDirectory directory) {
        this.config = config;
        this.directory = directory;
    }

    int run() {
        Runtime.getRuntime().addShutdownHook(new Thread(this::onTerminate, "veggur-terminate"));
        try {
            record(Phase.STARTING, null);
            launch();
            record(Phase.RUNNING, null);
            LOG.log(Level.INFO, "VM " + config.name() + " running, introspection socket " + server.socketPath());
            int exit = qemu.waitFor();
            vm.publish(new Event.VmStateChanged(Event.VmState.SHUTDOWN, stopRequested ? "stopped" : "guest-exit"));
            cleanUp();
            boolean clean = stopRequested || exit == 0;
            record(clean ? Phase.STOPPED : Phase.FAILED, clean ? null : "QEMU exited with status " + exit
                    + lastLines(directory.qemuLog()));
            return clean ? 0 : 1;
        } catch (Exception e) {
            LOG.log(Level.ERROR, "VM " + config.name() + " failed", e);
            killQemu();
            cleanUp();
            recordQuietly(Phase.FAILED, e.getMessage() + lastLines(directory.qemuLog()));
            return 1;
        } finally {
            finished.countDown();
        }
    }

    private void launch() throws IOException, InterruptedException {
        VeggurHome.privateDirectory(directory.privateDirectory());
        VeggurHome.privateDirectory(directory.socketDirectory());
        VeggurHome.privateDirectory(config.ramFile().getParent());
        for (Path stale : List.of(directory.qmpSocket(), directory.gdbSocket(), directory.serialSocket())) {
            Files.deleteIfExists(stale);
        }
        qemu = new ProcessBuilder(QemuCommandLine.build(config, directory))
                .redirectErrorStream(true)
                .redirectOutput(directory.qemuLog().toFile())
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .start();
        record(Phase.STARTING, null);
        awaitSockets(directory.qmpSocket(), directory.gdbSocket(), directory.serialSocket());
        console = new ConsoleRelay(directory.serialSocket(), directory.consoleLog(), directory.consoleSocket());
        qmp = QmpClient.connect(directory.qmpSocket(), Duration.ofSeconds(10));
        gdb = GdbStub.connect(directory.gdbSocket(), Duration.ofSeconds(10));
        String mtree = qmp.execute("human-monitor-command",
                JsonNodeFactory.instance.objectNode().put("command-line", "info mtree")).asText();
        MemoryMap memoryMap = QemuMemoryMap.parse(mtree, config.memoryBytes());
        ram = new GuestRam(config.ramFile(), memoryMap);
        // QEMU and the server hold their descriptors; from now on nobody may open the file for writing, not even a
        // capability-less uid 0 in a container reopening a granted read-only descriptor through /proc/self/fd.
        Files.setPosixFilePermissions(config.ramFile(), PosixFilePermissions.fromString("r--------"));
        vm = new IntrospectedVm(config.id(), ram, new GdbVcpuControl(gdb, config.accel().equals("tcg")));
        Role ownerRole = config.allowWrite() ? Role.WRITE : Role.TRACE;
        server = new IntrospectionServer(directory.introspectionSocket(), vm, new AccessPolicy(ownerRole, "owner", true));
        server.start();
        control = new ControlChannel(directory.controlSocket(), vm, ownerRole);
        gdb.resume();
    }

    private void awaitSockets(Path... sockets) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + SOCKET_WAIT.toNanos();
        for (Path socket : sockets) {
            while (!Files.exists(socket)) {
                if (!qemu.isAlive()) {
                    throw new IOException("QEMU exited during start-up with status " + qemu.exitValue());
                }
                if (System.nanoTime() > deadline) {
                    throw new IOException("QEMU did not open " + socket.getFileName() + " within " + SOCKET_WAIT.toSeconds() + " s");
                }
                Thread.sleep(20);
            }
        }
    }

    /** SIGTERM: ask QEMU to quit, kill it after a grace period, and wait until {@link #run} has cleaned up. */
    private void onTerminate() {
        if (finished.getCount() == 0) {
            return;
        }
        stopRequested = true;
        recordQuietly(Phase.STOPPING, null);
        Process process = qemu;
        if (process != null) {
            try {
                QmpClient client = qmp;
                if (client != null) {
                    client.execute("quit");
                }
            } catch (IOException | RuntimeException e) {
                LOG.log(Level.WARNING, "QMP quit failed, killing QEMU: " + e.getMessage());
            }
            try {
                if (!process.waitFor(QUIT_GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
                    process.destroyForcibly();
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
            }
        }
        try {
            finished.await(QUIT_GRACE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException ignored) {
            // the JVM is going down anyway
        }
    }

    private void killQemu() {
        if (qemu != null && qemu.isAlive()) {
            qemu.destroyForcibly();
        }
    }

    private void cleanUp() {
        closeQuietly(control);
        closeQuietly(server);
        closeQuietly(console);
        closeQuietly(gdb);
        closeQuietly(qmp);
        closeQuietly(ram);
        try {
            Files.deleteIfExists(config.ramFile());
            Files.deleteIfExists(config.ramFile().getParent());
            Files.deleteIfExists(directory.introspectionSocket());
        } catch (IOException e) {
            LOG.log(Level.WARNING, "could not remove VM files: " + e.getMessage());
        }
    }

    private void record(Phase phase, String error) throws IOException {
        long qemuPid = qemu == null ? 0 : qemu.pid();
        JsonFiles.write(directory.state(), VmState.of(phase, pid, qemuPid, error));
    }

    private void recordQuietly(Phase phase, String error) {
        try {
            record(phase, error);
        } catch (IOException e) {
            LOG.log(Level.ERROR, "could not record state " + phase, e);
        }
    }

    private static String lastLines(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            List<String> tail = lines.subList(Math.max(0, lines.size() - 5), lines.size());
            return tail.isEmpty() ? "" : " (QEMU said: " + String.join(" / ", tail) + ")";
        } catch (IOException e) {
            return "";
        }
    }

    private static void closeQuietly(AutoCloseable closeable) {
        if (closeable != null) {
            try {
                closeable.close();
            } catch (Exception e) {
                LOG.log(Level.WARNING, "close failed: " + e.getMessage());
            }
        }
    }
}
