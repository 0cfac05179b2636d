package io.veggur.vmi.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.veggur.vmi.IntrospectionSession;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(60)
class TlsTransportTest {
    private static final byte[] PING = "ping\n".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    static Path pkiDirectory;
    private static KeytoolPki pki;

    @TempDir
    Path directory;

    @BeforeAll
    static void makeCertificates() throws Exception {
        // The password comes from the environment first; these tests give it in files.
        assumeTrue(System.getenv(TlsTransport.PASSWORD_VARIABLE) == null, TlsTransport.PASSWORD_VARIABLE + " is set");
        pki = new KeytoolPki(pkiDirectory);
        KeytoolPki.writePassword(pki.client, KeytoolPki.PASSWORD);
    }

    @Test
    void open_identityFromEndpoint_completesMutualTls13AndExchangesBytes() throws Exception {
        try (TlsEchoServer server = new TlsEchoServer(pki.server)) {
            Transport transport = Transport.parse("tls://127.0.0.1:" + server.port() + "?identity=" + pki.client);

            try (Connection connection = transport.open()) {
                connection.output().write(PING);
                connection.output().flush();

                assertThat(connection.input().readNBytes(PING.length)).isEqualTo(PING);
                assertThat(connection.canReceiveFileDescriptors()).isFalse();
            }
            assertThat(server.clients).containsExactly("CN=client");
            assertThat(transport.describe()).isEqualTo("tls://127.0.0.1:" + server.port());
        }
    }

    @Test
    void open_hostNameNotInServerCertificate_failsTheHandshake() throws Exception {
        try (TlsEchoServer server = new TlsEchoServer(pki.server)) {
            Transport transport = new TlsTransport("localhost", server.port(), pki.client);

            assertThatThrownBy(transport::open).isInstanceOf(IOException.class)
                    .hasMessageStartingWith("TLS handshake with tls://localhost:" + server.port() + " failed: ")
                    .hasMessageContaining("localhost");
        }
    }

    @Test
    void open_serverCertificateNotFromIdentitysCa_failsTheHandshake() throws Exception {
        try (TlsEchoServer server = new TlsEchoServer(pki.rogue)) {
            Transport transport = new TlsTransport("127.0.0.1", server.port(), pki.client);

            assertThatThrownBy(transport::open).isInstanceOf(IOException.class)
                    .hasMessageContaining("PKIX path");
        }
    }

    @Test
    void open_identityNotPkcs12_failsNamingTheFileNotThePassword() throws Exception {
        Path identity = directory.resolve("client.p12");
        Files.writeString(identity, "not a key store");
        KeytoolPki.writePassword(identity, "hunter2");

        assertThatThrownBy(() -> new TlsTransport("127.0.0.1", 1, identity).open())
                .isInstanceOf(IOException.class)
                .hasMessage("cannot read TLS identity " + identity + ": not a PKCS#12 file")
                .hasNoCause();
    }

    @Test
    void open_wrongPassword_saysSoWithoutTheFileContents() throws Exception {
        Path identity = Files.copy(pki.client, directory.resolve("client.p12"));
        KeytoolPki.writePassword(identity, "hunter2");

        assertThatThrownBy(() -> new TlsTransport("127.0.0.1", 1, identity).open())
                .isInstanceOf(IOException.class)
                .hasMessage("cannot read TLS identity " + identity + ": wrong password")
                .hasNoCause();
    }

    @Test
    void open_identityMissing_saysWhichFile() {
        Path identity = directory.resolve("missing.p12");

        assertThatThrownBy(() -> new TlsTransport("127.0.0.1", 1, identity).open())
                .isInstanceOf(IOException.class)
                .hasMessage("TLS identity " + identity + " does not exist");
    }

    @Test
    void open_noPassword_saysWhereToGiveIt() throws Exception {
        Path identity = Files.copy(pki.client, directory.resolve("client.p12"));

        assertThatThrownBy(() -> new TlsTransport("127.0.0.1", 1, identity).open())
                .isInstanceOf(IOException.class)
                .hasMessage("no password for TLS identity " + identity + ": set VEGGUR_TLS_PASSWORD or write it to "
                        + identity + ".password");
    }

    @Test
    void open_identityWithoutCaCertificate_isRefused() throws Exception {
        Path identity = Files.copy(pki.rogue, directory.resolve("rogue.p12"));
        KeytoolPki.writePassword(identity, KeytoolPki.PASSWORD);

        assertThatThrownBy(() -> new TlsTransport("127.0.0.1", 1, identity).open())
                .isInstanceOf(IOException.class)
                .hasMessage("TLS identity " + identity + " holds no CA certificate to verify the server");
    }

    @Test
    void plaintextSession_toATlsServer_isToldToUseTls() throws Exception {
        try (TlsEchoServer server = new TlsEchoServer(pki.server)) {
            // The JDK's TLS server answers the plaintext hello frame with an alert record.
            assertThatThrownBy(() -> IntrospectionSession.connect("tcp://127.0.0.1:" + server.port()))
                    .isInstanceOf(IOException.class)
                    .hasMessageContaining("the server speaks TLS: connect with tls://HOST:PORT?identity=FILE");
        }
    }

    @Test
    void parse_identityInQueryOrEnvironment_givesTlsTransport() {
        assertThat(Transport.parse("tls://127.0.0.1:7000?identity=/keys/client.p12"))
                .isEqualTo(new TlsTransport("127.0.0.1", 7000, Path.of("/keys/client.p12")));
        TlsTransport ipv6 = TlsTransport.parse("tls://[::1]:7000?identity=/my%20keys/c.p12", Map.of());
        assertThat(ipv6).isEqualTo(new TlsTransport("::1", 7000, Path.of("/my keys/c.p12")));
        assertThat(ipv6.describe()).isEqualTo("tls://[::1]:7000");
        assertThat(TlsTransport.parse("tls://vmi.example:7000",
                Map.of(TlsTransport.IDENTITY_VARIABLE, "/env/c.p12")))
                .isEqualTo(new TlsTransport("vmi.example", 7000, Path.of("/env/c.p12")));
        assertThat(TlsTransport.parse("tls://vmi.example:7000?identity=/q.p12",
                Map.of(TlsTransport.IDENTITY_VARIABLE, "/env/c.p12")).identity()).isEqualTo(Path.of("/q.p12"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"tls://host:1", "tls://host?identity=/c.p12", "tls://host:1/x?identity=/c.p12",
        "tls://host:1?identity=", "tls://host:1?id=/c.p12", "tls://host:1?identity=/c.p12&x=1"})
    void parse_malformedEndpoint_isRefused(String endpoint) {
        assertThatThrownBy(() -> TlsTransport.parse(endpoint, Map.of())).isInstanceOf(IllegalArgumentException.class);
    }

    /** Requires a client certificate from the CA in its own store, and echoes; records who connected. */
    private static final class TlsEchoServer implements AutoCloseable {
        final List<String> clients = new CopyOnWriteArrayList<>();
        private final SSLServerSocket socket;

        TlsEchoServer(Path identity) throws Exception {
            char[] password = KeytoolPki.PASSWORD.toCharArray();
            KeyStore store = KeyStore.getInstance("PKCS12");
            try (var in = Files.newInputStream(identity)) {
                store.load(in, password);
            }
            KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            keys.init(store, password);
            KeyStore anchors = KeyStore.getInstance("PKCS12");
            anchors.load(null, null);
            for (String alias : Collections.list(store.aliases())) {
                if (store.isCertificateEntry(alias)) {
                    anchors.setCertificateEntry(alias, store.getCertificate(alias));
                }
            }
            TrustManagerFactory trust = TrustManagerFactory.getInstance("PKIX");
            trust.init(anchors.size() > 0 ? anchors : null);
            SSLContext context = SSLContext.getInstance("TLSv1.3");
            context.init(keys.getKeyManagers(), trust.getTrustManagers(), null);
            socket = (SSLServerSocket) context.getServerSocketFactory().createServerSocket();
            socket.setNeedClientAuth(true);
            socket.setEnabledProtocols(new String[] {"TLSv1.3"});
            socket.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            Thread.ofVirtual().start(this::serve);
        }

        int port() {
            return socket.getLocalPort();
        }

        private void serve() {
            while (!socket.isClosed()) {
                try (SSLSocket client = (SSLSocket) socket.accept()) {
                    client.startHandshake();
                    clients.add(client.getSession().getPeerPrincipal().getName());
                    client.getInputStream().transferTo(client.getOutputStream());
                } catch (IOException e) {
                    // A refused handshake or the end of the test.
                }
            }
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }
}
