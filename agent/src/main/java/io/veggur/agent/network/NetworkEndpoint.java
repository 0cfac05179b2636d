package io.veggur.agent.network;

import io.veggur.agent.store.VmRef;
import io.veggur.host.server.Role;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * One VM's introspection socket on TCP: every accepted connection is relayed byte for byte to its own connection to
 * the UNIX socket, so the socket still enforces its role on every request. Memory travels as {@code READ_PHYSICAL}
 * replies: descriptors cannot cross TCP.
 *
 * <p>Two modes. {@link Tls}, the normal one: TLS 1.3 only, a client certificate is required and verified against
 * the CA (chain, validity, client-auth purpose); after the handshake the connection is kept only if the certificate
 * is still valid (a resumed session skips the CA's checks), its {@link ClientBinding} names this VM, its role is at
 * least the socket's, the client's address is in one of its blocks, and {@link Admission} agrees. {@link Plaintext}:
 * the paper's relay filtered by client address, only when constructed so, with a warning in the log. Sockets run
 * with TCP_NODELAY: the protocol is request/reply.
 *
 * <p>Every connection gets exactly one {@link ConnectionDecision}, reported before any byte is relayed. A refused
 * TLS client whose certificate failed verification gets a TLS alert (with TLS 1.3 its own handshake has already
 * completed, so it sees the alert on its first read); one refused after the handshake sees the session closed
 * (close_notify, end of stream) before any byte; a plaintext client sees the connection closed.
 *
 * <p>Threads: one platform thread accepts; each connection runs on a platform thread (handshake, checks, then the
 * VM-to-client direction) plus one more for the client-to-VM direction: every request crosses this relay twice, and
 * a blocked platform thread wakes without waiting for a carrier (at most {@link Limits#maxConnections} pairs). When either direction ends both sockets are
 * closed. Bounds: {@link Limits#maxConnections} connections at once, counting handshakes (more are refused at once),
 * and {@link Limits#handshakeTimeout} for the whole handshake. {@link #close} ends every connection and returns once
 * their threads have finished.
 */
public final class NetworkEndpoint implements Closeable {
    private static final Logger LOG = System.getLogger(NetworkEndpoint.class.getName());
    private static final int BACKLOG = 64;
    private static final int BUFFER_BYTES = 64 * 1024;
    private static final String TLS_VERSION = "TLSv1.3";

    /** How clients are authenticated. */
    public sealed interface Mode permits Tls, Plaintext {}

    /**
     * Mutual TLS 1.3. {@code server} is the endpoint's own identity; {@code clientCa} verifies client certificates;
     * {@code vm} is the VM whose socket this is and {@code role} the socket's role, which a certificate must reach.
     */
    public record Tls(Identity server, X509Certificate clientCa, VmRef vm, Role role, Admission admission)
            implements Mode {}

    /** No authentication and no encryption: any client from an address in {@code allowed} gets the socket. */
    public record Plaintext(List<Cidr> allowed) implements Mode {
        public Plaintext {
            if (allowed.isEmpty()) {
                throw new IllegalArgumentException("a plaintext endpoint needs at least one allowed address block");
            }
            allowed = List.copyOf(allowed);
        }
    }

    public record Limits(int maxConnections, Duration handshakeTimeout) {
        public static final Limits DEFAULT = new Limits(32, Duration.ofSeconds(10));

        public Limits {
            if (maxConnections < 1 || !handshakeTimeout.isPositive()) {
                throw new IllegalArgumentException("limits must be positive");
            }
        }
    }

    private final Path vmSocket;
    private final Mode mode;
    private final Limits limits;
    private final Consumer<ConnectionDecision> decisions;
    private final SSLContext tls;
    private final ServerSocket server;
    private final Semaphore slots;
    /** Connections not finished yet; {@link #close} aborts them. */
    private final Set<Link> links = ConcurrentHashMap.newKeySet();
    private final ExecutorService connections;
    private final ScheduledExecutorService watchdog;
    private final Thread acceptor;
    private volatile boolean closed;

    private NetworkEndpoint(InetSocketAddress bind, Path vmSocket, Mode mode, Limits limits,
            Consumer<ConnectionDecision> decisions) throws IOException {
        this.vmSocket = vmSocket;
        this.mode = mode;
        this.limits = limits;
        this.decisions = decisions;
        this.tls = mode instanceof Tls settings ? serverContext(settings) : null;
        this.slots = new Semaphore(limits.maxConnections());
        this.server = new ServerSocket();
        try {
            server.bind(bind, BACKLOG);
        } catch (IOException e) {
            server.close();
            throw new IOException("cannot listen on " + bind + ": " + e.getMessage(), e);
        }
        int port = server.getLocalPort();
        this.connections = Executors.newThreadPerTaskExecutor(
                Thread.ofPlatform().daemon().name("veggur-endpoint-" + port + "-", 0).factory());
        this.watchdog = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("veggur-endpoint-" + port + "-watchdog").daemon().factory());
        this.acceptor = Thread.ofPlatform().name("veggur-endpoint-" + port).daemon().unstarted(this::acceptLoop);
    }

    /** Listens on {@code bind} (port 0: any free port, see {@link #address}) and relays to {@code vmSocket}. */
    public static NetworkEndpoint start(InetSocketAddress bind, Path vmSocket, Mode mode, Limits limits,
            Consumer<ConnectionDecision> decisions) throws IOException {
        NetworkEndpoint endpoint = new NetworkEndpoint(bind, vmSocket, mode, limits, decisions);
        if (mode instanceof Plaintext plaintext) {
            LOG.log(Level.WARNING, "plaintext endpoint {0} for {1}: no authentication, no encryption; clients from {2}"
                    + " get the socket", endpoint.address(), vmSocket, plaintext.allowed());
        }
        endpoint.acceptor.start();
        return endpoint;
    }

    /** The bound address, with the actual port. */
    public InetSocketAddress address() {
        return (InetSocketAddress) server.getLocalSocketAddress();
    }

    /** Stops accepting, ends every connection, and returns once their threads have finished. */
    @Override
    public void close() {
        closed = true;
        closeQuietly(server);
        try {
            acceptor.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        links.forEach(Link::abort);
        connections.close();
        watchdog.shutdownNow();
    }

    private void acceptLoop() {
        while (!closed) {
            Socket socket;
            try {
                socket = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.log(Level.WARNING, "endpoint {0}: accept failed: {1}", address(), e.getMessage());
                    pause();
                }
                continue;
            }
            try {
                socket.setTcpNoDelay(true);
            } catch (SocketException e) {
                // The connection is gone already; its first use below fails and is reported.
            }
            if (!slots.tryAcquire()) {
                closeQuietly(socket);
                report(new ConnectionDecision(remote(socket), null, null, false,
                        "too many connections (" + limits.maxConnections() + ")"));
                continue;
            }
            connections.execute(() -> {
                try {
                    serve(socket);
                } finally {
                    slots.release();
                }
            });
        }
    }

    private void serve(Socket socket) {
        Link link = new Link(socket);
        links.add(link);
        // close() sets closed before aborting the registered links: either it saw this link or this sees closed.
        if (closed) {
            link.abort();
        }
        try {
            ConnectionDecision decision = switch (mode) {
                case Tls settings -> authenticate(link, settings);
                case Plaintext plaintext -> screen(link, plaintext);
            };
            if (decision.allowed()) {
                try {
                    link.vm = SocketChannel.open(StandardProtocolFamily.UNIX);
                    link.vm.connect(UnixDomainSocketAddress.of(vmSocket));
                } catch (IOException e) {
                    decision = new ConnectionDecision(decision.remote(), decision.binding(), decision.serial(), false,
                            "introspection socket unavailable: " + e.getMessage());
                }
            }
            report(decision);
            if (decision.allowed()) {
                relay(link);
            } else {
                link.finish();
            }
        } finally {
            link.abort();
            links.remove(link);
        }
    }

    private ConnectionDecision authenticate(Link link, Tls settings) {
        InetSocketAddress remote = remote(link.tcp);
        AtomicBoolean handshaking = new AtomicBoolean(true);
        ScheduledFuture<?> timer = watchdog.schedule(() -> {
            if (handshaking.compareAndSet(true, false)) {
                link.abort();
            }
        }, limits.handshakeTimeout().toNanos(), TimeUnit.NANOSECONDS);
        String timedOut = "TLS handshake timed out after " + limits.handshakeTimeout().toMillis() + " ms";
        X509Certificate certificate;
        try {
            SSLSocket session = (SSLSocket) tls.getSocketFactory().createSocket(link.tcp, null, true);
            SSLParameters parameters = session.getSSLParameters();
            parameters.setProtocols(new String[] {TLS_VERSION});
            parameters.setNeedClientAuth(true);
            session.setSSLParameters(parameters);
            link.tls = session;
            session.startHandshake();
            certificate = (X509Certificate) session.getSession().getPeerCertificates()[0];
        } catch (IOException e) {
            return denied(remote, null, null, handshaking.get() ? "TLS handshake failed: " + e.getMessage() : timedOut);
        } finally {
            timer.cancel(false);
        }
        if (!handshaking.compareAndSet(true, false)) {
            return denied(remote, null, null, timedOut);
        }
        BigInteger serial = certificate.getSerialNumber();
        // A resumed session skips the CA's checks, and its certificate may have expired since it was verified.
        try {
            certificate.checkValidity();
        } catch (CertificateException e) {
            return denied(remote, null, serial, "certificate not valid now: " + e.getMessage());
        }
        ClientBinding binding;
        try {
            binding = ClientBinding.from(certificate);
        } catch (CertificateException e) {
            return denied(remote, null, serial, "certificate binding: " + e.getMessage());
        }
        if (!binding.vm().equals(settings.vm())) {
            return denied(remote, binding, serial,
                    "certificate is for VM " + binding.vm() + ", this endpoint serves " + settings.vm());
        }
        if (binding.role().compareTo(settings.role()) < 0) {
            return denied(remote, binding, serial, "certificate allows role " + name(binding.role())
                    + ", this endpoint's socket has role " + name(settings.role()));
        }
        if (!binding.allows(remote.getAddress())) {
            return denied(remote, binding, serial, "address " + remote.getAddress().getHostAddress()
                    + " is not among the certificate's client addresses " + binding.clients());
        }
        Admission.Decision admitted;
        try {
            admitted = settings.admission().admit(binding, serial, remote.getAddress());
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "admission check failed for serial " + serial.toString(16), e);
            return denied(remote, binding, serial, "admission check failed: " + e);
        }
        return new ConnectionDecision(remote, binding, serial, admitted.allowed(), admitted.reason());
    }

    private static ConnectionDecision screen(Link link, Plaintext plaintext) {
        InetSocketAddress remote = remote(link.tcp);
        boolean allowed = plaintext.allowed().stream().anyMatch(block -> block.contains(remote.getAddress()));
        return new ConnectionDecision(remote, null, null, allowed, "address " + remote.getAddress().getHostAddress()
                + (allowed ? " is in the allow-list" : " is not in the allow-list"));
    }

    /** Relays until either side ends, then closes both; the VM-to-client direction runs on this thread. */
    private static void relay(Link link) {
        Thread upstream = Thread.ofPlatform().daemon().name(Thread.currentThread().getName() + "-up").start(() -> {
            byte[] buffer = new byte[BUFFER_BYTES];
            try {
                InputStream in = link.input();
                for (int n; (n = in.read(buffer)) >= 0; ) {
                    ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, n);
                    while (chunk.hasRemaining()) {
                        link.vm.write(chunk);
                    }
                }
            } catch (IOException e) {
                // The client or the VM side went away; either ends the connection.
            } finally {
                link.abort();
            }
        });
        ByteBuffer buffer = ByteBuffer.allocate(BUFFER_BYTES);
        try {
            OutputStream out = link.output();
            while (link.vm.read(buffer) >= 0) {
                out.write(buffer.array(), 0, buffer.position());
                buffer.clear();
            }
        } catch (IOException e) {
            // As above.
        } finally {
            link.finish();
        }
        try {
            upstream.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static ConnectionDecision denied(InetSocketAddress remote, ClientBinding binding, BigInteger serial,
            String why) {
        return new ConnectionDecision(remote, binding, serial, false, why);
    }

    private void report(ConnectionDecision decision) {
        try {
            decisions.accept(decision);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "connection decision not recorded: " + decision, e);
        }
    }

    private static SSLContext serverContext(Tls settings) throws IOException {
        try {
            char[] password = new char[0];
            KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            keys.init(settings.server().keyStore(password), password);
            // Only the CA: a store holding the key entry would also trust the endpoint's own certificate.
            KeyStore anchors = KeyStore.getInstance("PKCS12");
            anchors.load(null, null);
            anchors.setCertificateEntry(Identity.CA_ALIAS, settings.clientCa());
            TrustManagerFactory trust = TrustManagerFactory.getInstance("PKIX");
            trust.init(anchors);
            SSLContext context = SSLContext.getInstance(TLS_VERSION);
            context.init(keys.getKeyManagers(), trust.getTrustManagers(), null);
            return context;
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot set up TLS: " + e.getMessage(), e);
        }
    }

    private static InetSocketAddress remote(Socket socket) {
        return (InetSocketAddress) socket.getRemoteSocketAddress();
    }

    private static String name(Role role) {
        return role.name().toLowerCase(Locale.ROOT);
    }

    private static void pause() {
        try {
            Thread.sleep(100);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void closeQuietly(Closeable closeable) {
        if (closeable == null) {
            return;
        }
        try {
            closeable.close();
        } catch (IOException e) {
            // Closing is best effort: the descriptor is released either way.
        }
    }

    /** One client connection: its TCP socket, the TLS session over it (TLS mode), and the VM socket once admitted. */
    private static final class Link {
        final Socket tcp;
        volatile SSLSocket tls;
        volatile SocketChannel vm;

        Link(Socket tcp) {
            this.tcp = tcp;
        }

        InputStream input() throws IOException {
            return tls != null ? tls.getInputStream() : tcp.getInputStream();
        }

        OutputStream output() throws IOException {
            return tls != null ? tls.getOutputStream() : tcp.getOutputStream();
        }

        /**
         * Ends the TLS session with close_notify so the client sees a clean end of stream. Only the thread that
         * writes to the client calls this, so it never waits behind a write stalled on a client that does not read.
         */
        void finish() {
            closeQuietly(tls);
            abort();
        }

        /** Closes the descriptors themselves: unblocks any thread reading or writing them, from any thread. */
        void abort() {
            closeQuietly(tcp);
            closeQuietly(vm);
        }
    }
}
