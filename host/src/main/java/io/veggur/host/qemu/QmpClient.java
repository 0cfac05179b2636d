package io.veggur.host.qemu;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.System.Logger.Level;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Client for the QEMU Machine Protocol (QMP) on a UNIX socket.
 *
 * <p>Wire format: QEMU writes one JSON object per line, compact (its default; a monitor configured with
 * {@code pretty=on} is not supported). A connection starts with a greeting, and {@code qmp_capabilities} moves it to
 * command mode; {@link #connect} does both. Every command carries a fresh numeric {@code id} that QEMU echoes in its
 * {@code return} or {@code error} reply, so commands from several threads may be in flight at once. Events carry no
 * id and arrive at any time.
 *
 * <p>Invariants:
 * <ul>
 * <li>One reader thread owns the input side. It completes the pending call whose id a reply names and hands events to
 *     listeners, on itself, in arrival order. QEMU writes the events a command causes before that command's reply, so
 *     when {@code execute("stop")} returns, listeners have already seen {@code STOP}. Listeners must therefore be
 *     quick and must not call {@link #execute} (the reply they would wait for sits behind them).
 * <li>Messages are bounded ({@value #MAX_MESSAGE_BYTES} bytes); anything unparsable closes the connection with
 *     {@link QemuProtocolException}. A reply with an unknown id (its caller timed out) is dropped.
 * <li>Once closed, by {@link #close()}, by QEMU closing the socket (QEMU exited) or by a protocol error, the client
 *     stays closed: pending and later calls fail at once with an {@link IOException} whose cause is the reason, and
 *     {@link #closeFuture()} completes, normally after {@link #close()} and exceptionally otherwise
 *     ({@link EOFException} when QEMU closed or reset the socket). That future is how a supervisor learns that QEMU
 *     exited.
 * <li>Every wait is bounded by the timeout given to {@link #connect}: a command without a reply in time fails with
 *     {@link SocketTimeoutException} and leaves the connection usable.
 * </ul>
 *
 * <p>QEMU serves one QMP client per socket at a time; a second client is accepted by the kernel but gets no greeting
 * until the first one disconnects, so {@link #connect} then times out.
 */
public final class QmpClient implements AutoCloseable {
    static final int MAX_MESSAGE_BYTES = 8 << 20;
    private static final System.Logger LOG = System.getLogger(QmpClient.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path socket;
    private final SocketChannel channel;
    private final long timeoutNanos;
    private final AtomicLong nextId = new AtomicLong();
    private final Map<Long, PendingCall> pending = new ConcurrentHashMap<>();
    private final List<Consumer<QmpEvent>> listeners = new CopyOnWriteArrayList<>();
    private final ReentrantLock writeLock = new ReentrantLock();
    private final CompletableFuture<ObjectNode> greeting = new CompletableFuture<>();
    private final CompletableFuture<Void> closed = new CompletableFuture<>();
    private final AtomicReference<IOException> closeCause = new AtomicReference<>();

    private record PendingCall(String command, CompletableFuture<ObjectNode> reply) {}

    private QmpClient(Path socket, SocketChannel channel, Duration timeout) {
        this.socket = socket;
        this.channel = channel;
        this.timeoutNanos = timeout.toNanos();
    }

    /** Connects, waits for QEMU's greeting and negotiates capabilities (none are enabled). */
    public static QmpClient connect(Path socket, Duration timeout) throws IOException {
        QemuSockets.requirePositive(timeout);
        QmpClient client = new QmpClient(socket, QemuSockets.open(socket, "QMP", timeout), timeout);
        Thread.ofVirtual().name("qmp-reader-" + socket.getFileName()).start(client::readLoop);
        try {
            client.awaitGreeting();
            client.execute("qmp_capabilities");
            return client;
        } catch (IOException | RuntimeException e) {
            client.close();
            throw e;
        }
    }

    /** Runs a command without arguments and returns its {@code return} value. */
    public JsonNode execute(String command) throws IOException {
        return send(command, null);
    }

    /** Runs a command and returns its {@code return} value; throws {@link QmpException} if QEMU reports an error. */
    public JsonNode execute(String command, ObjectNode arguments) throws IOException {
        return send(command, Objects.requireNonNull(arguments, "arguments"));
    }

    /** The {@code status} of {@code query-status}: {@code running}, {@code paused}, {@code prelaunch}, ... */
    public String queryStatus() throws IOException {
        JsonNode status = execute("query-status").get("status");
        if (status == null || !status.isTextual()) {
            throw new QemuProtocolException("query-status reply on " + socket + " has no textual status");
        }
        return status.asText();
    }

    /** Adds a listener for events that arrive from now on; it runs on the reader thread (see the class comment). */
    public void addEventListener(Consumer<QmpEvent> listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    /**
     * Completes when the connection ends: normally after {@link #close()}, exceptionally with the reason otherwise
     * ({@link EOFException} when QEMU closed or reset the socket, typically because it exited).
     */
    public CompletionStage<Void> closeFuture() {
        return closed.minimalCompletionStage();
    }

    /** Closes the socket; pending calls fail at once. Idempotent. */
    @Override
    public void close() {
        terminate(new IOException("QmpClient for " + socket + " was closed"), true);
    }

    private JsonNode send(String command, ObjectNode arguments) throws IOException {
        Objects.requireNonNull(command, "command");
        long id = nextId.incrementAndGet();
        ObjectNode request = JSON.createObjectNode().put("execute", command);
        if (arguments != null) {
            request.set("arguments", arguments);
        }
        request.put("id", id);
        byte[] bytes = JSON.writeValueAsBytes(request);
        PendingCall call = new PendingCall(command, new CompletableFuture<>());
        pending.put(id, call);
        try {
            // Registered before this check, so terminate() either sees the call or we see its cause.
            requireOpen(command);
            write(bytes);
            ObjectNode reply = await(call);
            JsonNode error = reply.get("error");
            if (error != null) {
                throw new QmpException(command, error.path("class").asText("(no class)"),
                        error.path("desc").asText("(no description)"));
            }
            return reply.get("return");
        } finally {
            pending.remove(id);
        }
    }

    private ObjectNode await(PendingCall call) throws IOException {
        try {
            return call.reply().get(timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new SocketTimeoutException("QMP command '" + call.command() + "' got no reply within "
                    + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms on " + socket);
        } catch (ExecutionException e) {
            throw closedException("while waiting for the reply to '" + call.command() + "'", e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for the reply to QMP command '" + call.command()
                    + "' on " + socket);
        }
    }

    private void awaitGreeting() throws IOException {
        try {
            greeting.get(timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new SocketTimeoutException("no QMP greeting on " + socket + " within "
                    + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms (is another client connected?)");
        } catch (ExecutionException e) {
            throw closedException("before the greeting", e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for the QMP greeting on " + socket);
        }
    }

    private void write(byte[] json) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(json.length + 1).put(json).put((byte) '\n').flip();
        writeLock.lock();
        try {
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
        } catch (IOException e) {
            terminate(e, false);
            throw closedException("while sending a command", e);
        } finally {
            writeLock.unlock();
        }
    }

    private void readLoop() {
        try {
            ByteBuffer buffer = ByteBuffer.allocate(64 << 10);
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            while (true) {
                buffer.clear();
                readSome(buffer);
                buffer.flip();
                while (buffer.hasRemaining()) {
                    byte b = buffer.get();
                    if (b == '\n') {
                        dispatch(line.toByteArray());
                        line.reset();
                    } else if (line.size() == MAX_MESSAGE_BYTES) {
                        throw new QemuProtocolException("QMP message on " + socket + " exceeds " + MAX_MESSAGE_BYTES
                                + " bytes without a line end");
                    } else {
                        line.write(b);
                    }
                }
            }
        } catch (IOException e) {
            terminate(e, false);
        } catch (RuntimeException e) {
            terminate(new IOException("QMP reader for " + socket + " failed", e), false);
        }
    }

    /** Reads at least one byte; a closed or reset connection both mean QEMU went away. */
    private void readSome(ByteBuffer buffer) throws IOException {
        int n;
        try {
            n = channel.read(buffer);
        } catch (IOException e) {
            throw (EOFException) new EOFException("QMP socket " + socket + " failed: " + e.getMessage()
                    + " (QEMU exited?)").initCause(e);
        }
        if (n < 0) {
            throw new EOFException("QEMU closed the QMP socket " + socket + " (QEMU exited?)");
        }
    }

    private void dispatch(byte[] line) throws IOException {
        int length = line.length > 0 && line[line.length - 1] == '\r' ? line.length - 1 : line.length;
        if (length == 0) {
            return;
        }
        JsonNode message;
        try {
            message = JSON.readTree(line, 0, length);
        } catch (JsonProcessingException e) {
            throw new QemuProtocolException("unparsable QMP message on " + socket + ": " + preview(line), e);
        }
        if (!(message instanceof ObjectNode object)) {
            throw new QemuProtocolException("QMP message on " + socket + " is not a JSON object: " + preview(line));
        }
        if (object.has("QMP")) {
            greeting.complete(object);
        } else if (object.has("event")) {
            deliver(parseEvent(object, line));
        } else if (object.has("return") || object.has("error")) {
            completeCall(object, line);
        } else {
            throw new QemuProtocolException("unrecognised QMP message on " + socket + ": " + preview(line));
        }
    }

    private void completeCall(ObjectNode reply, byte[] line) {
        JsonNode id = reply.get("id");
        PendingCall call = id != null && id.canConvertToExactIntegral() ? pending.get(id.asLong()) : null;
        if (call == null) {
            LOG.log(Level.DEBUG, () -> "dropping QMP reply without a waiting caller on " + socket + ": "
                    + preview(line));
        } else {
            call.reply().complete(reply);
        }
    }

    private QmpEvent parseEvent(ObjectNode message, byte[] line) throws QemuProtocolException {
        JsonNode name = message.get("event");
        JsonNode seconds = message.path("timestamp").path("seconds");
        JsonNode micros = message.path("timestamp").path("microseconds");
        if (!name.isTextual() || !seconds.canConvertToExactIntegral() || !micros.canConvertToExactIntegral()
                || micros.asLong() < 0 || micros.asLong() >= 1_000_000) {
            throw new QemuProtocolException("malformed QMP event on " + socket + ": " + preview(line));
        }
        JsonNode data = message.has("data") ? message.get("data") : JSON.createObjectNode();
        try {
            return new QmpEvent(name.asText(), data, Instant.ofEpochSecond(seconds.asLong(), micros.asLong() * 1000));
        } catch (DateTimeException e) {
            throw new QemuProtocolException("QMP event on " + socket + " has an impossible timestamp: "
                    + preview(line), e);
        }
    }

    private void deliver(QmpEvent event) {
        for (Consumer<QmpEvent> listener : listeners) {
            try {
                listener.accept(event);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "QMP event listener failed on " + event.name(), e);
            }
        }
    }

    private void terminate(IOException cause, boolean byClient) {
        if (!closeCause.compareAndSet(null, cause)) {
            return;
        }
        try {
            channel.close();
        } catch (IOException e) {
            cause.addSuppressed(e);
        }
        greeting.completeExceptionally(cause);
        pending.values().forEach(call -> call.reply().completeExceptionally(cause));
        if (byClient) {
            closed.complete(null);
        } else {
            closed.completeExceptionally(cause);
        }
    }

    private void requireOpen(String command) throws IOException {
        IOException cause = closeCause.get();
        if (cause != null) {
            throw closedException("before sending '" + command + "'", cause);
        }
    }

    private IOException closedException(String context, Throwable cause) {
        return new IOException("QMP connection " + socket + " closed " + context + ": " + cause.getMessage(), cause);
    }

    private static String preview(byte[] line) {
        String text = new String(line, 0, Math.min(line.length, 200), StandardCharsets.UTF_8);
        return line.length > 200 ? text + "... (" + line.length + " bytes)" : text;
    }
}
