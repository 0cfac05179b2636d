package io.veggur.vmi;

import io.veggur.protocol.Capability;
import io.veggur.protocol.ErrorCode;
import io.veggur.protocol.Event;
import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.Reply;
import io.veggur.protocol.Request;
import io.veggur.protocol.WireCodec;
import io.veggur.vmi.memory.MappedPhysicalMemory;
import io.veggur.vmi.memory.PageCache;
import io.veggur.vmi.memory.PhysicalMemory;
import io.veggur.vmi.transport.Connection;
import io.veggur.vmi.transport.Transport;
import java.io.IOException;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * One connection to a VM's introspection socket: the entry point of the client library.
 *
 * <p>{@link #physicalMemory()} is the fastest source available: the zero-copy mapping of the granted memory
 * descriptor when the socket is local and grants one, batched remote reads through a {@link PageCache} otherwise.
 * The cache is emptied whenever the guest may have changed under it and the session knows: it resumes the VM, a debug
 * event arrives, a VM event arrives; and on request ({@link PhysicalMemory#invalidate}); a page is never served
 * older than {@value #CACHE_MAX_AGE_MILLIS} ms. Thread-safe.
 */
public final class IntrospectionSession implements AutoCloseable {
    private static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

    private final ProtocolClient client;
    private final Reply.Welcome welcome;
    private final boolean canReceiveFds;
    private static final int HANDLER_DRAIN_SECONDS = 2;
    private ExecutorService debugThread;
    /** 16 MiB of pages; misses fetch their aligned 32 KiB block (measured best for process lists over TLS: 4, 8, 16 pages). */
    private static final int CACHE_PAGES = 4096;
    private static final int READ_AHEAD_PAGES = 8;
    static final long CACHE_MAX_AGE_MILLIS = 100;
    private final RemotePhysicalMemory remoteMemory;
    private final PageCache cachedMemory;
    private MappedPhysicalMemory mappedMemory;

    private IntrospectionSession(ProtocolClient client, Reply.Welcome welcome, boolean canReceiveFds) {
        this.client = client;
        this.welcome = welcome;
        this.canReceiveFds = canReceiveFds;
        this.remoteMemory = new RemotePhysicalMemory(client, welcome.memoryMap());
        this.cachedMemory = new PageCache(remoteMemory, CACHE_PAGES, READ_AHEAD_PAGES,
                TimeUnit.MILLISECONDS.toNanos(CACHE_MAX_AGE_MILLIS));
        // Registered first, so the cache is empty before any other listener (a debug handler) reads memory.
        client.addEventListener(event -> cachedMemory.invalidate());
    }

    public static IntrospectionSession connect(String endpoint) throws IOException {
        return connect(Transport.parse(endpoint));
    }

    public static IntrospectionSession connect(Transport transport) throws IOException {
        Connection connection = transport.open();
        ProtocolClient client = new ProtocolClient(connection, DEFAULT_TIMEOUT);
        try {
            Reply reply = client.call(new Request.Hello(WireCodec.VERSION, WireCodec.VERSION)).reply();
            if (!(reply instanceof Reply.Welcome welcome)) {
                throw new IOException("it answered the handshake with " + reply.getClass().getSimpleName());
            }
            return new IntrospectionSession(client, welcome, connection.canReceiveFileDescriptors());
        } catch (VmiException refused) {
            client.close();
            throw refused;
        } catch (IOException | RuntimeException e) {
            // Garbage, a hang-up or a broken pipe during the hello all mean the same to the user.
            client.close();
            throw new IOException(transport.describe() + " does not speak the Veggur introspection protocol ("
                    + e.getMessage() + ")", e);
        }
    }

    public String vmId() {
        return welcome.vmId();
    }

    public int protocolVersion() {
        return welcome.version();
    }

    public int vcpuCount() {
        return welcome.vcpus();
    }

    public MemoryMap memoryMap() {
        return welcome.memoryMap();
    }

    public Set<Capability> capabilities() {
        return welcome.capabilities();
    }

    /** The zero-copy mapping when available (local socket that grants the descriptor), else remote reads. */
    public synchronized PhysicalMemory physicalMemory() throws IOException {
        if (mappedMemory == null && canReceiveFds && capabilities().contains(Capability.MEMORY_FD)) {
            mappedMemory = mapGrantedMemory();
        }
        return mappedMemory != null ? mappedMemory : cachedMemory;
    }

    /** Reads through the socket with the page cache, as a remote client does, even when a mapping is possible. */
    public PhysicalMemory cachedRemotePhysicalMemory() {
        return cachedMemory;
    }

    /** Reads through the socket, uncached, even when a mapping is possible (for comparison and benchmarks). */
    public PhysicalMemory remotePhysicalMemory() {
        return remoteMemory;
    }

    private MappedPhysicalMemory mapGrantedMemory() throws IOException {
        ProtocolClient.Answer answer = client.call(new Request.GrantMemoryFd());
        if (answer.fd() == null) {
            throw new VmiException(ErrorCode.MALFORMED, "the server granted memory but no descriptor arrived");
        }
        return MappedPhysicalMemory.of(answer.fd(), memoryMap());
    }

    public VcpuRegisters registers(int vcpu) throws IOException {
        Reply.Registers registers = (Reply.Registers) client.call(new Request.GetRegisters(vcpu)).reply();
        return new VcpuRegisters(registers.vcpu(), registers.values());
    }

    public void writePhysical(long address, byte[] data) throws IOException {
        client.call(new Request.WritePhysical(address, data));
    }

    /** Pauses every vCPU. The server resumes the VM by itself if this session ends while holding the pause. */
    public void pause() throws IOException {
        client.call(new Request.Pause());
    }

    public void resume() throws IOException {
        client.call(new Request.Resume());
        cachedMemory.invalidate();
    }

    /** Delivers VM state changes to {@code listener} on the client's reader thread; keep it quick. */
    public void subscribeVmEvents(Consumer<Event> listener) throws IOException {
        client.addEventListener(listener);
        client.call(new Request.SubscribeVmEvents());
    }

    /**
     * Sets a breakpoint at a guest-virtual address; {@code pageTableRoot} 0 reports hits in any address space, else only
     * while CR3 points at that page-table root (one process). Events go to the handler of {@link #onDebugEvents}.
     */
    public int setBreakpoint(long address, long pageTableRoot) throws IOException {
        return ((Reply.BreakpointSet) client.call(new Request.SetBreakpoint(address, pageTableRoot)).reply()).breakpointId();
    }

    /** Executes one instruction on a vCPU of a VM this session holds paused; returns its registers after. */
    public VcpuRegisters singleStep(int vcpu) throws IOException {
        Reply.Registers registers = (Reply.Registers) client.call(new Request.SingleStep(vcpu)).reply();
        return new VcpuRegisters(registers.vcpu(), registers.values());
    }

    public void clearBreakpoint(int breakpointId) throws IOException {
        client.call(new Request.ClearBreakpoint(breakpointId));
    }

    /**
     * Handles this session's debug events with {@code handler}, one at a time on a thread of the session's own (never
     * the reader thread, so the handler can use the session). Set it before the first breakpoint.
     */
    public synchronized void onDebugEvents(DebugHandler handler) {
        if (debugThread != null) {
            throw new IllegalStateException("a debug handler is already set");
        }
        debugThread = Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().name("veggur-debug-handler").factory());
        client.addEventListener(event -> {
            switch (event) {
                case Event.Debug debug -> debugThread.execute(() -> handle(handler, debug));
                case Event.EventExpired expired -> handler.expired(expired.eventId());
                case Event.EventsDropped dropped -> handler.dropped(dropped.count());
                default -> { }
            }
        });
    }

    private void handle(DebugHandler handler, Event.Debug event) {
        DebugHandler.Resolution resolution;
        try {
            resolution = handler.onEvent(event);
        } catch (IOException | RuntimeException e) {
            resolution = DebugHandler.Resolution.proceed();
        }
        try {
            client.call(new Request.ResolveEvent(event.eventId(), resolution.action(), resolution.registers()));
        } catch (VmiException expired) {
            // the deadline passed meanwhile; the handler hears of it through expired()
        } catch (IOException e) {
            // the session is ending; the server lets the vCPU go on by itself
        }
    }

    /** Blocks until the session ends (the server closed it, e.g. because its socket was revoked) and says why. */
    public IOException awaitEnd() throws InterruptedException {
        try {
            return client.ended().get();
        } catch (ExecutionException e) {
            throw new IllegalStateException("the end of a session cannot fail", e);
        }
    }

    /**
     * Closes the session. A debug handler still running gets up to {@value #HANDLER_DRAIN_SECONDS} s to finish, so the
     * resolution it is about to send (new registers, say) is not lost to the close; the server resolves whatever
     * remains when the connection ends.
     */
    @Override
    public void close() {
        ExecutorService handlers;
        synchronized (this) {
            handlers = debugThread;
        }
        if (handlers != null) {
            handlers.shutdown();
            try {
                if (!handlers.awaitTermination(HANDLER_DRAIN_SECONDS, TimeUnit.SECONDS)) {
                    handlers.shutdownNow();
                }
            } catch (InterruptedException e) {
                handlers.shutdownNow();
                Thread.currentThread().interrupt();
            }
        }
        closeConnection();
    }

    private synchronized void closeConnection() {
        client.close();
        if (mappedMemory != null) {
            mappedMemory.close();
        }
    }
}
