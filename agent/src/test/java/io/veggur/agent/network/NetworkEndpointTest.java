package io.veggur.agent.network;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.veggur.agent.network.NetworkEndpoint.Limits;
import io.veggur.agent.network.NetworkEndpoint.Plaintext;
import io.veggur.agent.network.NetworkEndpoint.Tls;
import io.veggur.agent.store.VmRef;
import io.veggur.host.server.Role;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The endpoint in front of an echoing stand-in for a VM's socket, with clients that use only the JDK and the PKCS#12
 * files the CA hands out. Every test ends with the endpoint closed and counts its decisions: one per connection.
 */
@Timeout(60)
class NetworkEndpointTest {
    private static final VmRef WEB = new VmRef("alice", "web");
    private static final char[] PASSWORD = "correct horse".toCharArray();
    private static final byte[] PING = "ping\n".getBytes(StandardCharsets.US_ASCII);
    private static final String LOOPBACK = "127.0.0.1";
    /** Another loopback address: Linux routes all of 127.0.0.0/8 to lo, so a client can bind to it. */
    private static final String OTHER_LOOPBACK = "127.0.0.2";

    @TempDir
    static Path caDirectory;
    private static CertificateAuthority ca;
    private static Identity server;

    @TempDir
    Path directory;
    private UnixEchoServer vm;
    private NetworkEndpoint endpoint;
    private final BlockingQueue<ConnectionDecision> decisions = new LinkedBlockingQueue<>();

    @BeforeAll
    static void issueServerCertificate() throws Exception {
        ca = CertificateAuthority.open(caDirectory);
        server = ca.issueServer(List.of(InetAddress.ofLiteral(LOOPBACK)), List.of("localhost"), Duration.ofDays(1));
    }

    @BeforeEach
    void startVm() throws IOException {
        vm = new UnixEchoServer(directory.resolve("vmi.sock"));
    }

    @AfterEach
    void stop() throws IOException {
        if (endpoint != null) {
            endpoint.close();
        }
        vm.close();
    }

    @Test
    void tls_rightCertificate_bytesFlowBothWaysAndOneAllowedDecision() throws Exception {
        startTls(Role.READ, (binding, serial, remote) -> Admission.Decision.allow("grant read"));
        Identity bob = ca.issueClient(binding(WEB, Role.READ, "127.0.0.1/32"), Instant.now(), tomorrow());

        try (SSLSocket client = connectTls(bob.pkcs12(PASSWORD), LOOPBACK, "TLSv1.3")) {
            assertEchoes(client);
            assertEchoesInBulk(client, 4 << 20);
            assertThat(client.getSession().getProtocol()).isEqualTo("TLSv1.3");
        }

        ConnectionDecision decision = onlyDecision();
        assertThat(decision.allowed()).isTrue();
        assertThat(decision.reason()).isEqualTo("grant read");
        assertThat(decision.tenant()).contains("bob");
        assertThat(decision.serial()).isEqualTo(bob.serial());
        assertThat(decision.remote().getAddress()).isEqualTo(InetAddress.ofLiteral(LOOPBACK));
    }

    @Test
    void tls_roleAboveSocketRole_isAllowed() throws Exception {
        startTls(Role.TRACE, (binding, serial, remote) -> Admission.Decision.allow("ok"));

        try (SSLSocket client = connectTls(clientP12(binding(WEB, Role.WRITE, "127.0.0.0/8")), LOOPBACK, "TLSv1.3")) {
            assertEchoes(client);
        }

        assertThat(onlyDecision().allowed()).isTrue();
    }

    @Test
    void tls_certificateFromAnotherCa_isRefusedAtHandshake(@TempDir Path otherDirectory) throws Exception {
        startTls(Role.READ, allowAll());
        CertificateAuthority other = CertificateAuthority.open(otherDirectory);
        byte[] stranger = other.issueClient(binding(WEB, Role.READ, "127.0.0.1/32"), Instant.now(), tomorrow())
                .pkcs12(PASSWORD);

        try (SSLSocket client = connectTls(stranger, LOOPBACK, "TLSv1.3", ca)) {
            assertRefused(client);
        }

        assertDenied(onlyDecision(), "TLS handshake failed: (certificate_unknown) PKIX path building failed");
    }

    @Test
    void tls_certificateForAnotherVm_isRefusedSayingWhy() throws Exception {
        startTls(Role.READ, allowAll());

        try (SSLSocket client = connectTls(clientP12(binding(new VmRef("alice", "db"), Role.READ, "127.0.0.1/32")),
                LOOPBACK, "TLSv1.3")) {
            assertRefused(client);
        }

        ConnectionDecision decision = onlyDecision();
        assertDenied(decision, "certificate is for VM alice/db, this endpoint serves alice/web");
        assertThat(decision.tenant()).contains("bob");
        assertThat(decision.serial()).isNotNull();
    }

    @Test
    void tls_roleBelowSocketRole_isRefused() throws Exception {
        startTls(Role.TRACE, allowAll());

        try (SSLSocket client = connectTls(clientP12(binding(WEB, Role.READ, "127.0.0.1/32")), LOOPBACK, "TLSv1.3")) {
            assertRefused(client);
        }

        assertDenied(onlyDecision(), "certificate allows role read, this endpoint's socket has role trace");
    }

    @Test
    void tls_clientAddressOutsideCertificateBlocks_isRefused() throws Exception {
        startTls(Role.READ, allowAll());

        try (SSLSocket client = connectTls(clientP12(binding(WEB, Role.READ, "127.0.0.1/32", "fd00::/8")),
                OTHER_LOOPBACK, "TLSv1.3")) {
            assertRefused(client);
        }

        ConnectionDecision decision = onlyDecision();
        assertDenied(decision, "address 127.0.0.2 is not among the certificate's client addresses");
        assertThat(decision.remote().getAddress()).isEqualTo(InetAddress.ofLiteral(OTHER_LOOPBACK));
    }

    @Test
    void tls_plaintextClient_isRefused() throws Exception {
        startTls(Role.READ, allowAll());

        try (Socket client = connectPlain(LOOPBACK)) {
            client.getOutputStream().write(PING);
            byte[] answer = client.getInputStream().readAllBytes();
            assertThat(answer).as("nothing, or a TLS alert record").satisfiesAnyOf(
                    bytes -> assertThat(bytes).isEmpty(), bytes -> assertThat(bytes[0]).isEqualTo((byte) 21));
        }

        ConnectionDecision decision = onlyDecision();
        assertDenied(decision, "TLS handshake failed");
        assertThat(decision.tenant()).isEmpty();
    }

    @Test
    void tls_tls12OnlyClient_isRefused() throws Exception {
        startTls(Role.READ, allowAll());

        try (SSLSocket client = connectTls(clientP12(binding(WEB, Role.READ, "127.0.0.1/32")), LOOPBACK, "TLSv1.2")) {
            assertRefused(client);
        }

        assertDenied(onlyDecision(), "TLS handshake failed");
    }

    @Test
    void tls_expiredCertificate_isRefused() throws Exception {
        startTls(Role.READ, allowAll());
        Instant now = Instant.now();
        byte[] expired = ca.issueClient(binding(WEB, Role.READ, "127.0.0.1/32"), now.minus(Duration.ofHours(2)),
                now.minus(Duration.ofHours(1))).pkcs12(PASSWORD);

        try (SSLSocket client = connectTls(expired, LOOPBACK, "TLSv1.3")) {
            assertRefused(client);
        }

        assertDenied(onlyDecision(), "TLS handshake failed: (certificate_unknown) PKIX path validation failed");
    }

    /** TLS 1.3 resumption skips the CA's checks: the JDK client resumes, and the endpoint checks validity itself. */
    @Test
    void tls_sessionResumedAfterCertificateExpired_isRefused() throws Exception {
        startTls(Role.READ, allowAll());
        Instant now = Instant.now();
        Identity shortLived = ca.issueClient(binding(WEB, Role.READ, "127.0.0.1/32"), now.minusSeconds(60),
                now.plusSeconds(2));
        SSLContext client = clientContext(shortLived.pkcs12(PASSWORD), null);

        try (SSLSocket first = connectTls(client, LOOPBACK, "TLSv1.3")) {
            assertEchoes(first);
        }
        assertThat(decisions.take().allowed()).isTrue();
        Thread.sleep(Duration.between(Instant.now(), shortLived.certificate().getNotAfter().toInstant())
                .plusMillis(1100));
        try (SSLSocket second = connectTls(client, LOOPBACK, "TLSv1.3")) {
            assertRefused(second);
        }

        assertDenied(onlyDecision(), "certificate not valid now");
    }

    @Test
    void tls_admissionSaysNo_isRefusedWithItsReason() throws Exception {
        AtomicReference<List<Object>> asked = new AtomicReference<>();
        startTls(Role.READ, (binding, serial, remote) -> {
            asked.set(List.of(binding, serial, remote));
            return Admission.Decision.deny("serial revoked");
        });
        ClientBinding binding = binding(WEB, Role.READ, "127.0.0.1/32");
        Identity bob = ca.issueClient(binding, Instant.now(), tomorrow());

        try (SSLSocket client = connectTls(bob.pkcs12(PASSWORD), LOOPBACK, "TLSv1.3")) {
            assertRefused(client);
        }

        assertDenied(onlyDecision(), "serial revoked");
        assertThat(asked.get()).containsExactly(binding, bob.serial(), InetAddress.ofLiteral(LOOPBACK));
    }

    @Test
    void tls_admissionThrows_isRefused() throws Exception {
        startTls(Role.READ, (binding, serial, remote) -> {
            throw new IllegalStateException("store unavailable");
        });

        try (SSLSocket client = connectTls(clientP12(binding(WEB, Role.READ, "127.0.0.1/32")), LOOPBACK, "TLSv1.3")) {
            assertRefused(client);
        }

        assertDenied(onlyDecision(), "admission check failed: java.lang.IllegalStateException: store unavailable");
    }

    @Test
    void tls_clientSilentDuringHandshake_isRefusedAfterTheTimeout() throws Exception {
        startTls(Role.READ, allowAll(), new Limits(32, Duration.ofMillis(300)));

        try (Socket client = connectPlain(LOOPBACK)) {
            assertThat(client.getInputStream().read()).isEqualTo(-1);
        }

        assertDenied(onlyDecision(), "TLS handshake timed out");
    }

    @Test
    void tls_moreConnectionsThanTheLimit_areRefusedAtOnce() throws Exception {
        startTls(Role.READ, allowAll(), new Limits(1, Duration.ofSeconds(10)));
        byte[] identity = clientP12(binding(WEB, Role.READ, "127.0.0.1/32"));

        try (SSLSocket first = connectTls(identity, LOOPBACK, "TLSv1.3")) {
            assertEchoes(first);
            assertThat(decisions.take().allowed()).isTrue();
            try (SSLSocket second = connectTls(identity, LOOPBACK, "TLSv1.3")) {
                assertRefused(second);
            }
            assertDenied(decisions.poll(10, TimeUnit.SECONDS), "too many connections (1)");
            assertEchoes(first);
        }
        endpoint.close();
        assertThat(decisions).isEmpty();
    }

    @Test
    void tls_vmSocketMissing_isRefused() throws Exception {
        vm.close();
        startTls(Role.READ, allowAll(), Limits.DEFAULT, directory.resolve("gone.sock"));

        try (SSLSocket client = connectTls(clientP12(binding(WEB, Role.READ, "127.0.0.1/32")), LOOPBACK, "TLSv1.3")) {
            assertRefused(client);
        }

        ConnectionDecision decision = onlyDecision();
        assertDenied(decision, "introspection socket unavailable");
        assertThat(decision.tenant()).contains("bob");
    }

    @Test
    void close_liveConnections_areEndedOnBothSides() throws Exception {
        startTls(Role.READ, allowAll());
        byte[] identity = clientP12(binding(WEB, Role.READ, "127.0.0.1/32"));

        try (SSLSocket first = connectTls(identity, LOOPBACK, "TLSv1.3");
                SSLSocket second = connectTls(identity, LOOPBACK, "TLSv1.3")) {
            assertEchoes(first);
            assertEchoes(second);
            assertThat(vm.connections()).isEqualTo(2);

            endpoint.close();

            assertEnded(first);
            assertEnded(second);
            awaitNoVmConnections();
        }
        assertThat(decisions).hasSize(2).allSatisfy(decision -> assertThat(decision.allowed()).isTrue());
    }

    @Test
    void relay_vmSideEnds_clientSeesEndOfStream() throws Exception {
        startTls(Role.READ, allowAll());

        try (SSLSocket client = connectTls(clientP12(binding(WEB, Role.READ, "127.0.0.1/32")), LOOPBACK, "TLSv1.3")) {
            assertEchoes(client);
            vm.disconnectAll();

            assertThat(client.getInputStream().read()).isEqualTo(-1);
        }
        assertThat(onlyDecision().allowed()).isTrue();
    }

    @Test
    void plaintext_addressInAllowList_bytesFlow() throws Exception {
        startPlaintext("127.0.0.1/32");

        try (Socket client = connectPlain(LOOPBACK)) {
            assertEchoes(client);
            assertEchoesInBulk(client, 1 << 20);
        }

        ConnectionDecision decision = onlyDecision();
        assertThat(decision.allowed()).isTrue();
        assertThat(decision.reason()).isEqualTo("address 127.0.0.1 is in the allow-list");
        assertThat(decision.tenant()).isEmpty();
    }

    @Test
    void plaintext_addressOutsideAllowList_isRefused() throws Exception {
        startPlaintext("127.0.0.1/32", "fd00::/8");

        try (Socket client = connectPlain(OTHER_LOOPBACK)) {
            assertRefused(client);
        }

        assertDenied(onlyDecision(), "address 127.0.0.2 is not in the allow-list");
        assertThat(vm.connections()).isZero();
    }

    // ---- endpoint and decisions

    private void startTls(Role role, Admission admission) throws IOException {
        startTls(role, admission, Limits.DEFAULT);
    }

    private void startTls(Role role, Admission admission, Limits limits) throws IOException {
        startTls(role, admission, limits, directory.resolve("vmi.sock"));
    }

    private void startTls(Role role, Admission admission, Limits limits, Path socket) throws IOException {
        endpoint = NetworkEndpoint.start(new InetSocketAddress(LOOPBACK, 0), socket,
                new Tls(server, ca.certificate(), WEB, role, admission), limits, decisions::add);
    }

    private void startPlaintext(String... allowed) throws IOException {
        endpoint = NetworkEndpoint.start(new InetSocketAddress(LOOPBACK, 0), directory.resolve("vmi.sock"),
                new Plaintext(Arrays.stream(allowed).map(Cidr::parse).toList()), Limits.DEFAULT, decisions::add);
    }

    /** Waits for the connection's decision, closes the endpoint and checks that no other decision was made. */
    private ConnectionDecision onlyDecision() throws InterruptedException {
        ConnectionDecision decision = decisions.poll(10, TimeUnit.SECONDS);
        assertThat(decision).as("a decision").isNotNull();
        endpoint.close();
        assertThat(decisions).as("decisions after the first").isEmpty();
        return decision;
    }

    private static void assertDenied(ConnectionDecision decision, String reason) {
        assertThat(decision).isNotNull();
        assertThat(decision.allowed()).as("allowed").isFalse();
        assertThat(decision.reason()).contains(reason);
    }

    private static Admission allowAll() {
        return (binding, serial, remote) -> Admission.Decision.allow("ok");
    }

    // ---- certificates and clients (JDK only, as a tenant's client would be)

    private static ClientBinding binding(VmRef vm, Role role, String... blocks) {
        return new ClientBinding("bob", vm, role, Arrays.stream(blocks).map(Cidr::parse).toList());
    }

    private static byte[] clientP12(ClientBinding binding) throws Exception {
        return ca.issueClient(binding, Instant.now(), tomorrow()).pkcs12(PASSWORD);
    }

    private static Instant tomorrow() {
        return Instant.now().plus(Duration.ofDays(1));
    }

    private SSLSocket connectTls(byte[] pkcs12, String localAddress, String protocol) throws Exception {
        return connectTls(clientContext(pkcs12, null), localAddress, protocol);
    }

    private SSLSocket connectTls(byte[] pkcs12, String localAddress, String protocol, CertificateAuthority trusted)
            throws Exception {
        return connectTls(clientContext(pkcs12, trusted), localAddress, protocol);
    }

    private SSLSocket connectTls(SSLContext context, String localAddress, String protocol) throws Exception {
        Socket tcp = connectPlain(localAddress);
        SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(tcp, LOOPBACK,
                endpoint.address().getPort(), true);
        SSLParameters parameters = socket.getSSLParameters();
        parameters.setProtocols(new String[] {protocol});
        parameters.setEndpointIdentificationAlgorithm("HTTPS");
        socket.setSSLParameters(parameters);
        return socket;
    }

    /**
     * Trusts the CA inside the PKCS#12 file, or {@code trusted}'s certificate when given; then the client presents its
     * certificate even though the server asks for another CA's, as a hostile client would (the JDK's own key manager
     * would send none).
     */
    private static SSLContext clientContext(byte[] pkcs12, CertificateAuthority trusted) throws Exception {
        KeyStore identity = KeyStore.getInstance("PKCS12");
        identity.load(new ByteArrayInputStream(pkcs12), PASSWORD);
        KeyManager[] keys = trusted != null ? presentingAlways(identity) : keyManagers(identity);
        KeyStore anchors = KeyStore.getInstance("PKCS12");
        anchors.load(null, null);
        anchors.setCertificateEntry("ca", trusted != null ? trusted.certificate() : identity.getCertificate("ca"));
        TrustManagerFactory trust = TrustManagerFactory.getInstance("PKIX");
        trust.init(anchors);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys, trust.getTrustManagers(), null);
        return context;
    }

    private static KeyManager[] keyManagers(KeyStore identity) throws Exception {
        KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        keys.init(identity, PASSWORD);
        return keys.getKeyManagers();
    }

    private static KeyManager[] presentingAlways(KeyStore identity) throws Exception {
        PrivateKey key = (PrivateKey) identity.getKey(Identity.KEY_ALIAS, PASSWORD);
        X509Certificate[] chain = Arrays.stream(identity.getCertificateChain(Identity.KEY_ALIAS))
                .map(X509Certificate.class::cast).toArray(X509Certificate[]::new);
        return new KeyManager[] {new X509ExtendedKeyManager() {
            @Override
            public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
                return Identity.KEY_ALIAS;
            }

            @Override
            public X509Certificate[] getCertificateChain(String alias) {
                return chain;
            }

            @Override
            public PrivateKey getPrivateKey(String alias) {
                return key;
            }

            @Override
            public String[] getClientAliases(String keyType, Principal[] issuers) {
                return new String[] {Identity.KEY_ALIAS};
            }

            @Override
            public String[] getServerAliases(String keyType, Principal[] issuers) {
                return null;
            }

            @Override
            public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
                return null;
            }
        }};
    }

    private Socket connectPlain(String localAddress) throws IOException {
        Socket socket = new Socket();
        socket.bind(new InetSocketAddress(localAddress, 0));
        socket.connect(endpoint.address(), 5000);
        socket.setSoTimeout(10_000);
        return socket;
    }

    private static void assertEchoes(Socket socket) throws IOException {
        socket.getOutputStream().write(PING);
        socket.getOutputStream().flush();
        assertThat(socket.getInputStream().readNBytes(PING.length)).isEqualTo(PING);
    }

    /** Writes while reading, as a pipelining client does, and compares every byte. */
    private static void assertEchoesInBulk(Socket socket, int size) throws Exception {
        byte[] sent = new byte[size];
        new Random(size).nextBytes(sent);
        List<Throwable> failures = new ArrayList<>();
        Thread writer = Thread.ofVirtual().start(() -> {
            try {
                socket.getOutputStream().write(sent);
                socket.getOutputStream().flush();
            } catch (IOException e) {
                failures.add(e);
            }
        });
        byte[] received = socket.getInputStream().readNBytes(size);
        writer.join();
        assertThat(failures).isEmpty();
        assertThat(received).isEqualTo(sent);
    }

    /** The client gets nothing through: its handshake, write or read fails, or it reads the end of the stream. */
    private static void assertRefused(Socket socket) {
        try {
            if (socket instanceof SSLSocket tls) {
                tls.startHandshake();
            }
            socket.getOutputStream().write(PING);
            socket.getOutputStream().flush();
            assertThat(socket.getInputStream().read()).as("first byte").isEqualTo(-1);
        } catch (SocketTimeoutException e) {
            fail("the connection stayed open", e);
        } catch (IOException e) {
            // Refused: the failure is the client's view of it.
        }
    }

    private void awaitNoVmConnections() throws InterruptedException {
        for (int i = 0; i < 100 && vm.connections() > 0; i++) {
            Thread.sleep(50);
        }
        assertThat(vm.connections()).as("VM-side connections").isZero();
    }

    private static void assertEnded(Socket socket) {
        try {
            InputStream in = socket.getInputStream();
            assertThat(in.read()).isEqualTo(-1);
        } catch (SocketTimeoutException e) {
            fail("the connection stayed open", e);
        } catch (IOException e) {
            // Ended abruptly: fine for a closing endpoint.
        }
    }
}
