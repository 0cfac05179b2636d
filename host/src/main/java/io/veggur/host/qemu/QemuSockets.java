package io.veggur.host.qemu;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;

/** What the QMP and gdbstub clients share about QEMU's UNIX sockets. */
final class QemuSockets {
    private static final long RETRY_MILLIS = 10;

    private QemuSockets() {}

    /**
     * A connected blocking channel. QEMU creates its socket file before it listens on it, so a refused connect is
     * retried until the timeout. The connect itself is non-blocking so that a server whose accept backlog is full
     * (QEMU serves one client at a time) fails it at once with EAGAIN instead of blocking without a time limit; Linux
     * completes or refuses AF_UNIX connects immediately, it never leaves them pending.
     */
    static SocketChannel open(Path socket, String what, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            try {
                return connectOnce(socket);
            } catch (ConnectException refused) {
                if (System.nanoTime() - deadline > 0) {
                    throw failure(socket, what, refused);
                }
            } catch (IOException e) {
                throw failure(socket, what, e);
            }
            try {
                Thread.sleep(RETRY_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted connecting to the " + what + " socket " + socket);
            }
        }
    }

    private static SocketChannel connectOnce(Path socket) throws IOException {
        SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            channel.configureBlocking(false);
            if (!channel.connect(UnixDomainSocketAddress.of(socket))) {
                throw new IOException("connect did not complete at once");
            }
            channel.configureBlocking(true);
            return channel;
        } catch (IOException e) {
            channel.close();
            throw e;
        }
    }

    private static IOException failure(Path socket, String what, IOException cause) {
        return new IOException("cannot connect to the " + what + " socket " + socket + ": " + cause.getMessage(),
                cause);
    }

    static void requirePositive(Duration timeout) {
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
    }
}
