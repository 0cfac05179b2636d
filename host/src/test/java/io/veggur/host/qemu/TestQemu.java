package io.veggur.host.qemu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A firmware-only QEMU (SeaBIOS, no kernel, vCPUs held by {@code -S}) with its gdbstub and QMP on UNIX sockets in a
 * private directory. Tests must close it; closing kills QEMU.
 */
final class TestQemu implements AutoCloseable {
    static final String BINARY = "qemu-system-x86_64";
    private static final long START_TIMEOUT_MS = 10_000;

    private final Process process;
    private final Path directory;

    private TestQemu(Process process, Path directory) {
        this.process = process;
        this.directory = directory;
    }

    static TestQemu start(Path directory, int vcpus) throws IOException, InterruptedException {
        Files.setPosixFilePermissions(directory, PosixFilePermissions.fromString("rwx------"));
        Path gdb = directory.resolve("gdb.sock");
        Path qmp = directory.resolve("qmp.sock");
        Process process = new ProcessBuilder(List.of(BINARY,
                "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "64M", "-smp", Integer.toString(vcpus),
                "-display", "none", "-nodefaults", "-no-user-config", "-S",
                "-chardev", "socket,id=gdb0,path=" + gdb + ",server=on,wait=off", "-gdb", "chardev:gdb0",
                "-qmp", "unix:" + qmp + ",server=on,wait=off"))
                .redirectErrorStream(true)
                .redirectOutput(directory.resolve("qemu.log").toFile())
                .start();
        TestQemu qemu = new TestQemu(process, directory);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(START_TIMEOUT_MS);
        while (!Files.exists(gdb) || !Files.exists(qmp)) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                String log = Files.readString(directory.resolve("qemu.log"));
                qemu.close();
                throw new IOException("QEMU did not open its sockets (alive=" + process.isAlive() + "): " + log);
            }
            Thread.sleep(10);
        }
        return qemu;
    }

    Path gdbSocket() {
        return directory.resolve("gdb.sock");
    }

    Path qmpSocket() {
        return directory.resolve("qmp.sock");
    }

    boolean waitForExit(long millis) throws InterruptedException {
        return process.waitFor(millis, TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
        process.destroyForcibly();
        try {
            process.waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
