package io.veggur.vmi.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The vsock transport, as far as these machines allow. They have {@code /dev/vsock} but neither vhost-vsock nor a
 * loopback transport: a socket binds and listens on VMADDR_CID_ANY, yet nothing can connect to it (a connect to
 * CID 1 times out), so no connection is ever established end to end here. What is tested: parsing, the
 * {@code sockaddr_vm} layout, bind/listen through the same libc bindings, a bounded and clearly reported connect
 * failure, and the streams and close over a UNIX socket pair (the stream code is the same for any socket).
 */
@Timeout(30)
class VsockTransportTest {
    @Test
    void parse_cidAndPort_givesVsockTransport() {
        assertThat(Transport.parse("vsock:2:9999")).isEqualTo(new VsockTransport(2, 9999));
        assertThat(Transport.parse("vsock:4294967294:0").describe()).isEqualTo("vsock:4294967294:0");
    }

    @ParameterizedTest
    @ValueSource(strings = {"vsock:", "vsock:2", "vsock:a:1", "vsock:2:1:3", "vsock:-1:5", "vsock:4294967295:1",
        "vsock:2:4294967295", "vsock:99999999999:1", "vsock://2:1", "vsock:2:"})
    void parse_malformedEndpoint_isRefused(String endpoint) {
        assertThatThrownBy(() -> Transport.parse(endpoint)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void sockaddrVm_hasTheKernelsLayout() {
        assertThat(ByteOrder.nativeOrder()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment address = VsockSocket.address(arena, 0xFFFF_FFFEL, 0x0102_0304);

            assertThat(address.byteSize()).isEqualTo(16);
            assertThat(address.toArray(ValueLayout.JAVA_BYTE)).containsExactly(
                    40, 0, // svm_family = AF_VSOCK, host order
                    0, 0, // svm_reserved1
                    4, 3, 2, 1, // svm_port
                    (byte) 0xFE, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, // svm_cid
                    0, 0, 0, 0); // svm_zero
        }
    }

    @Test
    void listen_onAnyCid_getsAPortFromTheKernel() throws IOException {
        assumeVsock();
        try (VsockSocket server = VsockSocket.listen(VsockSocket.ANY, VsockSocket.ANY, "vsock:any")) {
            assertThat(server.localPort()).isBetween(1L, 0xFFFF_FFFEL);
        }
    }

    @Test
    void connect_withNoTransportToThePeer_failsWithOneClearLineInBoundedTime() throws IOException {
        assumeVsock();
        try (VsockSocket server = VsockSocket.listen(VsockSocket.ANY, VsockSocket.ANY, "vsock:any")) {
            long port = server.localPort();
            long start = System.nanoTime();

            // CID 1 is this machine; without a loopback transport the connect can only time out.
            assertThatThrownBy(() -> new VsockTransport(1, port).open(Duration.ofMillis(500)))
                    .isInstanceOf(IOException.class)
                    .hasMessage("cannot connect to vsock:1:" + port + ": Connection timed out (ETIMEDOUT)");
            assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isBetween(400L, 2000L);
        }
    }

    @Test
    void streams_carryBytesBothWays() throws Throwable {
        int[] pair = socketPair();
        try (VsockSocket one = new VsockSocket(pair[0], "one"); VsockSocket other = new VsockSocket(pair[1], "other")) {
            byte[] big = new byte[300_000];
            new Random(1).nextBytes(big);
            CompletableFuture<byte[]> received = CompletableFuture.supplyAsync(() -> {
                try {
                    return other.input().readNBytes(big.length);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });

            one.output().write(big);

            assertThat(received.get(10, TimeUnit.SECONDS)).isEqualTo(big);
            other.output().write(7);
            assertThat(one.input().read()).isEqualTo(7);
        }
    }

    @Test
    void close_wakesABlockedReader_andIsIdempotent() throws Throwable {
        int[] pair = socketPair();
        try (VsockSocket peer = new VsockSocket(pair[1], "peer")) {
            VsockSocket socket = new VsockSocket(pair[0], "vsock:3:1");
            CompletableFuture<String> reader = new CompletableFuture<>();
            Thread.ofPlatform().start(() -> {
                try {
                    reader.complete("read " + socket.input().read());
                } catch (IOException e) {
                    reader.complete(e.getMessage());
                }
            });
            Thread.sleep(200);
            assertThat(reader).isNotDone();

            socket.close();
            socket.close();

            assertThat(reader.get(2, TimeUnit.SECONDS)).isEqualTo("vsock:3:1: socket closed");
            assertThatThrownBy(() -> socket.output().write(1)).hasMessage("vsock:3:1: socket closed");
            // The peer sees the end of the stream: the descriptor was shut down and closed.
            assertThat(peer.input().read()).isEqualTo(-1);
        }
    }

    private static void assumeVsock() {
        Libc.Result probe = Libc.socket(Libc.AF_VSOCK, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0);
        assumeTrue(!probe.failed(), "no AF_VSOCK here: " + (probe.failed() ? Libc.describe(probe.errno()) : ""));
        Libc.close((int) probe.value());
    }

    /** A connected AF_UNIX stream pair, through libc like the vsock socket itself. */
    private static int[] socketPair() throws Throwable {
        Linker linker = Linker.nativeLinker();
        MethodHandle socketpair = linker.downcallHandle(linker.defaultLookup().findOrThrow("socketpair"),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(ValueLayout.JAVA_INT, 2);
            int result = (int) socketpair.invokeExact(1 /* AF_UNIX */, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0, fds);
            assertThat(result).isZero();
            return fds.toArray(ValueLayout.JAVA_INT);
        }
    }
}
