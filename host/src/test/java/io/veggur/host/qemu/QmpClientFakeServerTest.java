package io.veggur.host.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.EOFException;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Malformed and missing QMP traffic from a scripted peer: the client fails with a typed exception, never hangs. */
@Timeout(30)
class QmpClientFakeServerTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(2);
    private static final String GREETING = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";

    @TempDir
    Path directory;

    /** Greets, accepts capabilities, then hands over. */
    private static void handshake(FakeUnixServer.Peer peer) throws IOException {
        peer.send(GREETING);
        assertThat(peer.readLine()).contains("qmp_capabilities").contains("\"id\":1");
        peer.send("{\"return\": {}, \"id\": 1}\r\n");
    }

    @Test
    void connect_garbageInsteadOfGreeting_throwsProtocolException() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            peer.send("this is not json\r\n");
            peer.awaitClientClose();
        })) {
            assertThatThrownBy(() -> QmpClient.connect(server.path(), TIMEOUT))
                    .isInstanceOf(IOException.class)
                    .cause().isInstanceOf(QemuProtocolException.class).hasMessageContaining("unparsable");
        }
    }

    @Test
    void connect_noGreeting_timesOut() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, FakeUnixServer.Peer::awaitClientClose)) {
            long start = System.nanoTime();

            assertThatThrownBy(() -> QmpClient.connect(server.path(), Duration.ofMillis(300)))
                    .isInstanceOf(SocketTimeoutException.class)
                    .hasMessageContaining("greeting");
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
        }
    }

    @Test
    void connect_nothingListening_throwsIoExceptionNamingTheSocket() {
        Path missing = directory.resolve("missing.sock");

        assertThatThrownBy(() -> QmpClient.connect(missing, TIMEOUT))
                .isInstanceOf(IOException.class)
                .hasMessageContaining(missing.toString());
    }

    @Test
    void connect_socketNotYetListening_retriesUntilTimeout() throws IOException {
        Path path = directory.resolve("bound.sock");
        try (SocketChannel notListening = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            notListening.bind(UnixDomainSocketAddress.of(path));
            long start = System.nanoTime();

            assertThatThrownBy(() -> QmpClient.connect(path, Duration.ofMillis(300)))
                    .isInstanceOf(IOException.class)
                    .hasMessageContaining("refused");
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isBetween(Duration.ofMillis(300),
                    Duration.ofSeconds(5));
        }
    }

    @Test
    void execute_oversizedMessage_throwsProtocolException() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer);
            peer.readLine();
            byte[] chunk = new byte[1 << 20];
            Arrays.fill(chunk, (byte) ' ');
            for (int i = 0; i <= QmpClient.MAX_MESSAGE_BYTES >> 20; i++) {
                peer.send(chunk);
            }
            peer.awaitClientClose();
        }); QmpClient qmp = QmpClient.connect(server.path(), TIMEOUT)) {
            assertThatThrownBy(() -> qmp.execute("query-status"))
                    .isInstanceOf(IOException.class)
                    .cause().isInstanceOf(QemuProtocolException.class).hasMessageContaining("exceeds");
        }
    }

    @Test
    void execute_replyNotAnObject_throwsProtocolException() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer);
            peer.readLine();
            peer.send("[1, 2, 3]\n");
            peer.awaitClientClose();
        }); QmpClient qmp = QmpClient.connect(server.path(), TIMEOUT)) {
            assertThatThrownBy(() -> qmp.execute("query-status"))
                    .cause().isInstanceOf(QemuProtocolException.class);
            assertThatThrownBy(() -> qmp.closeFuture().toCompletableFuture().get(1, TimeUnit.SECONDS))
                    .cause().isInstanceOf(QemuProtocolException.class);
        }
    }

    @Test
    void execute_eventWithoutTimestamp_throwsProtocolException() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer);
            peer.readLine();
            peer.send("{\"event\": \"STOP\"}\n");
            peer.awaitClientClose();
        }); QmpClient qmp = QmpClient.connect(server.path(), TIMEOUT)) {
            assertThatThrownBy(() -> qmp.execute("query-status"))
                    .cause().isInstanceOf(QemuProtocolException.class).hasMessageContaining("malformed QMP event");
        }
    }

    @Test
    void execute_noReply_timesOutAndConnectionStaysUsable() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer);
            peer.readLine(); // never answered
            peer.readLine();
            peer.send("{\"return\": {\"status\": \"running\"}, \"id\": 2}\n"); // late reply to the first: dropped
            peer.send("{\"return\": {\"status\": \"paused\"}, \"id\": 3}\n");
            peer.awaitClientClose();
        }); QmpClient qmp = QmpClient.connect(server.path(), Duration.ofMillis(300))) {
            assertThatThrownBy(() -> qmp.execute("query-status"))
                    .isInstanceOf(SocketTimeoutException.class)
                    .hasMessageContaining("query-status");
            assertThat(qmp.queryStatus()).isEqualTo("paused");
        }
    }

    @Test
    void execute_peerClosesWhileCallPending_failsPromptlyWithEof() throws IOException {
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer);
            peer.readLine();
        }); QmpClient qmp = QmpClient.connect(server.path(), Duration.ofSeconds(20))) {
            long start = System.nanoTime();

            assertThatThrownBy(() -> qmp.execute("query-status"))
                    .isInstanceOf(IOException.class)
                    .cause().isInstanceOf(EOFException.class);
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
        }
    }

    @Test
    void close_whileCallPending_failsItPromptly() throws Exception {
        CountDownLatch commandSent = new CountDownLatch(1);
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer);
            peer.readLine();
            commandSent.countDown();
            peer.awaitClientClose();
        })) {
            QmpClient qmp = QmpClient.connect(server.path(), Duration.ofSeconds(20));
            CompletableFuture<Throwable> failure = new CompletableFuture<>();
            Thread.ofVirtual().start(() -> {
                try {
                    qmp.execute("query-status");
                    failure.complete(null);
                } catch (Throwable t) {
                    failure.complete(t);
                }
            });
            assertThat(commandSent.await(5, TimeUnit.SECONDS)).isTrue();

            qmp.close();

            assertThat(failure.get(2, TimeUnit.SECONDS)).isInstanceOf(IOException.class)
                    .hasMessageContaining("closed");
        }
    }

    @Test
    void eventListener_throws_otherListenersStillRun() throws Exception {
        CompletableFuture<QmpEvent> seen = new CompletableFuture<>();
        try (FakeUnixServer server = FakeUnixServer.start(directory, peer -> {
            handshake(peer);
            peer.readLine();
            peer.send("{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true}, "
                    + "\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 250}}\r\n");
            peer.send("{\"return\": {}, \"id\": 2}\r\n");
            peer.awaitClientClose();
        }); QmpClient qmp = QmpClient.connect(server.path(), TIMEOUT)) {
            qmp.addEventListener(event -> {
                throw new IllegalStateException("listener bug");
            });
            qmp.addEventListener(seen::complete);

            qmp.execute("system_powerdown");

            QmpEvent event = seen.getNow(null);
            assertThat(event).isNotNull();
            assertThat(event.name()).isEqualTo("SHUTDOWN");
            assertThat(event.data().path("guest").asBoolean()).isTrue();
            assertThat(event.timestamp()).isEqualTo(Instant.ofEpochSecond(1700000000, 250_000));
        }
    }
}
