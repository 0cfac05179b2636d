package io.veggur.host.server;

import io.veggur.protocol.Capability;
import io.veggur.protocol.ErrorCode;
import io.veggur.protocol.Event;
import io.veggur.protocol.Frame;
import io.veggur.protocol.MemoryMap;
import io.veggur.protocol.ProtocolException;
import io.veggur.protocol.Register;
import io.veggur.protocol.Reply;
import io.veggur.protocol.Request;
import io.veggur.protocol.WireCodec;
import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import org.newsclub.net.unix.AFUNIXSocket;

/**
 * One client connection. The reader decodes frames in order; memory requests are served on the reader thread, and
 * requests that go through the gdbstub on threads of their own (platform threads: they write to a junixsocket, which
 * would pin a virtual thread's carrier), so replies may overtake each other (a
 * register read that must stop the VM does not hold up memory reads). At most {@link #MAX_IN_FLIGHT} requests run at
 * once; beyond that the reader stops reading, which pushes back on the client.
 *
 * <p>Malformed requests get a typed error and the connection goes on; a frame whose length is out of bounds cannot be
 * skipped, so it gets an error and the connection is closed. Error messages never carry host paths.
 */
final class ClientSession {
    static final int MAX_IN_FLIGHT = 64;
    private static final Logger LOG = System.getLogger(ClientSession.class.getName());
    private static final AtomicLong INCIDENTS = new AtomicLong();

    private final IntrospectionServer server;
    private final AFUNIXSocket socket;
    private final Semaphore inFlight = new Semaphore(MAX_IN_FLIGHT);
    private final Object writeLock = new Object();
    private volatile boolean handshakeDone;
    private volatile boolean subscribed;
    private OutputStream out;

    ClientSession(IntrospectionServer server, AFUNIXSocket socket) {
        this.server = server;
        this.socket = socket;
    }

    void run() {
        try (socket) {
            InputStream in = socket.getInputStream();
            out = socket.getOutputStream();
            while (true) {
                Frame frame;
                try {
                    frame = Frame.read(in, Frame.MAX_REQUEST_PAYLOAD);
                } catch (ProtocolException e) {
                    write(WireCodec.encode(0, new Reply.Error(e.code(), e.getMessage())), null);
                    return;
                }
                if (frame == null) {
                    return;
                }
                inFlight.acquireUninterruptibly();
                if (touchesVcpus(frame.type())) {
                    Thread.ofPlatform().daemon().name("veggur-vcpu-request").start(() -> serve(frame));
                } else {
                    serve(frame);
                }
            }
        } catch (IOException e) {
            if (!IntrospectionServer.isDisconnect(e)) {
                LOG.log(Level.WARNING, "client connection failed: " + e);
            }
        } finally {
            // Requests still running could take a pause after we release it: wait for all of them first.
            inFlight.acquireUninterruptibly(MAX_IN_FLIGHT);
            releaseHeldState();
        }
    }

    /**
     * Requests that go through the gdbstub may wait on the VM; they run on their own thread so memory reads are not
     * held up behind them. Everything else is a bounded memory copy, cheapest done right here.
     */
    private static boolean touchesVcpus(int type) {
        return type == WireCodec.GET_REGISTERS || type == WireCodec.PAUSE || type == WireCodec.RESUME
                || type == WireCodec.SET_BREAKPOINT || type == WireCodec.CLEAR_BREAKPOINT || type == WireCodec.SINGLE_STEP;
    }

    private void serve(Frame frame) {
        try {
            ByteBuffer reply = handle(frame);
            if (reply != null) {
                write(reply, null);
            }
        } catch (IOException e) {
            close();
        } finally {
            inFlight.release();
        }
    }

    /** The encoded reply frame, or null when the reply was already written (reads, descriptor grants). */
    private ByteBuffer handle(Frame frame) throws IOException {
        int id = frame.requestId();
        try {
            Request request = WireCodec.decodeRequest(frame);
            if (request instanceof Request.Hello hello) {
                return WireCodec.encode(id, welcome(hello));
            }
            if (!handshakeDone) {
                return WireCodec.encode(id, new Reply.Error(ErrorCode.HANDSHAKE_REQUIRED, "send a hello before any other request"));
            }
            if (request instanceof Request.ReadPhysical read) {
                readPhysical(id, read);
                return null;
            }
            Reply reply = execute(request, id);
            return reply == null ? null : WireCodec.encode(id, reply);
        } catch (ProtocolException e) {
            return WireCodec.encode(id, new Reply.Error(e.code(), e.getMessage()));
        } catch (RuntimeException | IOException e) {
            long incident = INCIDENTS.incrementAndGet();
            LOG.log(Level.ERROR, "request type 0x" + Integer.toHexString(frame.type()) + " failed (incident " + incident + ")", e);
            return WireCodec.encode(id, new Reply.Error(ErrorCode.INTERNAL, "internal error (incident " + incident + " in the host log)"));
        }
    }

    private Reply welcome(Request.Hello hello) {
        if (hello.minVersion() > WireCodec.VERSION || hello.maxVersion() < WireCodec.VERSION) {
            return new Reply.Error(ErrorCode.HANDSHAKE_REQUIRED, "no common protocol version: server speaks "
                    + WireCodec.VERSION + ", client " + hello.minVersion() + ".." + hello.maxVersion());
        }
        handshakeDone = true;
        return new Reply.Welcome(WireCodec.VERSION, server.vmId(), server.vcpus().vcpuCount(),
                server.ram().memoryMap(), server.policy().capabilities());
    }

    private Reply execute(Request request, int requestId) throws IOException {
        return switch (request) {
            case Request.Hello h -> throw new IllegalStateException("handled before");
            case Request.ReadPhysical read -> throw new IllegalStateException("handled before");
            case Request.WritePhysical write -> {
                require(Capability.WRITE_PHYSICAL, "memory writes need the write role");
                long offset = checkedOffset(write.address(), write.data().length);
                server.ram().copyIn(write.data(), offset);
                yield new Reply.Ok();
            }
            case Request.GetRegisters get -> {
                require(Capability.REGISTERS, "register access is not allowed");
                if (get.vcpu() < 0 || get.vcpu() >= server.vcpus().vcpuCount()) {
                    throw new ProtocolException(ErrorCode.OUT_OF_RANGE, "no vCPU " + get.vcpu() + " (the VM has "
                            + server.vcpus().vcpuCount() + ")");
                }
                Map<Register, Long> values = new EnumMap<>(server.vcpus().registers(get.vcpu()));
                yield new Reply.Registers(get.vcpu(), values);
            }
            case Request.Pause p -> {
                require(Capability.PAUSE_RESUME, "pausing needs the trace role");
                server.pauses().pause(this);
                yield new Reply.Ok();
            }
            case Request.Resume r -> {
                require(Capability.PAUSE_RESUME, "resuming needs the trace role");
                server.pauses().release(this);
                yield new Reply.Ok();
            }
            case Request.GrantMemoryFd g -> {
                require(Capability.MEMORY_FD, "memory descriptors are not granted on this socket");
                sendWithDescriptor(requestId, new Reply.MemoryFd(server.ram().backingSize()),
                        server.ram().readOnlyDescriptor());
                yield null;
            }
            case Request.SubscribeVmEvents s -> {
                require(Capability.VM_EVENTS, "VM events are not available");
                subscribed = true;
                yield new Reply.Ok();
            }
            case Request.SetBreakpoint set -> {
                require(Capability.BREAKPOINTS, "breakpoints need the trace role");
                yield new Reply.BreakpointSet(debug().setBreakpoint(this, set.address(), set.pageTableRoot()));
            }
            case Request.ClearBreakpoint clear -> {
                require(Capability.BREAKPOINTS, "breakpoints need the trace role");
                debug().clearBreakpoint(this, clear.breakpointId());
                yield new Reply.Ok();
            }
            case Request.SingleStep step -> {
                require(Capability.BREAKPOINTS, "stepping needs the trace role");
                if (step.vcpu() < 0 || step.vcpu() >= server.vcpus().vcpuCount()) {
                    throw new ProtocolException(ErrorCode.OUT_OF_RANGE, "no vCPU " + step.vcpu());
                }
                yield new Reply.Registers(step.vcpu(), debug().singleStep(this, step.vcpu()));
            }
            case Request.ResolveEvent resolve -> {
                require(Capability.BREAKPOINTS, "breakpoints need the trace role");
                if (!resolve.registers().isEmpty()) {
                    require(Capability.WRITE_REGISTERS, "changing registers needs the write role");
                }
                debug().resolve(this, resolve.eventId(), resolve.action(), resolve.registers());
                yield new Reply.Ok();
            }
        };
    }

    /**
     * Copies the ranges straight into the reply frame. The bytes come out of the server's shared read budget, so
     * pipelined 16 MiB reads from any number of clients cannot exhaust the supervisor's heap.
     */
    private void readPhysical(int requestId, Request.ReadPhysical read) throws IOException {
        require(Capability.READ_PHYSICAL, "memory reads are not allowed");
        long[] offsets = new long[read.ranges().size()];
        for (int i = 0; i < offsets.length; i++) {
            Request.PhysicalRange range = read.ranges().get(i);
            offsets[i] = checkedOffset(range.address(), range.length());
        }
        int total = (int) read.totalLength();
        server.readBudget().acquireUninterruptibly(total);
        try {
            ByteBuffer frame = WireCodec.dataFrame(requestId, total);
            byte[] array = frame.array();
            int position = frame.position();
            for (int i = 0; i < offsets.length; i++) {
                int length = read.ranges().get(i).length();
                server.ram().copyOut(offsets[i], array, position, length);
                position += length;
            }
            write(frame.position(position).flip(), null);
        } finally {
            server.readBudget().release(total);
        }
    }

    private long checkedOffset(long address, long length) throws ProtocolException {
        MemoryMap map = server.ram().memoryMap();
        long offset = map.backingOffset(address, length);
        if (offset < 0) {
            throw new ProtocolException(ErrorCode.OUT_OF_RANGE, "guest-physical range 0x%x+0x%x is not inside guest RAM"
                    .formatted(address, length));
        }
        return offset;
    }

    private void require(Capability capability, String refusal) throws ProtocolException {
        if (!server.policy().capabilities().contains(capability)) {
            server.refused(refusal);
            throw new ProtocolException(ErrorCode.PERMISSION_DENIED, refusal);
        }
    }

    private DebugBridge debug() throws ProtocolException {
        DebugBridge debug = server.debug();
        if (debug == null) {
            throw new ProtocolException(ErrorCode.VM_UNAVAILABLE, "this VM offers no breakpoints");
        }
        return debug;
    }

    /** Debug events go to the client whose breakpoint or step it is, whatever it subscribed to. */
    void deliverDebug(Event event) {
        try {
            write(WireCodec.encode(event), null);
        } catch (IOException e) {
            close();
        }
    }

    void deliver(Event event) {
        if (subscribed) {
            try {
                write(WireCodec.encode(event), null);
            } catch (IOException e) {
                close();
            }
        }
    }

    private void sendWithDescriptor(int requestId, Reply reply, FileDescriptor fd) throws IOException {
        write(WireCodec.encode(requestId, reply), fd);
    }

    /** Frames are written whole under one lock, so concurrent replies never interleave. */
    private void write(ByteBuffer frame, FileDescriptor fd) throws IOException {
        synchronized (writeLock) {
            if (fd != null) {
                socket.setOutboundFileDescriptors(fd);
            }
            try {
                out.write(frame.array(), frame.arrayOffset(), frame.limit());
                out.flush();
            } finally {
                if (fd != null) {
                    socket.setOutboundFileDescriptors((FileDescriptor[]) null);
                }
            }
        }
    }

    private void releaseHeldState() {
        if (server.debug() != null) {
            server.debug().clientGone(this);
        }
        try {
            server.pauses().release(this);
        } catch (IOException e) {
            LOG.log(Level.ERROR, "could not resume the VM after a client left", e);
        }
    }

    void close() {
        IntrospectionServer.closeQuietly(socket);
    }
}
