package io.veggur.vmi.transport;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * Re-exposes a remote introspection endpoint ({@code tls://}, {@code tcp://}, any {@link Transport}) as a local UNIX
 * socket, for tools that only speak UNIX sockets: every local connection gets its own upstream connection, and bytes
 * pass unchanged both ways, so the remote socket still decides what each session may do.
 *
 * <p>Whoever can connect to the local socket uses the relay's identity. The socket is therefore made in a directory
 * only its owner may enter (created 0700 if missing; an existing one with any group or other permission is refused)
 * and is itself 0600. At most {@link #MAX_CONNECTIONS} connections at once; more are closed at once.
 */
public final class SocketRelay implements Closeable {
    public static final int MAX_CONNECTIONS = 32;
    private static final int BUFFER_BYTES = 64 * 1024;

    private final Path socket;
    private final Transport upstream;
    private final Consumer<String> log;
    private final ServerSocketChannel server;
    private final Set<Closeable> open = ConcurrentHashMap.newKeySet();
    private final AtomicInteger connections = new AtomicInteger();
    private final Thread acceptor;
    private volatile boolean closed;

    private SocketRelay(Path socket, Transport upstream, Consumer<String> log, ServerSocketChannel server) {
        this.socket = socket;
        this.upstream = upstream;
        this.log = log;
        this.server = server;
        this.acceptor = Thread.ofVirtual().name("veggur-relay").unstarted(this::acceptLoop);
    }

    /** Listens on {@code socket} (which must not exist) and relays to {@code upstream}; {@code log} gets one line per event. */
    public static SocketRelay start(Path socket, Transport upstream, Consumer<String> log) throws IOException {
        Path directory = socket.toAbsolutePath().getParent();
        if (!Files.exists(directory, LinkOption.NOFOLLOW_LINKS)) {
            Files.createDirectories(directory, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        }
        Set<PosixFilePermission> permissions = Files.getPosixFilePermissions(directory, LinkOption.NOFOLLOW_LINKS);
        if (!Files.isDirectory(directory, LinkOption.NOFOLLOW_LINKS)
                || !PosixFilePermissions.toString(permissions).endsWith("------")) {
            throw new IOException(directory + " must be a directory only you can enter (mode 0700): whoever reaches the"
                    + " relay's socket uses your identity");
        }
        if (Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(socket + " exists already");
        }
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            server.bind(UnixDomainSocketAddress.of(socket));
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
        } catch (IOException e) {
            server.close();
            throw new IOException("cannot listen on " + socket + ": " + e.getMessage(), e);
        }
        SocketRelay relay = new SocketRelay(socket, upstream, log, server);
        relay.acceptor.start();
        return relay;
    }

    /** Waits until the relay is closed (or this thread is interrupted). */
    public void awaitClose() throws InterruptedException {
        acceptor.join();
    }

    /** Stops listening, removes the socket and ends every relayed connection. */
    @Override
    public void close() {
        closed = true;
        closeQuietly(server);
        open.forEach(SocketRelay::closeQuietly);
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            log.accept("cannot remove " + socket + ": " + e.getMessage());
        }
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel local;
            try {
                local = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    log.accept("accept failed: " + e.getMessage());
                }
                return;
            }
            if (connections.incrementAndGet() > MAX_CONNECTIONS) {
                connections.decrementAndGet();
                closeQuietly(local);
                log.accept("refused a local connection: " + MAX_CONNECTIONS + " are open");
                continue;
            }
            Thread.ofVirtual().name("veggur-relay-connection").start(() -> {
                try {
                    relay(local);
                } finally {
                    connections.decrementAndGet();
                }
            });
        }
    }

    private void relay(SocketChannel local) {
        open.add(local);
        Connection remote = null;
        try {
            remote = upstream.open();
            open.add(remote);
            log.accept("connected to " + upstream.describe());
            Connection connection = remote;
            InputStream remoteInput = remote.input();
            OutputStream remoteOutput = remote.output();
            Thread up = Thread.ofVirtual().start(() -> pump(Channels.newInputStream(local), remoteOutput, local, connection));
            pump(remoteInput, Channels.newOutputStream(local), local, connection);
            up.join();
        } catch (IOException e) {
            log.accept("cannot reach " + upstream.describe() + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            closeQuietly(local);
            closeQuietly(remote);
            open.remove(local);
            if (remote != null) {
                open.remove(remote);
            }
        }
    }

    /** Copies until either end closes, then closes both, which ends the other direction too. */
    private static void pump(InputStream from, OutputStream to, Closeable a, Closeable b) {
        byte[] buffer = new byte[BUFFER_BYTES];
        try {
            for (int n; (n = from.read(buffer)) >= 0; ) {
                to.write(buffer, 0, n);
                to.flush();
            }
        } catch (IOException e) {
            // one side went away: the connection ends
        } finally {
            closeQuietly(a);
            closeQuietly(b);
        }
    }

    private static void closeQuietly(Closeable closeable) {
        if (closeable == null) {
            return;
        }
        try {
            closeable.close();
        } catch (IOException e) {
            // best effort: the descriptor is released either way
        }
    }
}
