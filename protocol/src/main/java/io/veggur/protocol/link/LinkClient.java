package io.veggur.protocol.link;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The guest end of one session on a serial link: {@link #open} sends OPEN with a fresh random nonce and skips
 * whatever the port still holds until the host's answer carrying that nonce; then {@link #input()} and
 * {@link #output()} carry the session's bytes in DATA frames, KEEPALIVE frames go out whenever nothing else has for
 * {@link #KEEPALIVE_INTERVAL}, and {@link #close()} sends CLOSE.
 *
 * <p>The channels may be anything blocking (a virtio-serial port's two {@code FileChannel}s on one descriptor, a
 * socket in tests); closing them must wake a thread blocked in them. Two platform threads own them: a reader and a
 * writer, which alone calls {@code write}, one call per frame (so frames never interleave and, on a virtio-serial
 * port, each is one buffer). Platform threads because closing a {@code FileChannel} interrupts only native threads
 * blocked in it. Callers of the streams only wait on bounded in-memory queues, so {@link #close()} never hangs on
 * the device, whatever thread calls it.
 */
public final class LinkClient implements Closeable {
    public static final Duration KEEPALIVE_INTERVAL = Duration.ofMillis(250);
    /** DATA frames waiting for the writer; a writer of the output stream blocks beyond this. */
    static final int OUTBOX_FRAMES = 8;
    /** Received bytes not yet read; the reader thread stops reading the port beyond this. */
    static final int INBOX_BYTES = 256 * 1024;
    /** How long close() lets queued frames and CLOSE reach the port before it closes it anyway. */
    private static final long CLOSE_DRAIN_MILLIS = 1000;
    private static final long JOIN_MILLIS = 2000;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String name;
    private final ReadableByteChannel in;
    private final WritableByteChannel out;
    private final byte[] nonce = new byte[LinkFrame.NONCE_BYTES];
    private final Outbox outbox = new Outbox();
    private final Inbox inbox = new Inbox();
    private final CompletableFuture<Void> opened = new CompletableFuture<>();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final InputStream input = new SessionInput();
    private final OutputStream output = new SessionOutput();
    private final Thread reader;
    private final Thread writer;
    private volatile boolean openWritten;

    private LinkClient(String name, ReadableByteChannel in, WritableByteChannel out) {
        this.name = name;
        this.in = in;
        this.out = out;
        RANDOM.nextBytes(nonce);
        reader = Thread.ofPlatform().daemon().name("veggur-link-reader").unstarted(this::readLoop);
        writer = Thread.ofPlatform().daemon().name("veggur-link-writer").unstarted(this::writeLoop);
    }

    /**
     * Opens a session, waiting at most {@code timeout} for the host's answer. {@code name} names the link in
     * messages ("serial port io.veggur.vmi"). On failure the channels are closed.
     */
    public static LinkClient open(String name, ReadableByteChannel in, WritableByteChannel out, Duration timeout)
            throws IOException {
        LinkClient client = new LinkClient(name, in, out);
        client.outbox.put(LinkFrame.open(client.nonce).encode());
        client.reader.start();
        client.writer.start();
        try {
            client.opened.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            return client;
        } catch (TimeoutException e) {
            client.close();
            throw new IOException("no answer on " + name + ": " + (client.openWritten
                    ? "no reply to the open request within " + timeout.toMillis() + " ms"
                    : "the host side did not take the open request within " + timeout.toMillis()
                            + " ms (is the host side connected?)"));
        } catch (ExecutionException e) {
            client.close();
            throw (IOException) e.getCause();
        } catch (InterruptedException e) {
            client.close();
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while opening " + name);
        }
    }

    public InputStream input() {
        return input;
    }

    /** Bytes written are sent when a DATA frame fills up or on {@code flush()}. */
    public OutputStream output() {
        return output;
    }

    /** Sends CLOSE after what is queued (for at most a second), then closes the channels and ends both threads. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        boolean wasOpen = opened.isDone() && !opened.isCompletedExceptionally();
        if (wasOpen && outbox.putLast(LinkFrame.close().encode())) {
            join(writer, CLOSE_DRAIN_MILLIS);
        }
        IOException ended = new IOException(name + ": connection closed");
        outbox.fail(ended);
        inbox.end(ended);
        opened.completeExceptionally(ended);
        closeQuietly(out);
        closeQuietly(in);
        join(reader, JOIN_MILLIS);
        join(writer, JOIN_MILLIS);
    }

    private void readLoop() {
        IOException end = receive();
        if (closed.get()) {
            end = new IOException(name + ": connection closed");
        }
        opened.completeExceptionally(end);
        inbox.end(end);
    }

    /** Waits for the host's answer, then delivers the session's DATA; returns why it ended. */
    private IOException receive() {
        try {
            LinkReader frames = new LinkReader(in, LinkType.Sender.HOST);
            LinkFrame answer = frames.skipToAnswer(nonce);
            if (answer == null) {
                // A virtio-serial port reads as ended while nobody is connected on the host.
                return new IOException("no answer on " + name + ": the host side is not connected");
            }
            if (answer.type() == LinkType.CLOSED) {
                return new IOException(name + ": the host refused the session: " + answer.reason());
            }
            opened.complete(null);
            return session(frames);
        } catch (LinkFormatException e) {
            return new IOException(name + ": malformed frame from the host: " + e.getMessage());
        } catch (EOFException e) {
            return new IOException(name + ": the host side disconnected inside a frame");
        } catch (IOException e) {
            return new IOException(name + ": cannot read: " + reason(e), e);
        }
    }

    /** Delivers the session's DATA until it ends; returns why it ended. */
    private IOException session(LinkReader frames) throws IOException {
        while (true) {
            LinkFrame frame = frames.next();
            if (frame == null) {
                return new IOException(name + ": the host side disconnected");
            }
            switch (frame.type()) {
                case DATA -> inbox.put(frame.payload());
                case CLOSED -> {
                    return new IOException(name + ": the host closed the session: " + frame.reason());
                }
                default -> throw new LinkFormatException("unexpected " + frame.type() + " during a session");
            }
        }
    }

    private void writeLoop() {
        try {
            while (true) {
                ByteBuffer frame = outbox.take(KEEPALIVE_INTERVAL.toMillis());
                if (frame == null) {
                    if (!opened.isDone() || opened.isCompletedExceptionally()) {
                        continue;
                    }
                    frame = LinkFrame.keepalive().encode();
                }
                boolean last = frame.get(4) == LinkType.CLOSE.code();
                while (frame.hasRemaining()) {
                    out.write(frame);
                }
                openWritten = true;
                if (last) {
                    return;
                }
            }
        } catch (InterruptedException | IOException e) {
            IOException failure = closed.get() ? new IOException(name + ": connection closed")
                    : new IOException(name + ": cannot write: " + reason(e), e);
            outbox.fail(failure);
            inbox.end(failure);
            opened.completeExceptionally(failure);
        }
    }

    private static String reason(Exception e) {
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    private static void join(Thread thread, long millis) {
        try {
            thread.join(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void closeQuietly(Channel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing for good: nothing to do about a failure
        }
    }

    /** Encoded frames for the writer thread, bounded; {@link #fail} ends it for everyone. */
    private static final class Outbox {
        private final ArrayDeque<ByteBuffer> frames = new ArrayDeque<>();
        private IOException failure;

        synchronized void put(ByteBuffer frame) throws IOException {
            try {
                while (failure == null && frames.size() >= OUTBOX_FRAMES) {
                    wait();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while sending");
            }
            if (failure != null) {
                throw failure;
            }
            frames.add(frame);
            notifyAll();
        }

        /** Queues the last frame past the bound (there is only ever one); false if the outbox failed. */
        synchronized boolean putLast(ByteBuffer frame) {
            if (failure != null) {
                return false;
            }
            frames.add(frame);
            notifyAll();
            return true;
        }

        /** The next frame, null after {@code millis} without one; throws once failed. */
        synchronized ByteBuffer take(long millis) throws InterruptedException, IOException {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
            while (failure == null && frames.isEmpty()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
            if (failure != null) {
                throw failure;
            }
            ByteBuffer frame = frames.poll();
            notifyAll();
            return frame;
        }

        synchronized void fail(IOException cause) {
            if (failure == null) {
                failure = cause;
            }
            frames.clear();
            notifyAll();
        }
    }

    /** Received DATA payloads, bounded; after {@link #end}, what was received is still read, then the cause. */
    private final class Inbox {
        private final ArrayDeque<byte[]> chunks = new ArrayDeque<>();
        private int offset;
        private int bytes;
        private IOException end;

        synchronized void put(byte[] chunk) throws InterruptedIOException {
            try {
                while (end == null && bytes >= INBOX_BYTES) {
                    wait();
                }
            } catch (InterruptedException e) {
                throw new InterruptedIOException("interrupted while receiving");
            }
            if (end == null) {
                chunks.add(chunk);
                bytes += chunk.length;
                notifyAll();
            }
        }

        synchronized void end(IOException cause) {
            if (end == null) {
                end = cause;
            }
            notifyAll();
        }

        synchronized int read(byte[] b, int off, int len) throws IOException {
            try {
                while (chunks.isEmpty() && end == null) {
                    wait();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while receiving");
            }
            if (chunks.isEmpty() || closed.get()) {
                throw end;
            }
            byte[] first = chunks.peek();
            int n = Math.min(len, first.length - offset);
            System.arraycopy(first, offset, b, off, n);
            offset += n;
            if (offset == first.length) {
                chunks.poll();
                offset = 0;
            }
            bytes -= n;
            notifyAll();
            return n;
        }

        synchronized int available() {
            return closed.get() ? 0 : bytes;
        }
    }

    private final class SessionInput extends InputStream {
        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            Objects.checkFromIndexSize(off, len, b.length);
            return len == 0 ? 0 : inbox.read(b, off, len);
        }

        @Override
        public int available() {
            return inbox.available();
        }

        @Override
        public void close() {
            LinkClient.this.close();
        }
    }

    /** Collects bytes into one DATA frame until it is full or flushed. */
    private final class SessionOutput extends OutputStream {
        private final byte[] pending = new byte[LinkFrame.MAX_DATA];
        private int count;

        @Override
        public synchronized void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) throws IOException {
            Objects.checkFromIndexSize(off, len, b.length);
            while (len > 0) {
                int n = Math.min(len, pending.length - count);
                System.arraycopy(b, off, pending, count, n);
                count += n;
                off += n;
                len -= n;
                if (count == pending.length) {
                    send();
                }
            }
        }

        @Override
        public synchronized void flush() throws IOException {
            if (count > 0) {
                send();
            }
        }

        private void send() throws IOException {
            outbox.put(LinkFrame.data(pending, 0, count).encode());
            count = 0;
        }

        @Override
        public void close() {
            LinkClient.this.close();
        }
    }
}
