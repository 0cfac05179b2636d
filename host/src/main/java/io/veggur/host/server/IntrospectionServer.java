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
    /** Bytes of read replies that may be held in memory at once, across all clients. */
    static final int READ_BUDGET_BYTES = 64 << 20;
    private static final Logger LOG = System.getLogger(IntrospectionServer.class.getName());

    private final Path socketPath;
    private final String vmId;
    private final GuestRam ram;
    private final VcpuControl vcpus;
    private final AccessPolicy policy;
    private final PauseArbiter pauses;
    private final Set<ClientSession> sessions = ConcurrentHashMap.newKeySet();
    private final Semaphore clientSlots = new Semaphore(MAX_CLIENTS);
    private final Semaphore readBudget = new Semaphore(READ_BUDGET_BYTES);
    private final AFUNIXServerSocket serverSocket;
    private volatile boolean closed;

    public IntrospectionServer(Path socketPath, String vmId, GuestRam ram, VcpuControl vcpus, AccessPolicy policy)
            throws IOException {
        Path directory = socketPath.toAbsolutePath().getParent();
        Set<PosixFilePermission> permissions = Files.getPosixFilePermissions(directory);
        if (!permissions.equals(Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                PosixFilePermission.OWNER_EXECUTE))) {
            throw new IOException("refusing to serve: socket directory " + directory + " must be mode 0700");
        }
        this.socketPath = socketPath;
        this.vmId = vmId;
        this.ram = ram;
        this.vcpus = vcpus;
        this.policy = policy;
        this.pauses = new PauseArbiter(vcpus, paused -> publish(new Event.VmStateChanged(
                paused ? Event.VmState.PAUSED : Event.VmState.RUNNING, paused ? "client-pause" : "client-resume")));
        Files.deleteIfExists(socketPath);
        this.serverSocket = AFUNIXServerSocket.bindOn(AFUNIXSocketAddress.of(socketPath));
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
            Thread.ofVirtual().name("veggur-client").start(() -> {
                try {
                    session.run();
                } finally {
                    sessions.remove(session);
                    clientSlots.release();
                }
            });
        }
    }

    /** Delivers an event to every subscribed client. */
    public void publish(Event event) {
        for (ClientSession session : sessions) {
            session.deliver(event);
        }
    }

    String vmId() {
        return vmId;
    }

    GuestRam ram() {
        return ram;
    }

    VcpuControl vcpus() {
        return vcpus;
    }

    AccessPolicy policy() {
        return policy;
    }

    Semaphore readBudget() {
        return readBudget;
    }

    PauseArbiter pauses() {
        return pauses;
    }

    @Override
    public void close() throws IOException {
        closed = true;
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
