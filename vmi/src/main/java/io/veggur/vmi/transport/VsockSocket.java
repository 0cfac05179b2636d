package io.veggur.vmi.transport;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.net.SocketException;
import java.time.Duration;
import java.util.Objects;

/**
 * An AF_VSOCK stream socket held as a raw descriptor, with blocking streams over {@code read(2)} and
 * {@code send(2)}.
 *
 * <p>Invariant: the descriptor is closed exactly once, and only when no call is using it, so a number the kernel
 * recycles for another file is never read or written here. {@link #close()} first shuts the socket down, which wakes a
 * thread blocked in a read (it sees the end of the stream) or a write; the last call to leave then closes it.
 */
final class VsockSocket implements Closeable {
    /** {@code VMADDR_CID_ANY} and {@code VMADDR_PORT_ANY}: bind to any, never a peer. */
    static final int ANY = -1;
    /** {@code SO_VM_SOCKETS_CONNECT_TIMEOUT} on 64-bit Linux (the option that takes a {@code struct timeval}). */
    static final int SO_VM_SOCKETS_CONNECT_TIMEOUT = 6;
    /** {@code struct sockaddr_vm} from linux/vm_sockets.h: 16 bytes, fields in host byte order. */
    static final StructLayout SOCKADDR_VM = MemoryLayout.structLayout(
            ValueLayout.JAVA_SHORT.withName("svm_family"),
            ValueLayout.JAVA_SHORT.withName("svm_reserved1"),
            ValueLayout.JAVA_INT.withName("svm_port"),
            ValueLayout.JAVA_INT.withName("svm_cid"),
            MemoryLayout.sequenceLayout(4, ValueLayout.JAVA_BYTE).withName("svm_zero"));
    private static final VarHandle FAMILY = SOCKADDR_VM.varHandle(MemoryLayout.PathElement.groupElement("svm_family"));
    private static final VarHandle PORT = SOCKADDR_VM.varHandle(MemoryLayout.PathElement.groupElement("svm_port"));
    private static final VarHandle CID = SOCKADDR_VM.varHandle(MemoryLayout.PathElement.groupElement("svm_cid"));
    /** {@code struct timeval}: seconds and microseconds, both {@code long}. */
    private static final StructLayout TIMEVAL = MemoryLayout.structLayout(
            ValueLayout.JAVA_LONG.withName("tv_sec"), ValueLayout.JAVA_LONG.withName("tv_usec"));
    private static final int BUFFER_BYTES = 64 * 1024;

    private final int fd;
    private final String name;
    private final Object lock = new Object();
    /** Calls using {@link #fd} right now; guarded by {@link #lock}. */
    private int users;
    private boolean closing;
    private boolean released;
    private final InputStream input = new SocketInput();
    private final OutputStream output = new SocketOutput();

    /** Takes ownership of {@code fd}; {@code name} (an endpoint) prefixes messages. */
    VsockSocket(int fd, String name) {
        this.fd = fd;
        this.name = name;
    }

    /** A connected socket; the connect gives up after {@code timeout}. Every failure is one line naming {@code name}. */
    static VsockSocket connect(long cid, long port, Duration timeout, String name) throws IOException {
        VsockSocket socket = open(name);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment limit = arena.allocate(TIMEVAL);
            limit.set(ValueLayout.JAVA_LONG, 0, timeout.toSeconds());
            limit.set(ValueLayout.JAVA_LONG, 8, timeout.toMillisPart() * 1000L);
            socket.check(Libc.setsockopt(socket.fd, Libc.AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, limit),
                    "cannot connect to " + name);
            socket.check(Libc.connect(socket.fd, address(arena, cid, port)), "cannot connect to " + name);
            return socket;
        } catch (IOException | RuntimeException e) {
            socket.close();
            throw e;
        }
    }

    /** A listening socket bound to {@code cid} and {@code port} (either may be {@link #ANY}). */
    static VsockSocket listen(int cid, int port, String name) throws IOException {
        VsockSocket socket = open(name);
        try (Arena arena = Arena.ofConfined()) {
            socket.check(Libc.bind(socket.fd, address(arena, cid & 0xffffffffL, port & 0xffffffffL)),
                    "cannot bind " + name);
            socket.check(Libc.listen(socket.fd, 16), "cannot listen on " + name);
            return socket;
        } catch (IOException | RuntimeException e) {
            socket.close();
            throw e;
        }
    }

    /** A {@code struct sockaddr_vm} for {@code cid} and {@code port} (each an unsigned 32-bit number). */
    static MemorySegment address(Arena arena, long cid, long port) {
        MemorySegment address = arena.allocate(SOCKADDR_VM);
        FAMILY.set(address, 0L, (short) Libc.AF_VSOCK);
        PORT.set(address, 0L, (int) port);
        CID.set(address, 0L, (int) cid);
        return address;
    }

    /** The local port, as the kernel chose it for a bind to {@link #ANY}. */
    long localPort() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment address = arena.allocate(SOCKADDR_VM);
            enter();
            try {
                check(Libc.getsockname(fd, address), "cannot read the address of " + name);
            } finally {
                leave();
            }
            return Integer.toUnsignedLong((int) PORT.get(address, 0L));
        }
    }

    InputStream input() {
        return input;
    }

    OutputStream output() {
        return output;
    }

    @Override
    public void close() {
        synchronized (lock) {
            if (closing) {
                return;
            }
            closing = true;
            users++;
        }
        // Fails harmlessly (ENOTCONN) on a socket that never connected.
        Libc.shutdown(fd, Libc.SHUT_RDWR);
        leave();
    }

    private static VsockSocket open(String name) throws IOException {
        Libc.Result result = Libc.socket(Libc.AF_VSOCK, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0);
        if (result.failed()) {
            throw new IOException("cannot connect to " + name + ": " + Libc.describe(result.errno())
                    + (result.errno() == Libc.EAFNOSUPPORT ? "; this kernel offers no vsock" : ""));
        }
        return new VsockSocket((int) result.value(), name);
    }

    private void check(Libc.Result result, String what) throws IOException {
        if (result.failed()) {
            throw new IOException(what + ": " + Libc.describe(result.errno()));
        }
    }

    private void enter() throws SocketException {
        synchronized (lock) {
            if (closing) {
                throw new SocketException(name + ": socket closed");
            }
            users++;
        }
    }

    private void leave() {
        synchronized (lock) {
            if (--users == 0 && closing && !released) {
                released = true;
                Libc.close(fd);
            }
        }
    }

    /** Reads with one native buffer; a read of the buffer is one {@code read(2)}. */
    private final class SocketInput extends InputStream {
        private final MemorySegment buffer = Arena.ofAuto().allocate(BUFFER_BYTES);
        private long position;
        private long limit;

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public synchronized int read(byte[] b, int off, int len) throws IOException {
            Objects.checkFromIndexSize(off, len, b.length);
            if (len == 0) {
                return 0;
            }
            if (position == limit && !fill()) {
                return -1;
            }
            int n = (int) Math.min(len, limit - position);
            MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, position, b, off, n);
            position += n;
            return n;
        }

        @Override
        public synchronized int available() {
            return (int) (limit - position);
        }

        private boolean fill() throws IOException {
            enter();
            try {
                while (true) {
                    Libc.Result result = Libc.read(fd, buffer, BUFFER_BYTES);
                    if (!result.failed()) {
                        synchronized (lock) {
                            if (closing && result.value() == 0) {
                                throw new SocketException(name + ": socket closed");
                            }
                        }
                        position = 0;
                        limit = result.value();
                        return limit > 0;
                    }
                    if (result.errno() != Libc.EINTR) {
                        throw new IOException(name + ": cannot read: " + Libc.describe(result.errno()));
                    }
                }
            } finally {
                leave();
            }
        }

        @Override
        public void close() {
            VsockSocket.this.close();
        }
    }

    private final class SocketOutput extends OutputStream {
        private final MemorySegment buffer = Arena.ofAuto().allocate(BUFFER_BYTES);

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) throws IOException {
            Objects.checkFromIndexSize(off, len, b.length);
            enter();
            try {
                while (len > 0) {
                    int chunk = Math.min(len, BUFFER_BYTES);
                    MemorySegment.copy(b, off, buffer, ValueLayout.JAVA_BYTE, 0, chunk);
                    long sent = 0;
                    while (sent < chunk) {
                        Libc.Result result = Libc.send(fd, buffer.asSlice(sent), chunk - sent);
                        if (result.failed() && result.errno() != Libc.EINTR) {
                            throw new IOException(name + ": cannot write: " + Libc.describe(result.errno()));
                        }
                        sent += Math.max(0, result.value());
                    }
                    off += chunk;
                    len -= chunk;
                }
            } finally {
                leave();
            }
        }

        @Override
        public void close() {
            VsockSocket.this.close();
        }
    }
}
