package io.veggur.host.server;

import io.veggur.protocol.Event;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.net.SocketException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import org.newsclub.net.unix.AFUNIXServerSocket;
import org.newsclub.net.unix.AFUNIXSocket;
import org.newsclub.net.unix.AFUNIXSocketAddress;

/**
 * The per-VM introspection socket. It is the only thing of a VM that faces tenants: QEMU's gdbstub and QMP stay
 * behind it, reachable only by the supervisor. Its directory must be 0700 so that only who the host lets in (by
 * ownership or a bind mount of that one directory) can connect at all.
 *
 * <p>Invariants: at most {@link #MAX_CLIENTS} connections at once; a client's disconnect releases everything it held
 * (its pause); nothing a client sends can stop the server from serving others.
 */
public final class IntrospectionServer implements AutoCloseable {
    static final int MAX_CLIENTS = 32;
    private static final Logger LOG = System.getLogger(IntrospectionServer.class.getName());

    private final Path socketPath;
    private final IntrospectedVm vm;
    private final AccessPolicy policy;
    private final Set<ClientSession> sessions = ConcurrentHashMap.newKeySet();
    private final Semaphore clientSlots = new Semaphore(MAX_CLIENTS);
    private final AFUNIXServerSocket serverSocket;
    private volatile boolean closed;

    public IntrospectionServer(Path socketPath, IntrospectedVm vm, AccessPolicy policy) throws IOException {
        Path directory = socketPath.toAbsolutePath().getParent();
        Set<PosixFilePermission> permissions = Files.getPosixFilePermissions(directory);
        if (!permissions.equals(Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                PosixFilePermission.OWNER_EXECUTE))) {
            throw new IOException("refusing to serve: socket directory " + directory + " must be mode 0700");
        }
        this.socketPath = socketPath;
        this.vm = vm;
        this.policy = policy;
        Files.deleteIfExists(socketPath);
        this.serverSocket = AFUNIXServerSocket.bindOn(AFUNIXSocketAddress.of(socketPath));
        vm.register(this);
    }

    public Path socketPath() {
        return socketPath;
    }

    public void start() {
        Thread.ofPlatform().daemon().name("veggur-accept").start(this::acceptLoop);
    }

    private void acceptLoop() {
        while (!closed) {
            AFUNIXSocket socket;
            try {
                socket = serverSocket.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.log(Level.WARNING, "accept failed: " + e.getMessage());
                }
                continue;
            }
            if (!clientSlots.tryAcquire()) {
                LOG.log(Level.WARNING, "refusing a client: " + MAX_CLIENTS + " already connected");
                closeQuietly(socket);
                continue;
            }
            ClientSession session = new ClientSession(this, socket);
            sessions.add(session);
            // Platform threads: junixsocket's blocking reads pin a virtual thread's carrier, and a few idle clients
            // would then starve every other virtual thread of the process.
            Thread.ofPlatform().daemon().name("veggur-client").start(() -> {
                try {
                    session.run();
                } finally {
                    sessions.remove(session);
                    clientSlots.release();
                }
            });
        }
    }

    /** Delivers an event to this socket's subscribed clients. */
    void publish(Event event) {
        for (ClientSession session : sessions) {
            session.deliver(event);
        }
    }

    String vmId() {
        return vm.vmId();
    }

    GuestRam ram() {
        return vm.ram();
    }

    VcpuControl vcpus() {
        return vm.vcpus();
    }

    AccessPolicy policy() {
        return policy;
    }

    void refused(String what) {
        vm.refusals().record(policy.holder(), what);
    }

    Semaphore readBudget() {
        return vm.readBudget();
    }

    PauseArbiter pauses() {
        return vm.pauses();
    }

    DebugBridge debug() {
        return vm.debug();
    }

    @Override
    /** Closes the socket and every live session on it: how a revoked grant takes effect at once. */
    public void close() throws IOException {
        closed = true;
        vm.unregister(this);
        serverSocket.close();
        for (ClientSession session : sessions) {
            session.close();
        }
        Files.deleteIfExists(socketPath);
    }

    static void closeQuietly(AFUNIXSocket socket) {
        try {
            socket.close();
        } catch (IOException | RuntimeException ignored) {
            // nothing left to do for a socket we are dropping
        }
    }

    static boolean isDisconnect(IOException e) {
        return e instanceof SocketException || e instanceof java.io.EOFException;
    }
}
