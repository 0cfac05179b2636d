package io.veggur.vmi;

import io.veggur.protocol.ErrorCode;
import io.veggur.protocol.Event;
import io.veggur.protocol.Frame;
import io.veggur.protocol.ProtocolException;
import io.veggur.protocol.Reply;
import io.veggur.protocol.Request;
import io.veggur.protocol.WireCodec;
import io.veggur.vmi.transport.Connection;
import java.io.FileDescriptor;
import java.io.IOException;
import java.io.PushbackInputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * Pipelined request/reply over one connection. Any number of requests may be in flight; a single reader thread
 * completes them by request id in whatever order the server answers. Invariants: request ids are never 0 (reserved
 * for events) and never reused while pending; once the stream fails every pending and future call fails with the
 * cause.
 */
final class ProtocolClient implements AutoCloseable {
    /** A reply paired with the descriptor that arrived with it, if any. */
    record Answer(Reply reply, FileDescriptor fd) {}

    /** Content type and version: the bytes that tell a TLS record (see {@link #refuseTls}). */
    private static final int TLS_RECORD_START = 3;

    private final Connection connection;
    private final OutputStream out;
    private final Duration timeout;
    private final AtomicInteger nextId = new AtomicInteger(1);
    private final Map<Integer, CompletableFuture<Answer>> pending = new ConcurrentHashMap<>();
    private final CompletableFuture<IOException> ended = new CompletableFuture<>();
    private final List<Consumer<Event>> eventListeners = new CopyOnWriteArrayList<>();
    private final ArrayDeque<FileDescriptor> receivedFds = new ArrayDeque<>();
    private volatile IOException failure;

    ProtocolClient(Connection connection, Duration timeout) throws IOException {
        this.connection = connection;
        this.out = connection.output();
        this.timeout = timeout;
        PushbackInputStream in = new PushbackInputStream(connection.input(), TLS_RECORD_START);
        Thread.ofPlatform().daemon().name("veggur-client-reader").start(() -> readLoop(in));
    }

    void addEventListener(Consumer<Event> listener) {
        eventListeners.add(listener);
    }

    CompletableFuture<Answer> send(Request request) {
        CompletableFuture<Answer> future = new CompletableFuture<>();
        int id;
        do {
            id = nextId.getAndIncrement() & 0x7fffffff;
        } while (id == 0 || pending.putIfAbsent(id, future) != null);
        ByteBuffer frame = WireCodec.encode(id, request);
        try {
            IOException failed = failure;
            if (failed != null) {
                throw failed;
            }
            synchronized (out) {
                out.write(frame.array(), frame.arrayOffset(), frame.limit());
                out.flush();
            }
        } catch (IOException e) {
            pending.remove(id);
            future.completeExceptionally(e);
        }
        return future;
    }

    /** Sends and waits; a {@link Reply.Error} becomes a {@link VmiException}. */
    Answer call(Request request) throws IOException {
        return await(send(request));
    }

    Answer await(CompletableFuture<Answer> future) throws IOException {
        Answer answer;
        try {
            answer = future.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new IOException("no reply from the introspection server within " + timeout.toMillis() + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for a reply", e);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
        if (answer.reply() instanceof Reply.Error error) {
            throw new VmiException(error.code(), error.message());
        }
        return answer;
    }

    private void readLoop(PushbackInputStream in) {
        IOException cause;
        try {
            refuseTls(in);
            while (true) {
                Frame frame = Frame.read(in);
                if (frame == null) {
                    cause = new IOException("the introspection server closed the connection");
                    break;
                }
                for (FileDescriptor fd : connection.takeReceivedFileDescriptors()) {
                    receivedFds.add(fd);
                }
                Object message = WireCodec.decodeServerMessage(frame);
                if (frame.requestId() == 0 && message instanceof Event event) {
                    eventListeners.forEach(listener -> listener.accept(event));
                    continue;
                }
                CompletableFuture<Answer> future = pending.remove(frame.requestId());
                if (future == null || !(message instanceof Reply reply)) {
                    throw new ProtocolException(ErrorCode.MALFORMED, "server sent an unexpected frame for request " + frame.requestId());
                }
                FileDescriptor fd = reply instanceof Reply.MemoryFd ? receivedFds.poll() : null;
                future.complete(new Answer(reply, fd));
            }
        } catch (IOException e) {
            cause = e;
        }
        fail(cause);
    }

    /**
     * A TLS server answers a plaintext hello with a TLS alert record, which as a frame would be a length of about
     * 197 000 bytes and a confusing error. The server's first frame (its welcome) is far smaller, so bytes that
     * begin a TLS record there are one.
     */
    private static void refuseTls(PushbackInputStream in) throws IOException {
        byte[] start = in.readNBytes(TLS_RECORD_START);
        in.unread(start);
        boolean tlsRecord = start.length == TLS_RECORD_START && (start[0] == 0x15 || start[0] == 0x16)
                && start[1] == 0x03 && start[2] >= 0x00 && start[2] <= 0x04;
        if (tlsRecord) {
            throw new IOException("the server speaks TLS: connect with tls://HOST:PORT?identity=FILE");
        }
    }

    /** Completes with the reason once the connection has ended, whoever ended it. */
    CompletableFuture<IOException> ended() {
        return ended;
    }

    private void fail(IOException cause) {
        failure = cause;
        ended.complete(cause);
        pending.values().forEach(f -> f.completeExceptionally(cause));
        pending.clear();
        try {
            connection.close();
        } catch (IOException ignored) {
            // already failing: the first cause is what the caller needs
        }
    }

    @Override
    public void close() {
        fail(new IOException("session closed"));
    }
}
