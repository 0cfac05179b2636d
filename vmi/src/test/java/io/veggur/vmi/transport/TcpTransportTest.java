package io.veggur.vmi.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(30)
class TcpTransportTest {
    private static final byte[] PING = "ping\n".getBytes(StandardCharsets.US_ASCII);

    @Test
    void open_listeningServer_exchangesBytesWithoutDescriptors() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Thread.ofVirtual().start(() -> echoOnce(server));
            Transport transport = Transport.parse("tcp://127.0.0.1:" + server.getLocalPort());

            try (Connection connection = transport.open()) {
                connection.output().write(PING);
                connection.output().flush();

                assertThat(connection.input().readNBytes(PING.length)).isEqualTo(PING);
                assertThat(connection.canReceiveFileDescriptors()).isFalse();
                assertThat(connection.takeReceivedFileDescriptors()).isEmpty();
            }
        }
    }

    @Test
    void open_nothingListening_failsNamingTheEndpoint() throws Exception {
        int port;
        try (ServerSocket closed = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = closed.getLocalPort();
        }

        assertThatThrownBy(() -> new TcpTransport("127.0.0.1", port).open())
                .isInstanceOf(IOException.class)
                .hasMessage("cannot connect to tcp://127.0.0.1:" + port + ": Connection refused");
    }

    @Test
    void parse_hostAndPort_givesTcpTransport() {
        assertThat(Transport.parse("tcp://vmi.example:7000")).isEqualTo(new TcpTransport("vmi.example", 7000));
        Transport ipv6 = Transport.parse("tcp://[::1]:7000");
        assertThat(ipv6).isEqualTo(new TcpTransport("::1", 7000));
        assertThat(ipv6.describe()).isEqualTo("tcp://[::1]:7000");
    }

    @ParameterizedTest
    @ValueSource(strings = {"tcp://host", "tcp:host:1", "tcp://host:1/path", "tcp://host:1?x=1", "tcp://user@host:1",
        "tcp://host:1#f", "tcp://host:0", "tcp://host:70000", "tcp://:1"})
    void parse_malformedEndpoint_isRefused(String endpoint) {
        assertThatThrownBy(() -> Transport.parse(endpoint)).isInstanceOf(IllegalArgumentException.class);
    }

    private static void echoOnce(ServerSocket server) {
        try (Socket socket = server.accept()) {
            socket.getInputStream().transferTo(socket.getOutputStream());
        } catch (IOException e) {
            // The test ended.
        }
    }
}
