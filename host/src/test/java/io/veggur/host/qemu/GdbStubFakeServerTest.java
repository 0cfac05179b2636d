package io.veggur.host.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.EOFException;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The gdbstub client against a scripted peer: features QEMU 7.2 does not exercise (no-ack mode, chunked and
 * run-length encoded replies, unavailable registers) and malformed traffic, which must fail with a typed exception
 * and never hang.
 */
@Timeout(30)
class GdbStubFakeServerTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(2);
    private static final String FEATURES = "PacketSize=100;qXfer:features:read+;multiprocess+";
    private static final String CORE_XML = "<feature><reg name=\"pc\" bitsize=\"64\"/><reg name=\"flags\""
            + " bitsize=\"32\"/><reg name=\"big\" bitsize=\"128\"/><reg name=\"sp\" bitsize=\"64\"/></feature>";

    @TempDir
    Path directory;

    /** Answers the client's handshake like a two-vCPU stub; {@code features} is the qSupported reply. */
    private static void handshake(FakeUnixServer.Peer peer, String features) throws IOException {
        assertThat(peer.readPacket()).isEqualTo("qSupported:multiprocess+;xmlRegisters=i386");
        peer.sendPacket(features);
        if (features.contains("QStartNoAckMode+")) {
            assertThat(peer.readPacket()).isEqualTo("QStartNoAckMode");
            peer.sendPacket("OK");
        }
        assertThat(peer.readPacket()).isEqualTo("qXfer:features:read:target.xml:0,100");
        peer.sendPacket("m<target>");
        assertThat(peer.readPacket()).isEqualTo("qXfer:features:read:target.xml:8,100");
        peer.sendPacket("l<xi:include href=\"core.xml\"/></target>");
        assertThat(peer.readPacket()).isEqualTo("qXfer:features:read:core.xml:0,100");
        peer.sendPacket("l" + CORE_XML);
        assertThat(peer.readPacket()).isEqualTo("qfThreadInfo");
        peer.sendPacket("mp01.01");
        assertThat(peer.readPacket()).isEqualTo("qsThreadInfo");
        peer.sendPacket("mp01.02");
        assertThat(peer.readPacket()).isEqualTo("qsThreadInfo");
        peer.sendPacket("l");
    }

    @Test
    void connect_noAckModeOffered_switchesAndStopsAcknowledging() throws Exception {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer, FEATURES + ";QStartNoAckMode+");
            int acksAfterNoAck = peer.acks;
            assertThat(peer.readPacket()).isEqualTo("Hgp1.2");
            peer.sendPacket("OK");
            assertThat(peer.readPacket()).isEqualTo("g");
            // pc, flags unavailable, big as 32 zeros run-length encoded ('<' = 31 more), sp
            peer.sendPacket("8877665544332211xxxxxxxx0*<0100000000000000");
            assertThat(peer.acks).isEqualTo(acksAfterNoAck);
            peer.awaitClientClose();
        }); GdbStub gdb = GdbStub.connect(server.path(), TIMEOUT)) {
            Map<String, Long> registers = gdb.readRegisters(1);

            assertThat(gdb.vcpuCount()).isEqualTo(2);
            assertThat(gdb.layout().offsetOf("sp")).isEqualTo(16 + 8 + 32);
            assertThat(registers).containsExactly(Map.entry("pc", 0x1122334455667788L), Map.entry("sp", 1L));
        }
    }

    @Test
    void resumeThenBreakpointStopReply_holdsTheTrapUntilReleased_andNotifiesListeners() throws Exception {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer, FEATURES);
            assertThat(peer.readPacket()).isEqualTo("c");
            peer.sendPacket("T05thread:p01.02;swbreak:;");
            assertThat(peer.read()).isEqualTo('+');
            assertThat(peer.readPacket()).isEqualTo("c");
            assertThat(peer.read()).isEqualTo(0x03);
            peer.sendPacket("T02thread:p01.01;");
            peer.awaitClientClose();
        }); GdbStub gdb = GdbStub.connect(server.path(), TIMEOUT)) {
            BlockingQueue<StopReply> stops = new LinkedBlockingQueue<>();
            gdb.addStopListener(stops::add);

            gdb.resume();
            StopReply breakpoint = stops.poll(5, TimeUnit.SECONDS);

            assertThat(breakpoint).isNotNull();
            assertThat(breakpoint.signal()).isEqualTo(5);
            assertThat(breakpoint.vcpuIndex()).hasValue(1);
            assertThat(breakpoint.fields()).containsKey("swbreak");
            assertThat(gdb.isStopped()).isTrue();
            assertThat(gdb.trapHeld()).as("a breakpoint holds the VM").isTrue();

            gdb.resume();
            assertThat(gdb.isStopped()).as("resume cannot run past a held trap").isTrue();
            gdb.releaseTrap(true);
            assertThat(gdb.isStopped()).isFalse();
            gdb.stop();

            assertThat(gdb.isStopped()).isTrue();
            assertThat(stops.poll(1, TimeUnit.SECONDS).vcpuIndex()).hasValue(0);
        }
    }

    @Test
    void connect_badChecksum_throwsProtocolException() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            peer.readPacket();
            peer.send("$" + FEATURES + "#00");
            peer.awaitClientClose();
        })) {
            assertThatThrownBy(() -> GdbStub.connect(server.path(), TIMEOUT))
                    .cause().isInstanceOf(QemuProtocolException.class).hasMessageContaining("checksum");
        }
    }

    @Test
    void connect_oversizedPacket_throwsProtocolExceptionWithoutReadingItAll() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            peer.readPacket();
            peer.send("$");
            byte[] chunk = new byte[1 << 16];
            Arrays.fill(chunk, (byte) 'a');
            while (true) {
                peer.send(chunk); // until the client gives up and closes
            }
        })) {
            assertThatThrownBy(() -> GdbStub.connect(server.path(), TIMEOUT))
                    .cause().isInstanceOf(QemuProtocolException.class).hasMessageContaining("exceeds");
        }
    }

    @Test
    void connect_garbageBytes_throwsProtocolException() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            peer.readPacket();
            peer.send(new byte[] {0, (byte) 0xff, 'x'});
            peer.awaitClientClose();
        })) {
            assertThatThrownBy(() -> GdbStub.connect(server.path(), TIMEOUT))
                    .cause().isInstanceOf(QemuProtocolException.class).hasMessageContaining("0x00");
        }
    }

    @Test
    void connect_silentPeer_timesOut() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, FakeUnixServer.Peer::awaitClientClose)) {
            long start = System.nanoTime();

            assertThatThrownBy(() -> GdbStub.connect(server.path(), Duration.ofMillis(300)))
                    .isInstanceOf(SocketTimeoutException.class)
                    .hasMessageContaining("qSupported");
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
        }
    }

    @Test
    void connect_peerClosesMidPacket_throwsIoExceptionPromptly() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            peer.readPacket();
            peer.send("$Packet");
        })) {
            assertThatThrownBy(() -> GdbStub.connect(server.path(), Duration.ofSeconds(20)))
                    .cause().isInstanceOf(EOFException.class);
        }
    }

    @Test
    void connect_noTargetDescription_throwsProtocolException() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            peer.readPacket();
            peer.sendPacket("PacketSize=1000;multiprocess+");
            peer.awaitClientClose();
        })) {
            assertThatThrownBy(() -> GdbStub.connect(server.path(), TIMEOUT))
                    .isInstanceOf(QemuProtocolException.class)
                    .hasMessageContaining("no target description");
        }
    }

    @Test
    void connect_malformedThreadId_throwsProtocolException() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            peer.readPacket();
            peer.sendPacket(FEATURES);
            peer.readPacket();
            peer.sendPacket("l<target><reg name=\"pc\" bitsize=\"64\"/></target>");
            assertThat(peer.readPacket()).isEqualTo("qfThreadInfo");
            peer.sendPacket("mp01.zz");
            peer.awaitClientClose();
        })) {
            assertThatThrownBy(() -> GdbStub.connect(server.path(), TIMEOUT))
                    .isInstanceOf(QemuProtocolException.class)
                    .hasMessageContaining("thread id");
        }
    }

    @Test
    void readRegisters_nonHexReply_throwsProtocolException() throws Exception {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer, FEATURES);
            peer.readPacket();
            peer.sendPacket("OK");
            peer.readPacket();
            peer.sendPacket("zz");
            peer.awaitClientClose();
        }); GdbStub gdb = GdbStub.connect(server.path(), TIMEOUT)) {
            assertThatThrownBy(() -> gdb.readRegisters(0))
                    .isInstanceOf(QemuProtocolException.class)
                    .hasMessageContaining("malformed register packet");
        }
    }

    @Test
    void readRegisters_noReply_timesOutAndClosesTheConnection() throws Exception {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer, FEATURES);
            peer.awaitClientClose();
        }); GdbStub gdb = GdbStub.connect(server.path(), Duration.ofMillis(300))) {
            assertThatThrownBy(() -> gdb.readRegisters(0)).isInstanceOf(SocketTimeoutException.class);
            assertThatThrownBy(() -> gdb.readRegisters(0))
                    .isInstanceOf(IOException.class)
                    .hasMessageContaining("closed");
        }
    }

    @Test
    void malformedStopReply_closesTheConnection() throws Exception {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer, FEATURES);
            peer.readPacket();
            peer.sendPacket("T05thread");
            peer.awaitClientClose();
        }); GdbStub gdb = GdbStub.connect(server.path(), Duration.ofSeconds(20))) {
            gdb.resume();

            assertThatThrownBy(gdb::stop)
                    .isInstanceOf(IOException.class)
                    .cause().isInstanceOf(QemuProtocolException.class).hasMessageContaining("stop reply");
        }
    }
}
