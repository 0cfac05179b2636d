package io.veggur.agent.monitor;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Pipe;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Plays QEMU for one virtio-serial port: the chardev server socket the bridge connects to, and the port as guest
 * processes open it. Like QEMU, it reads the bridge's bytes only while a guest holds the port, so what a dead guest
 * did not read waits in the socket for the next one (stale bytes); a guest's frames reach the bridge whole.
 */
final class FakeQemuPort implements AutoCloseable {
    private final ServerSocketChannel server;
    private final LinkedBlockingQueue<SocketChannel> accepted = new LinkedBlockingQueue<>();
    private final Object lock = new Object();
    private Guest holder;

    FakeQemuPort(Path socket) throws IOException {
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        Thread.ofVirtual().start(this::acceptLoop);
    }

    /** The bridge's next connection; the test may then speak the link on it directly, as the port's holder. */
    SocketChannel awaitConnection() throws InterruptedException {
        SocketChannel connection = accepted.poll(5, TimeUnit.SECONDS);
        if (connection == null) {
            throw new AssertionError("the bridge did not connect within 5 s");
        }
        return connection;
    }

    /**
     * Relays {@code connection} to guest processes from now on (one thread, reading only while a guest holds the
     * port, as QEMU does).
     */
    void relay(SocketChannel connection) {
        Thread.ofVirtual().start(() -> {
            ByteBuffer buffer = ByteBuffer.allocate(4096);
            try {
                while (true) {
                    awaitHolder();
                    if (connection.read(buffer.clear()) < 0) {
                        return;
                    }
                    Guest guest;
                    synchronized (lock) {
                        guest = holder;
                    }
                    if (guest != null) {
                        guest.deliver(buffer.flip());
                    }
                    // else: the guest died with these bytes in its buffers; the kernel discards them.
                }
            } catch (IOException | InterruptedException e) {
                // The connection ended.
            }
        });
    }

    /**
     * A guest process opens the port; {@code stale} is what it reads first (the rest of an earlier session's frame,
     * say). Its frames go to {@code connection}.
     */
    Guest open(SocketChannel connection, byte[] stale) throws IOException {
        Guest guest = new Guest(connection);
        guest.deliver(ByteBuffer.wrap(stale));
        synchronized (lock) {
            if (holder != null) {
                throw new IllegalStateException("the port is held (EBUSY)");
            }
            holder = guest;
            lock.notifyAll();
        }
        return guest;
    }

    private void awaitHolder() throws InterruptedException {
        synchronized (lock) {
            while (holder == null) {
                lock.wait();
            }
        }
    }

    private void acceptLoop() {
        try {
            while (true) {
                accepted.add(server.accept());
            }
        } catch (IOException e) {
            // Closed.
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
    }

    /** One process holding the port: {@link #in} and {@link #out} are its ends, as the port's descriptor. */
    final class Guest {
        final Pipe.SourceChannel in;
        final Pipe.SinkChannel out;
        private final Pipe.SinkChannel toGuest;

        private Guest(SocketChannel connection) throws IOException {
            Pipe down = Pipe.open();
            Pipe up = Pipe.open();
            in = down.source();
            toGuest = down.sink();
            out = up.sink();
            Pipe.SourceChannel fromGuest = up.source();
            Thread.ofVirtual().start(() -> {
                ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
                try (fromGuest) {
                    while (fromGuest.read(buffer.clear()) >= 0) {
                        buffer.flip();
                        while (buffer.hasRemaining()) {
                            connection.write(buffer);
                        }
                    }
                } catch (IOException e) {
                    // The guest or the connection went away.
                }
            });
        }

        private void deliver(ByteBuffer bytes) {
            try {
                while (bytes.hasRemaining()) {
                    toGuest.write(bytes);
                }
            } catch (IOException e) {
                // The process died; what it did not read is lost with it.
            }
        }

        /**
         * The process exits or is killed: its descriptor closes. The port tells the bridge nothing; only a CLOSE the
         * process sent before would.
         */
        void exit() throws IOException {
            synchronized (lock) {
                if (holder == this) {
                    holder = null;
                }
            }
            out.close();
            in.close();
            toGuest.close();
        }
    }
}
