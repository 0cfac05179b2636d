package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.regex.Pattern;
import io.veggur.host.vm.GuestConsole;
import io.veggur.protocol.Capability;
import io.veggur.vmi.IntrospectionSession;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import io.veggur.host.vm.VmDirectory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The VM life cycle and the {@code vmi} commands through the real CLI in separate processes: the VM must outlive the
 * {@code vm start} process that created it, and every bad input must end in one clear line and a non-zero exit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class VmLifecycleCliIT {
    private Path home;
    private TestGuestMarker marker;

    @BeforeAll
    void startThroughTheCli() throws Exception {
        home = Files.createTempDirectory("veggur-cli-it-");
        Cli.Result start = Cli.run(home, "host", "vm", "start", "cli-it", "--memory", "256M", "--vcpus", "1", "--accel", "auto");
        assertThat(start.exitCode()).as(start.stderr()).isZero();
        GuestConsole console = new GuestConsole(new VmDirectory(home.resolve("vms/cli-it")));
        console.awaitLine(Pattern.compile("VEGGUR-READY"), TestVm.BOOT_TIMEOUT);
        marker = TestGuestMarker.await(console, TestVm.BOOT_TIMEOUT);
    }

    @AfterAll
    void cleanUp() throws Exception {
        if (home != null) {
            Cli.run(home, "host", "vm", "stop", "cli-it");
            TestVm.deleteTree(home);
        }
    }

    @Test
    void vmInfoJson_describesTheRunningVm() throws Exception {
        Cli.Result info = Cli.run(home, "host", "vm", "info", "cli-it", "--json");
        assertThat(info.exitCode()).as(info.stderr()).isZero();
        JsonNode json = Json.MAPPER.readTree(info.stdout());
        assertThat(json.get("name").asText()).isEqualTo("cli-it");
        assertThat(json.get("state").asText()).isEqualTo("running");
        assertThat(json.get("memory").asLong()).isEqualTo(256L << 20);
        assertThat(json.get("vcpus").asInt()).isEqualTo(1);
        assertThat(json.get("accel").asText()).isEqualTo(expectedAccel());
        assertThat(Path.of(json.get("socket").asText())).exists();
        assertThat(Files.readString(Path.of(json.get("console").asText()))).contains("VEGGUR-READY");
        assertThat(Files.getPosixFilePermissions(Path.of(json.get("socket").asText()).getParent()))
                .as("socket directory is 0700").hasSize(3);
        assertThat(Cli.run(home, "host", "vm", "list").stdout()).containsPattern("cli-it\\s+running");
    }

    @Test
    void vmiRead_ofTheMarkerPage_printsTheGuestsBytes() throws Exception {
        Path out = home.resolve("marker.bin");
        Cli.Result read = Cli.run(home, "vmi", "read", "--vm", "cli-it", "--physical",
                "0x" + Long.toHexString(marker.markerAddress()), "--length", "4096", "--out", out.toString());
        assertThat(read.exitCode()).as(read.stderr()).isZero();
        assertThat(Files.readAllBytes(out)).isEqualTo(marker.expectedMarkerPage());

        Cli.Result hex = Cli.run(home, "vmi", "read", "--vm", "cli-it", "--physical",
                Long.toString(marker.markerAddress()), "--length", "16", "--hex");
        assertThat(hex.stdout()).contains(HexFormat.ofDelimiter(" ").formatHex(marker.expectedMarkerPage(), 0, 16));
    }

    @Test
    void vmiInfoAndRegs_throughTheSocketPath() throws Exception {
        String socket = home.resolve("vms/cli-it/socket/vmi.sock").toString();
        Cli.Result info = Cli.run(home, "vmi", "info", "--socket", socket, "--json");
        assertThat(info.exitCode()).as(info.stderr()).isZero();
        JsonNode json = Json.MAPPER.readTree(info.stdout());
        assertThat(json.get("vcpus").asInt()).isEqualTo(1);
        assertThat(json.get("memoryBytes").asLong()).isEqualTo(256L << 20);
        Cli.Result regs = Cli.run(home, "vmi", "regs", "--socket", socket, "--json");
        assertThat(regs.exitCode()).as(regs.stderr()).isZero();
        long cr0 = Long.parseUnsignedLong(Json.MAPPER.readTree(regs.stdout()).get("cr0").asText().substring(2), 16);
        assertThat(cr0 & (1L << 31)).as("CR0.PG").isNotZero();
    }

    @Test
    void badInput_endsInOneClearLine_andNonZeroExit() throws Exception {
        assertRefused(Cli.run(home, "host", "vm", "info", "no-such-vm"), "no VM named 'no-such-vm'");
        assertRefused(Cli.run(home, "vmi", "info", "--vm", "no-such-vm"), "no VM named 'no-such-vm'");
        assertRefused(Cli.run(home, "host", "vm", "start", "k", "--kernel", "/nonexistent/vmlinuz"), "kernel file not found");
        assertRefused(Cli.run(home, "host", "vm", "start", "Bad_Name"), "invalid VM name");
        assertRefused(Cli.run(home, "host", "vm", "start", "cli-it"), "already running");
        assertRefused(Cli.run(home, "host", "vm", "start", "m", "--memory", "lots"), "invalid size");
        assertRefused(Cli.run(home, "vmi", "read", "--vm", "cli-it", "--physical", "0x7fffffffffff", "--length", "8"),
                "not inside guest RAM");
        assertRefused(Cli.run(home, "vmi", "info", "--socket", "/nonexistent/vmi.sock"), "not found");

        Path notASocket = home.resolve("not-a-socket");
        Files.writeString(notASocket, "hello");
        assertRefused(Cli.run(home, "vmi", "info", "--socket", notASocket.toString()), "not-a-socket");
        try (ForeignSocket foreign = new ForeignSocket(home.resolve("foreign.sock"))) {
            assertRefused(Cli.run(home, "vmi", "info", "--socket", foreign.path().toString()),
                    "does not speak the Veggur introspection protocol");
        }
    }

    @Test
    void vmOutlivesTheCli_andStopRemovesTheSocket() throws Exception {
        Path otherHome = Files.createTempDirectory("veggur-cli-it-stop-");
        try {
            Path disk = otherHome.resolve("disk.raw");
            Files.write(disk, new byte[3 << 20]);
            Cli.Result start = Cli.run(otherHome, "host", "vm", "start", "short", "--accel", "tcg", "--cpu", "qemu64", "--allow-write",
                    "--disk", disk.toString());
            assertThat(start.exitCode()).as(start.stderr()).isZero();
            // The CLI process has exited; the supervisor and QEMU live on.
            GuestConsole console = new GuestConsole(new VmDirectory(otherHome.resolve("vms/short")));
            console.awaitLine(Pattern.compile("VEGGUR-READY"), TestVm.BOOT_TIMEOUT);
            Path socket = otherHome.resolve("vms/short/socket/vmi.sock");
            assertThat(socket).exists();
            assertGuestSeesWrites(socket, TestGuestMarker.await(console, TestVm.BOOT_TIMEOUT));
            console.type("echo VEGGUR-DISK sectors=$(cat /sys/block/vda/size)");
            assertThat(console.awaitLine(Pattern.compile("VEGGUR-DISK sectors=(\\d+)"), Duration.ofSeconds(30)).group(1))
                    .as("the guest sees the --disk file as a virtio disk of its size").isEqualTo(Long.toString((3 << 20) / 512));
            Cli.Result stop = Cli.run(otherHome, "host", "vm", "stop", "short");
            assertThat(stop.exitCode()).as(stop.stderr()).isZero();
            assertThat(stop.stdout()).contains("short stopped");
            assertThat(socket).doesNotExist();
            assertThat(Json.MAPPER.readTree(Cli.run(otherHome, "host", "vm", "info", "short", "--json").stdout())
                    .get("state").asText()).isEqualTo("stopped");
        } finally {
            Cli.run(otherHome, "host", "vm", "stop", "short");
            TestVm.deleteTree(otherHome);
        }
    }

    @Test
    void supervisorKilledWithSigkill_stopReapsItsQemuAndRamFile() throws Exception {
        Path otherHome = Files.createTempDirectory("veggur-cli-it-kill-");
        try {
            assertThat(Cli.run(otherHome, "host", "vm", "start", "orphan", "--accel", "tcg").exitCode()).isZero();
            JsonNode info = Json.MAPPER.readTree(Cli.run(otherHome, "host", "vm", "info", "orphan", "--json").stdout());
            ProcessHandle supervisor = ProcessHandle.of(info.get("supervisorPid").asLong()).orElseThrow();
            ProcessHandle qemu = ProcessHandle.of(info.get("qemuPid").asLong()).orElseThrow();
            Path ram = Path.of("/dev/shm", "veggur-" + info.get("id").asText());
            assertThat(ram).isDirectory();

            supervisor.destroyForcibly();
            supervisor.onExit().get();
            assertThat(Json.MAPPER.readTree(Cli.run(otherHome, "host", "vm", "info", "orphan", "--json").stdout())
                    .get("state").asText()).isEqualTo("failed");
            assertThat(qemu.isAlive()).as("QEMU outlives a SIGKILLed supervisor until stop").isTrue();

            assertThat(Cli.run(otherHome, "host", "vm", "stop", "orphan").exitCode()).isZero();
            assertThat(qemu.isAlive()).isFalse();
            assertThat(ram).doesNotExist();
        } finally {
            Cli.run(otherHome, "host", "vm", "stop", "orphan");
            TestVm.deleteTree(otherHome);
        }
    }

    /**
     * With --allow-write the owner socket writes guest RAM, and the guest really sees it: its counter, which it
     * increments in place, carries on from the value written.
     */
    private static void assertGuestSeesWrites(Path socket, TestGuestMarker marker) throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(socket.toString())) {
            assertThat(session.capabilities()).contains(Capability.WRITE_PHYSICAL);
            long planted = 1L << 40;
            session.writePhysical(marker.counterAddress(), ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(planted).array());
            long deadline = System.nanoTime() + 10_000_000_000L;
            long seen = session.physicalMemory().readLong(marker.counterAddress());
            while (seen <= planted && System.nanoTime() < deadline) {
                Thread.sleep(50);
                seen = session.physicalMemory().readLong(marker.counterAddress());
            }
            assertThat(seen).as("the guest counted on from the written value").isGreaterThan(planted).isLessThan(planted + 1_000_000);
        }
    }

    private static void assertRefused(Cli.Result result, String expected) {
        assertThat(result.exitCode()).as("exit code, stderr: " + result.stderr()).isNotZero();
        assertThat(result.stderr()).contains(expected).startsWith("veggur: error: ")
                .doesNotContain("Exception in thread").doesNotContain("\tat ");
    }

    /** This build machine has no usable KVM (see LAB.md), so auto must have chosen TCG; elsewhere it may be KVM. */
    private static String expectedAccel() throws Exception {
        boolean hardwareVirtualization = Files.readString(Path.of("/proc/cpuinfo")).matches("(?s).*\\b(vmx|svm)\\b.*");
        return hardwareVirtualization ? "kvm" : "tcg";
    }
}
