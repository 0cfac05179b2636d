package io.veggur.host.qemu;

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
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Client for QEMU's system-mode gdbstub (GDB Remote Serial Protocol, all-stop mode) on a UNIX socket, used to stop and
 * resume the VM and to read vCPU registers.
 *
 * <p>Protocol facts this class is built on (measured on QEMU 7.2):
 * <ul>
 * <li>QEMU stops the VM when a client connects. If the VM was running it says so with a {@code T02} stop reply,
 *     otherwise it sends nothing. Closing the connection leaves the VM in whatever state it is in.
 * <li>While the VM runs, QEMU treats <em>any</em> incoming byte as a request to stop and discards it, replying only
 *     with a stop reply. So nothing but the 0x03 interrupt may be sent while running: requests need a stopped VM
 *     ({@link IllegalStateException} otherwise), and acknowledgements are only ever sent for packets QEMU just sent.
 * <li>{@code c} gets no reply until the VM stops again, for whatever reason: our interrupt, QMP {@code stop}, a
 *     breakpoint. Stop replies ({@code S}/{@code T} plus two hex digits) therefore arrive asynchronously; no reply to
 *     a request this class sends has that shape, so the reader thread recognises them by shape alone.
 * <li>QEMU 7.2 offers no {@code QStartNoAckMode}; packets are acknowledged with {@code +}. If a stub offers it, it is
 *     used.
 * </ul>
 *
 * <p>Invariants: one reader thread owns the input side; it acknowledges packets, turns stop replies into state
 * changes and {@link StopReply} notifications (on itself, in order, so listeners must be quick), and hands every other
 * packet to the single request in flight. The protocol is not pipelined, so a lock admits one request at a time;
 * {@link #whileStopped} holds it across stop, action and resume. A request without a reply in time closes the
 * connection, because a late reply would otherwise be taken as the answer to the next request. Any protocol violation
 * closes it too; every later call then fails with an {@link IOException} carrying the reason.
 *
 * <p>A breakpoint or a step stops the VM with SIGTRAP. From then on a trap is held: {@link #resume} and the end of
 * {@link #whileStopped} leave the VM stopped until the trap's handler calls {@link #releaseTrap}, so a pause or a
 * register read that races with a breakpoint hit can never let the VM run past an event still being handled.
 *
 * <p>The run state this class tracks is only as good as its monopoly: a QMP {@code stop} is noticed (QEMU sends a
 * stop reply), but a QMP {@code cont} while this client believes the VM stopped is not, and the next request is then
 * swallowed by QEMU and times out. While a GdbStub is connected, resume the VM only through it.
 */
public final class GdbStub implements AutoCloseable {
    static final int MAX_PACKET_BYTES = 1 << 20;
    private static final int MAX_DESCRIPTION_BYTES = 1 << 20;
    private static final int MAX_THREADS = 4096;
    private static final System.Logger LOG = System.getLogger(GdbStub.class.getName());
    private static final byte[] ACK = {'+'};
    private static final byte[] INTERRUPT = {0x03};

    /** An action run with the VM stopped; see {@link #whileStopped}. */
    @FunctionalInterface
    public interface StoppedAction<T> {
        T run() throws IOException;
    }

    private final Path socket;
    private final SocketChannel channel;
    private final long timeoutNanos;
    private final ReentrantLock requestLock = new ReentrantLock();
    private final ReentrantLock writeLock = new ReentrantLock();
    private final List<Consumer<StopReply>> stopListeners = new CopyOnWriteArrayList<>();
    private final AtomicReference<IOException> closeCause = new AtomicReference<>();
    private final AtomicLong stopReplies = new AtomicLong();
    private volatile boolean ackMode = true;
    private volatile boolean stopped = true; // QEMU stops the VM when a debugger connects
    /** A breakpoint or step stopped the VM (SIGTRAP): only {@link #releaseTrap} may let it run again. */
    private volatile boolean trapHeld;
    private volatile CompletableFuture<Void> nextStop = CompletableFuture.completedFuture(null);
    private volatile CompletableFuture<String> inFlight;
    // Assigned once by connect(), before the instance escapes.
    private volatile RegisterLayout layout;
    private volatile List<String> threads = List.of();

    private GdbStub(Path socket, SocketChannel channel, Duration timeout) {
        this.socket = socket;
        this.channel = channel;
        this.timeoutNanos = timeout.toNanos();
    }

    /**
     * Connects (which stops the VM), negotiates features, reads the target description and enumerates the vCPU
     * threads. Returns with the VM stopped.
     */
    public static GdbStub connect(Path socket, Duration timeout) throws IOException {
        QemuSockets.requirePositive(timeout);
        GdbStub stub = new GdbStub(socket, QemuSockets.open(socket, "gdbstub", timeout), timeout);
        Thread.ofVirtual().name("gdbstub-reader-" + socket.getFileName()).start(stub::readLoop);
        try {
            stub.handshake();
            return stub;
        } catch (IOException | RuntimeException e) {
            stub.close();
            throw e;
        }
    }

    /** The register file the stub described; fixed for the connection. */
    public RegisterLayout layout() {
        return layout;
    }

    /** Number of vCPUs, as enumerated at connect time (QEMU reports one thread per vCPU). */
    public int vcpuCount() {
        return threads.size();
    }

    /** Whether the VM is stopped, as far as the stub has told us (see the class comment). */
    public boolean isStopped() {
        return stopped;
    }

    /** Adds a listener for stop replies from now on; it runs on the reader thread and must be quick. */
    public void addStopListener(Consumer<StopReply> listener) {
        stopListeners.add(Objects.requireNonNull(listener, "listener"));
    }

    /** Stops the VM (interrupt) and waits for the stop reply; returns at once if it is already stopped. */
    public void stop() throws IOException {
        lock();
        try {
            stopLocked();
        } finally {
            requestLock.unlock();
        }
    }

    /** Lets the VM run ({@code c}); returns without waiting, as QEMU replies only when the VM stops again. */
    public void resume() throws IOException {
        lock();
        try {
            resumeLocked();
        } finally {
            requestLock.unlock();
        }
    }

    /**
     * Stops the VM if it runs, runs the action, and resumes the VM only if it was running before, also when the
     * action fails. No other request can interleave. This is how to read registers of a running VM.
     */
    public <T> T whileStopped(StoppedAction<T> action) throws IOException {
        lock();
        try {
            boolean wasRunning = !stopped;
            if (wasRunning) {
                stopLocked();
            }
            T result;
            try {
                result = action.run();
            } catch (Throwable failure) {
                if (wasRunning) {
                    try {
                        resumeLocked();
                    } catch (IOException e) {
                        failure.addSuppressed(e);
                    }
                }
                throw failure;
            }
            if (wasRunning) {
                resumeLocked();
            }
            return result;
        } finally {
            requestLock.unlock();
        }
    }

    /**
     * The registers of one vCPU that fit in 64 bits, by target-description name in layout order, read with {@code Hg}
     * and {@code g}. Registers the {@code g} reply does not cover, or marks unavailable ({@code xx}), are left out.
     *
     * @throws IllegalStateException if the VM is running
     */
    public Map<String, Long> readRegisters(int vcpuIndex) throws IOException {
        lock();
        try {
            Objects.checkIndex(vcpuIndex, threads.size());
            requireStopped("readRegisters");
            String thread = threads.get(vcpuIndex);
            String selected = request("Hg" + thread);
            if (!selected.equals("OK")) {
                throw new QemuProtocolException("gdbstub " + socket + " refused to select thread " + thread
                        + " (vCPU " + vcpuIndex + "): " + GdbPacketCodec.preview(selected));
            }
            return decodeRegisters(request("g"), vcpuIndex);
        } finally {
            requestLock.unlock();
        }
    }

    /** Inserts a software breakpoint ({@code Z0}) at a guest-virtual address; stops the VM briefly if it runs. */
    public void insertBreakpoint(long address) throws IOException {
        whileStopped(() -> {
            expectOk("Z0," + Long.toHexString(address) + ",1");
            return null;
        });
    }

    /** Removes a breakpoint inserted by {@link #insertBreakpoint}; stops the VM briefly if it runs. */
    public void removeBreakpoint(long address) throws IOException {
        whileStopped(() -> {
            expectOk("z0," + Long.toHexString(address) + ",1");
            return null;
        });
    }

    /** Whether a trap (breakpoint or step) holds the VM stopped. */
    public boolean trapHeld() {
        return trapHeld;
    }

    /**
     * Ends the hold of a trap, and lets the VM run if {@code resume} (a client's pause may still want it stopped).
     * A no-op when no trap is held.
     */
    public void releaseTrap(boolean resume) throws IOException {
        lock();
        try {
            if (!trapHeld) {
                return;
            }
            trapHeld = false;
            if (resume) {
                resumeLocked();
            }
        } finally {
            requestLock.unlock();
        }
    }

    /**
     * Executes one instruction on one vCPU ({@code vCont;s}; the others stay stopped) and waits until it has. The VM
     * must be stopped; it is stopped afterwards, with a trap held.
     */
    public void step(int vcpuIndex) throws IOException {
        lock();
        try {
            Objects.checkIndex(vcpuIndex, threads.size());
            requireStopped("step");
            CompletableFuture<Void> stop = new CompletableFuture<>();
            nextStop = stop;
            stopped = false;
            write(GdbPacketCodec.frame("vCont;s:" + threads.get(vcpuIndex)));
            try {
                stop.get(timeoutNanos, TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                SocketTimeoutException timeout = new SocketTimeoutException("gdbstub " + socket
                        + " did not finish a single step within " + TimeUnit.NANOSECONDS.toMillis(timeoutNanos)
                        + " ms; connection closed");
                terminate(timeout);
                throw timeout;
            } catch (ExecutionException e) {
                throw closedException("while stepping", e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while stepping on " + socket);
            }
        } finally {
            requestLock.unlock();
        }
    }

    /**
     * Writes registers of one vCPU by target-description name ({@code g}, patch, {@code G}: QEMU 7.2 has no
     * {@code P}). Names not in the layout are refused. The VM must be stopped.
     */
    public void writeRegisters(int vcpuIndex, Map<String, Long> values) throws IOException {
        lock();
        try {
            Objects.checkIndex(vcpuIndex, threads.size());
            requireStopped("writeRegisters");
            String thread = threads.get(vcpuIndex);
            String selected = request("Hg" + thread);
            if (!selected.equals("OK")) {
                throw new QemuProtocolException("gdbstub " + socket + " refused to select thread " + thread
                        + ": " + GdbPacketCodec.preview(selected));
            }
            StringBuilder hex = new StringBuilder(request("g"));
            decodeRegisters(hex.toString(), vcpuIndex); // validates the packet
            for (Map.Entry<String, Long> value : values.entrySet()) {
                RegisterLayout.Register register = layout.registers().stream()
                        .filter(r -> r.name().equals(value.getKey())).findFirst()
                        .orElseThrow(() -> new IllegalArgumentException("no register " + value.getKey()));
                int end = register.hexOffset() + register.byteSize() * 2;
                if (register.bitSize() > 64 || end > hex.length()) {
                    throw new IllegalArgumentException("register " + value.getKey() + " cannot be written");
                }
                long bits = value.getValue();
                for (int i = register.hexOffset(); i < end; i += 2, bits >>>= 8) {
                    hex.replace(i, i + 2, HexFormat.of().toHexDigits((byte) bits));
                }
            }
            expectOk("G" + hex);
        } finally {
            requestLock.unlock();
        }
    }

    /** Closes the socket without changing the VM's run state; a call in progress fails at once. Idempotent. */
    @Override
    public void close() {
        terminate(new IOException("GdbStub for " + socket + " was closed"));
    }

    private void handshake() throws IOException {
        lock();
        try {
            Map<String, String> features = parseFeatures(request("qSupported:multiprocess+;xmlRegisters=i386"));
            if (!"+".equals(features.get("qXfer:features:read"))) {
                throw new QemuProtocolException("gdbstub " + socket + " offers no target description (qSupported: "
                        + features + ")");
            }
            if ("+".equals(features.get("QStartNoAckMode"))) {
                expectOk("QStartNoAckMode");
                ackMode = false;
            }
            int chunk = descriptionChunkLength(features.get("PacketSize"));
            layout = TargetDescriptionReader.read(annex -> readDescriptionFile(annex, chunk));
            threads = listThreads();
        } finally {
            requestLock.unlock();
        }
    }

    /** How much of a description file to ask for per qXfer: the stub's packet size (the stub caps replies itself). */
    private int descriptionChunkLength(String advertised) throws QemuProtocolException {
        if (advertised == null) {
            return 0x400;
        }
        try {
            int size = Integer.parseInt(advertised, 16);
            if (size >= 64) {
                return Math.min(size, MAX_PACKET_BYTES / 2);
            }
        } catch (NumberFormatException ignored) {
            // reported below with context
        }
        throw new QemuProtocolException("gdbstub " + socket + " advertises PacketSize=" + advertised);
    }

    private String readDescriptionFile(String annex, int chunk) throws IOException {
        ByteArrayOutputStream content = new ByteArrayOutputStream();
        while (true) {
            String reply = request("qXfer:features:read:" + annex + ":" + Integer.toHexString(content.size()) + ","
                    + Integer.toHexString(chunk));
            char kind = reply.isEmpty() ? '?' : reply.charAt(0);
            if (kind != 'm' && kind != 'l') {
                throw new QemuProtocolException("gdbstub " + socket + " cannot read target description " + annex
                        + ": " + GdbPacketCodec.preview(reply));
            }
            content.writeBytes(reply.substring(1).getBytes(StandardCharsets.ISO_8859_1));
            if (content.size() > MAX_DESCRIPTION_BYTES) {
                throw new QemuProtocolException("target description " + annex + " exceeds " + MAX_DESCRIPTION_BYTES
                        + " bytes");
            }
            if (kind == 'l') {
                return content.toString(StandardCharsets.UTF_8);
            }
            if (reply.length() == 1) {
                throw new QemuProtocolException("gdbstub " + socket + " sent an empty chunk of " + annex
                        + " without ending it");
            }
        }
    }

    /** Thread ids from qfThreadInfo/qsThreadInfo ({@code m id,id,...} until {@code l}), in canonical form. */
    private List<String> listThreads() throws IOException {
        List<String> ids = new ArrayList<>();
        for (String reply = request("qfThreadInfo"); !reply.equals("l"); reply = request("qsThreadInfo")) {
            if (!reply.startsWith("m") || reply.length() == 1) {
                throw new QemuProtocolException("gdbstub " + socket + " sent a malformed thread list "
                        + GdbPacketCodec.preview(reply));
            }
            for (String id : reply.substring(1).split(",", -1)) {
                ids.add(canonicalThreadId(id));
            }
            if (ids.size() > MAX_THREADS) {
                throw new QemuProtocolException("gdbstub " + socket + " lists more than " + MAX_THREADS + " threads");
            }
        }
        if (ids.isEmpty()) {
            throw new QemuProtocolException("gdbstub " + socket + " lists no threads");
        }
        return List.copyOf(ids);
    }

    /**
     * {@code p<pid>.<tid>} (multiprocess syntax) or {@code <tid>}, both hex, rendered without leading zeros so that
     * ids from thread lists and stop replies compare equal.
     */
    static String canonicalThreadId(String id) throws QemuProtocolException {
        try {
            if (id.startsWith("p")) {
                int dot = id.indexOf('.');
                if (dot > 1) {
                    return "p" + positiveHex(id.substring(1, dot)) + "." + positiveHex(id.substring(dot + 1));
                }
            } else {
                return positiveHex(id);
            }
        } catch (NumberFormatException ignored) {
            // reported below with context
        }
        throw new QemuProtocolException("malformed gdbstub thread id " + GdbPacketCodec.preview(id));
    }

    private static String positiveHex(String digits) {
        if (digits.isEmpty() || digits.length() > 16 || digits.charAt(0) == '-' || digits.charAt(0) == '+') {
            throw new NumberFormatException(digits);
        }
        long value = Long.parseUnsignedLong(digits, 16);
        if (value == 0) {
            throw new NumberFormatException(digits); // 0 means "any thread", never a real one
        }
        return Long.toHexString(value);
    }

    private Map<String, Long> decodeRegisters(String hex, int vcpuIndex) throws QemuProtocolException {
        if (hex.length() % 2 != 0 || !hex.chars().allMatch(c -> HexFormat.isHexDigit(c) || c == 'x')) {
            throw new QemuProtocolException("gdbstub " + socket + " sent a malformed register packet for vCPU "
                    + vcpuIndex + ": " + GdbPacketCodec.preview(hex));
        }
        Map<String, Long> values = new LinkedHashMap<>();
        for (RegisterLayout.Register register : layout.registers()) {
            int start = register.hexOffset();
            int end = start + register.byteSize() * 2;
            if (end > hex.length()) {
                break;
            }
            if (register.bitSize() > 64 || hex.substring(start, end).indexOf('x') >= 0) {
                continue;
            }
            long value = 0;
            for (int i = end - 2; i >= start; i -= 2) {
                value = value << 8 | HexFormat.fromHexDigits(hex, i, i + 2);
            }
            values.put(register.name(), value);
        }
        return values;
    }

    private void stopLocked() throws IOException {
        if (stopped) {
            return;
        }
        CompletableFuture<Void> stop = nextStop;
        requireOpen("interrupt");
        write(INTERRUPT);
        try {
            stop.get(timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            // Not fatal: a late stop reply is recognised by its shape and still updates the state.
            throw new SocketTimeoutException("gdbstub " + socket + " did not report the VM stopped within "
                    + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms of an interrupt");
        } catch (ExecutionException e) {
            throw closedException("while waiting for the VM to stop", e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for the VM to stop on " + socket);
        }
    }

    private void resumeLocked() throws IOException {
        requireOpen("c");
        if (!stopped || trapHeld) {
            return;
        }
        nextStop = new CompletableFuture<>();
        stopped = false;
        write(GdbPacketCodec.frame("c"));
    }

    /** Sends one packet and waits for its reply. Caller holds the request lock and has checked the VM is stopped. */
    private String request(String payload) throws IOException {
        CompletableFuture<String> reply = new CompletableFuture<>();
        long stopsBefore = stopReplies.get();
        inFlight = reply;
        try {
            // inFlight is published before this check, so terminate() either fails it or we see the cause.
            requireOpen(payload);
            write(GdbPacketCodec.frame(payload));
            return reply.get(timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            String hint = stopReplies.get() == stopsBefore ? "" : "; a stop reply arrived meanwhile, so the VM was"
                    + " running (resumed behind this client's back?) and QEMU consumed the request to stop it";
            SocketTimeoutException timeout = new SocketTimeoutException("gdbstub " + socket + " sent no reply to "
                    + GdbPacketCodec.preview(payload) + " within " + TimeUnit.NANOSECONDS.toMillis(timeoutNanos)
                    + " ms" + hint + "; connection closed");
            terminate(timeout);
            throw timeout;
        } catch (ExecutionException e) {
            throw closedException("while waiting for the reply to " + GdbPacketCodec.preview(payload), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            InterruptedIOException interrupted = new InterruptedIOException("interrupted waiting for the reply to "
                    + GdbPacketCodec.preview(payload) + " on " + socket + "; connection closed");
            terminate(interrupted);
            throw interrupted;
        } finally {
            inFlight = null;
        }
    }

    private void expectOk(String payload) throws IOException {
        String reply = request(payload);
        if (!reply.equals("OK")) {
            throw new QemuProtocolException("gdbstub " + socket + " answered " + GdbPacketCodec.preview(reply)
                    + " to " + payload);
        }
    }

    private static Map<String, String> parseFeatures(String reply) {
        Map<String, String> features = new LinkedHashMap<>();
        for (String feature : reply.split(";")) {
            int equals = feature.indexOf('=');
            if (equals >= 0) {
                features.put(feature.substring(0, equals), feature.substring(equals + 1));
            } else if (!feature.isEmpty()) {
                features.put(feature.substring(0, feature.length() - 1), feature.substring(feature.length() - 1));
            }
        }
        return features;
    }

    private void readLoop() {
        GdbPacketCodec codec = new GdbPacketCodec(channel, MAX_PACKET_BYTES);
        try {
            while (true) {
                String payload = codec.readPacket();
                if (StopReply.isExitReply(payload)) {
                    // QEMU sends W00 as it quits and closes the socket right after; an ack would hit a dead pipe.
                    throw new EOFException("gdbstub " + socket + " reports the target exited: "
                            + GdbPacketCodec.preview(payload));
                }
                if (ackMode) {
                    write(ACK);
                }
                if (StopReply.isStopReply(payload)) {
                    onStop(StopReply.parse(payload));
                } else {
                    CompletableFuture<String> reply = inFlight;
                    if (reply == null || !reply.complete(payload)) {
                        LOG.log(Level.WARNING, "dropping unsolicited gdbstub packet on " + socket + ": "
                                + GdbPacketCodec.preview(payload));
                    }
                }
            }
        } catch (IOException e) {
            terminate(e);
        } catch (RuntimeException e) {
            terminate(new IOException("gdbstub reader for " + socket + " failed", e));
        }
    }

    private void onStop(StopReply raw) throws QemuProtocolException {
        OptionalInt vcpu = OptionalInt.empty();
        if (raw.thread().isPresent()) {
            int index = threads.indexOf(canonicalThreadId(raw.thread().get()));
            vcpu = index < 0 ? OptionalInt.empty() : OptionalInt.of(index);
        }
        StopReply reply = new StopReply(raw.signal(), raw.fields(), vcpu);
        stopReplies.incrementAndGet();
        if (reply.signal() == StopReply.SIGTRAP) {
            trapHeld = true;
        }
        stopped = true;
        // Listeners first: whoever waits for this stop (a step) must still be waiting while they run, so that they
        // can tell a stop someone asked for from one that just happened.
        for (Consumer<StopReply> listener : stopListeners) {
            try {
                listener.accept(reply);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "gdbstub stop listener failed on " + reply, e);
            }
        }
        nextStop.complete(null);
    }

    private void write(byte[] bytes) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        writeLock.lock();
        try {
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
        } catch (IOException e) {
            terminate(e);
            throw closedException("while sending", e);
        } finally {
            writeLock.unlock();
        }
    }

    private void terminate(IOException cause) {
        if (!closeCause.compareAndSet(null, cause)) {
            return;
        }
        try {
            channel.close();
        } catch (IOException e) {
            cause.addSuppressed(e);
        }
        nextStop.completeExceptionally(cause);
        CompletableFuture<String> reply = inFlight;
        if (reply != null) {
            reply.completeExceptionally(cause);
        }
    }

    private void lock() throws IOException {
        try {
            if (!requestLock.tryLock(timeoutNanos, TimeUnit.NANOSECONDS)) {
                throw new SocketTimeoutException("gdbstub " + socket + " stayed busy with another request for "
                        + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for the gdbstub " + socket);
        }
    }

    private void requireStopped(String operation) {
        if (!stopped) {
            throw new IllegalStateException(operation + " needs the VM stopped: call stop() or use whileStopped()");
        }
    }

    private void requireOpen(String operation) throws IOException {
        IOException cause = closeCause.get();
        if (cause != null) {
            throw closedException("before " + GdbPacketCodec.preview(operation), cause);
        }
    }

    private IOException closedException(String context, Throwable cause) {
        return new IOException("gdbstub connection " + socket + " closed " + context + ": " + cause.getMessage(),
                cause);
    }
}
