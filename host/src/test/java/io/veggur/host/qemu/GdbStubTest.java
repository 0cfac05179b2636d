package io.veggur.host.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.EOFException;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Against a real firmware-only QEMU 7.2 (TCG, two vCPUs, started with -S). */
@Timeout(60)
class GdbStubTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(5);
    private static final long CR0_PE = 1L;
    private static final long CR0_ET = 1L << 4;
    private static final long CR0_PG = 1L << 31;

    @TempDir
    Path directory;
    private TestQemu qemu;
    private QmpClient qmp;
    private GdbStub gdb;

    @BeforeEach
    void startQemu() throws Exception {
        qemu = TestQemu.start(directory, 2);
        qmp = QmpClient.connect(qemu.qmpSocket(), TIMEOUT);
        gdb = GdbStub.connect(qemu.gdbSocket(), TIMEOUT);
    }

    @AfterEach
    void stopQemu() throws Exception {
        if (gdb != null) {
            gdb.close();
        }
        if (qmp != null) {
            qmp.close();
        }
        if (qemu != null) {
            qemu.close();
        }
    }

    @Test
    void connect_x86_64Target_layoutHasControlAndBaseRegisters() {
        RegisterLayout layout = gdb.layout();

        assertThat(layout.find("eflags")).get().extracting(RegisterLayout.Register::bitSize).isEqualTo(32);
        for (String name : List.of("rip", "cr0", "cr3", "cr4", "efer", "fs_base", "gs_base")) {
            assertThat(layout.find(name)).as(name).get().extracting(RegisterLayout.Register::bitSize).isEqualTo(64);
        }
        // 16 general registers of 16 hex digits come first.
        assertThat(layout.offsetOf("rip")).isEqualTo(16 * 16);
    }

    @Test
    void vcpuCount_smp2_returnsTwo() {
        assertThat(gdb.vcpuCount()).isEqualTo(2);
    }

    @Test
    void connect_vmHeldBySminusS_isStopped() throws IOException {
        assertThat(gdb.isStopped()).isTrue();
        assertThat(qmp.queryStatus()).isIn("prelaunch", "paused");
    }

    @Test
    void readRegisters_atReset_returnsResetVectorOnEveryVcpu() throws IOException {
        for (int vcpu = 0; vcpu < gdb.vcpuCount(); vcpu++) {
            Map<String, Long> registers = gdb.readRegisters(vcpu);

            assertThat(registers).as("vCPU %d", vcpu)
                    .containsEntry("rip", 0xfff0L)
                    .containsEntry("cs", 0xf000L)
                    .containsEntry("cr0", 0x60000010L)
                    .containsEntry("eflags", 0x2L)
                    .doesNotContainKeys("st0", "xmm0");
            assertThat(registers.keySet()).startsWith("rax", "rbx", "rcx");
        }
    }

    @Test
    void resumeThenStop_qmpSeesRunningThenPausedAndEvents() throws Exception {
        BlockingQueue<String> events = new LinkedBlockingQueue<>();
        qmp.addEventListener(event -> events.add(event.name()));

        gdb.resume();

        assertThat(gdb.isStopped()).isFalse();
        assertThat(events.poll(5, TimeUnit.SECONDS)).isEqualTo("RESUME");
        assertThat(qmp.queryStatus()).isEqualTo("running");

        gdb.stop();

        assertThat(gdb.isStopped()).isTrue();
        assertThat(events.poll(5, TimeUnit.SECONDS)).isEqualTo("STOP");
        assertThat(qmp.queryStatus()).isEqualTo("paused");
    }

    @Test
    void readRegisters_afterFirmwareRan_ripMovedAndCr0Sane() throws Exception {
        long resetRip = gdb.readRegisters(0).get("rip");

        gdb.resume();
        Thread.sleep(300);
        gdb.stop();
        Map<String, Long> registers = gdb.readRegisters(0);

        assertThat(registers.get("rip")).isNotEqualTo(resetRip);
        long cr0 = registers.get("cr0");
        assertThat(cr0 & CR0_ET).as("ET is hard-wired to 1").isEqualTo(CR0_ET);
        assertThat(cr0 & CR0_PG).as("SeaBIOS never enables paging").isZero();
        if ((cr0 & CR0_PE) == 0) {
            assertThat(registers.get("rip")).as("real-mode IP").isLessThan(0x10000L);
        }
        assertThat(registers.get("efer") & (1L << 10)).as("EFER.LMA: no long mode in firmware").isZero();
    }

    @Test
    void readRegisters_whileRunning_throwsIllegalState() throws IOException {
        gdb.resume();

        assertThatThrownBy(() -> gdb.readRegisters(0)).isInstanceOf(IllegalStateException.class);
        assertThat(qmp.queryStatus()).isEqualTo("running");
    }

    @Test
    void readRegisters_unknownVcpu_throwsIndexOutOfBounds() {
        assertThatThrownBy(() -> gdb.readRegisters(2)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void whileStopped_runningVm_readsRegistersAndLeavesItRunning() throws IOException {
        gdb.resume();

        Map<String, Long> registers = gdb.whileStopped(() -> gdb.readRegisters(1));

        assertThat(registers).containsKeys("rip", "cr3");
        assertThat(gdb.isStopped()).isFalse();
        assertThat(qmp.queryStatus()).isEqualTo("running");
    }

    @Test
    void whileStopped_stoppedVm_leavesItStopped() throws IOException {
        gdb.whileStopped(() -> gdb.readRegisters(0));

        assertThat(gdb.isStopped()).isTrue();
        assertThat(qmp.queryStatus()).isNotEqualTo("running");
    }

    @Test
    void whileStopped_actionFails_stillResumes() throws IOException {
        gdb.resume();

        assertThatThrownBy(() -> gdb.whileStopped(() -> {
            throw new IOException("boom");
        })).hasMessage("boom");
        assertThat(qmp.queryStatus()).isEqualTo("running");
    }

    @Test
    void stopListener_qmpStopsRunningVm_reportsSigintAndMarksStopped() throws Exception {
        BlockingQueue<StopReply> stops = new LinkedBlockingQueue<>();
        gdb.addStopListener(stops::add);
        gdb.resume();

        qmp.execute("stop");
        StopReply stop = stops.poll(5, TimeUnit.SECONDS);

        assertThat(stop).isNotNull();
        assertThat(stop.signal()).isEqualTo(StopReply.SIGINT);
        assertThat(stop.thread()).isPresent();
        assertThat(stop.vcpuIndex()).isPresent();
        assertThat(gdb.isStopped()).isTrue();
        assertThat(gdb.readRegisters(0)).containsKey("rip");
    }

    @Test
    void qemuKilled_nextCallFailsWithIoException() {
        qemu.close();

        assertThatThrownBy(() -> gdb.readRegisters(0)).isInstanceOf(IOException.class);
    }

    @Test
    void qmpQuit_gdbConnectionEnds_laterCallsFailWithEofCause() throws Exception {
        qmp.execute("quit");
        assertThat(qemu.waitForExit(5000)).isTrue();

        assertThatThrownBy(() -> gdb.readRegisters(0))
                .isInstanceOf(IOException.class)
                .cause().isInstanceOf(EOFException.class).hasMessageContaining("W00");
    }

    @Test
    void connect_secondClientWhileFirstConnected_timesOut() {
        assertThatThrownBy(() -> GdbStub.connect(qemu.gdbSocket(), Duration.ofMillis(500)).close())
                .isInstanceOf(SocketTimeoutException.class);
    }
}
