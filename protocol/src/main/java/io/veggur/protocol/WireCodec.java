package io.veggur.protocol;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Encodes and decodes protocol messages (see docs/protocol.md). Decoding treats every payload as hostile: counts and
 * lengths are checked against limits before anything is allocated, and a payload must be consumed exactly.
 */
public final class WireCodec {
    public static final int VERSION = 1;
    public static final int MAX_READ_BYTES = 16 << 20;
    public static final int MAX_READ_RANGES = 16384;
    public static final int MAX_WRITE_BYTES = 1 << 20;
    public static final int MAX_STRING_BYTES = 4096;

    public static final int HELLO = 0x01, READ_PHYSICAL = 0x02, WRITE_PHYSICAL = 0x03, GET_REGISTERS = 0x04,
            PAUSE = 0x05, RESUME = 0x06, GRANT_MEMORY_FD = 0x07, SUBSCRIBE_VM_EVENTS = 0x08, SET_BREAKPOINT = 0x09,
            CLEAR_BREAKPOINT = 0x0A, RESOLVE_EVENT = 0x0B, SINGLE_STEP = 0x0C;
    static final int WELCOME = 0x81, DATA = 0x82, OK = 0x83, REGISTERS = 0x84, MEMORY_FD = 0x85, BREAKPOINT_SET = 0x86,
            ERROR = 0xFF;
    static final int VM_STATE_CHANGED = 0x101, DEBUG = 0x102, EVENT_EXPIRED = 0x103, EVENTS_DROPPED = 0x104;
    /** At most this many register values in one message (there are fewer registers than that). */
    static final int MAX_REGISTER_VALUES = 1024;

    private WireCodec() {}

    public static ByteBuffer encode(int requestId, Request request) {
        return switch (request) {
            case Request.Hello h -> Frame.allocate(requestId, HELLO, 4)
                    .putShort((short) h.minVersion()).putShort((short) h.maxVersion()).flip();
            case Request.ReadPhysical r -> {
                ByteBuffer b = Frame.allocate(requestId, READ_PHYSICAL, 4 + 12 * r.ranges().size());
                b.putInt(r.ranges().size());
                for (Request.PhysicalRange range : r.ranges()) {
                    b.putLong(range.address()).putInt(range.length());
                }
                yield b.flip();
            }
            case Request.WritePhysical w -> Frame.allocate(requestId, WRITE_PHYSICAL, 12 + w.data().length)
                    .putLong(w.address()).putInt(w.data().length).put(w.data()).flip();
            case Request.GetRegisters g -> Frame.allocate(requestId, GET_REGISTERS, 4).putInt(g.vcpu()).flip();
            case Request.Pause p -> Frame.allocate(requestId, PAUSE, 0).flip();
            case Request.Resume r -> Frame.allocate(requestId, RESUME, 0).flip();
            case Request.GrantMemoryFd g -> Frame.allocate(requestId, GRANT_MEMORY_FD, 0).flip();
            case Request.SubscribeVmEvents s -> Frame.allocate(requestId, SUBSCRIBE_VM_EVENTS, 0).flip();
            case Request.SetBreakpoint b -> Frame.allocate(requestId, SET_BREAKPOINT, 16)
                    .putLong(b.address()).putLong(b.pageTableRoot()).flip();
            case Request.ClearBreakpoint c -> Frame.allocate(requestId, CLEAR_BREAKPOINT, 4).putInt(c.breakpointId()).flip();
            case Request.SingleStep step -> Frame.allocate(requestId, SINGLE_STEP, 4).putInt(step.vcpu()).flip();
            case Request.ResolveEvent r -> {
                ByteBuffer b = Frame.allocate(requestId, RESOLVE_EVENT, 8 + 2 + 4 + 10 * r.registers().size());
                b.putLong(r.eventId()).putShort((short) r.action().ordinal());
                yield putRegisters(b, r.registers()).flip();
            }
        };
    }

    public static ByteBuffer encode(int requestId, Reply reply) {
        return switch (reply) {
            case Reply.Welcome w -> {
                byte[] vmId = utf8(w.vmId());
                List<MemoryRegion> regions = w.memoryMap().regions();
                ByteBuffer b = Frame.allocate(requestId, WELCOME, 2 + 2 + vmId.length + 4 + 4 + 24 * regions.size() + 8);
                b.putShort((short) w.version()).putShort((short) vmId.length).put(vmId).putInt(w.vcpus());
                b.putInt(regions.size());
                for (MemoryRegion region : regions) {
                    b.putLong(region.guestPhysical()).putLong(region.size()).putLong(region.backingOffset());
                }
                yield b.putLong(Capability.toBits(w.capabilities())).flip();
            }
            case Reply.Data d -> Frame.allocate(requestId, DATA, d.bytes().length).put(d.bytes()).flip();
            case Reply.Ok o -> Frame.allocate(requestId, OK, 0).flip();
            case Reply.Registers r -> {
                ByteBuffer b = Frame.allocate(requestId, REGISTERS, 8 + 10 * r.values().size());
                yield putRegisters(b.putInt(r.vcpu()), r.values()).flip();
            }
            case Reply.BreakpointSet b -> Frame.allocate(requestId, BREAKPOINT_SET, 4).putInt(b.breakpointId()).flip();
            case Reply.MemoryFd m -> Frame.allocate(requestId, MEMORY_FD, 8).putLong(m.size()).flip();
            case Reply.Error e -> {
                byte[] message = utf8(e.message());
                yield Frame.allocate(requestId, ERROR, 4 + message.length)
                        .putShort((short) e.code().wire()).putShort((short) message.length).put(message).flip();
            }
        };
    }

    public static ByteBuffer encode(Event event) {
        return switch (event) {
            case Event.VmStateChanged s -> {
                byte[] reason = utf8(s.reason());
                yield Frame.allocate(0, VM_STATE_CHANGED, 4 + reason.length)
                        .putShort((short) s.state().ordinal()).putShort((short) reason.length).put(reason).flip();
            }
            case Event.Debug d -> {
                ByteBuffer b = Frame.allocate(0, DEBUG, 8 + 2 + 4 + 4 + 4 + 10 * d.registers().size());
                b.putLong(d.eventId()).putShort((short) d.kind().ordinal()).putInt(d.breakpointId()).putInt(d.vcpu());
                yield putRegisters(b, d.registers()).flip();
            }
            case Event.EventExpired e -> Frame.allocate(0, EVENT_EXPIRED, 8).putLong(e.eventId()).flip();
            case Event.EventsDropped e -> Frame.allocate(0, EVENTS_DROPPED, 8).putLong(e.count()).flip();
        };
    }

    /** A {@code DATA} frame with room for {@code length} bytes, positioned where they go. */
    public static ByteBuffer dataFrame(int requestId, int length) {
        return Frame.allocate(requestId, DATA, length);
    }

    public static Request decodeRequest(Frame frame) throws ProtocolException {
        ByteBuffer b = frame.payload();
        try {
            Request request = switch (frame.type()) {
                case HELLO -> new Request.Hello(Short.toUnsignedInt(b.getShort()), Short.toUnsignedInt(b.getShort()));
                case READ_PHYSICAL -> decodeRead(b);
                case WRITE_PHYSICAL -> {
                    long address = b.getLong();
                    int length = b.getInt();
                    if (length < 0 || length > MAX_WRITE_BYTES) {
                        throw new ProtocolException(ErrorCode.TOO_LARGE, "write of " + Integer.toUnsignedString(length)
                                + " bytes exceeds " + MAX_WRITE_BYTES);
                    }
                    byte[] data = new byte[length];
                    b.get(data);
                    yield new Request.WritePhysical(address, data);
                }
                case GET_REGISTERS -> new Request.GetRegisters(b.getInt());
                case PAUSE -> new Request.Pause();
                case RESUME -> new Request.Resume();
                case GRANT_MEMORY_FD -> new Request.GrantMemoryFd();
                case SUBSCRIBE_VM_EVENTS -> new Request.SubscribeVmEvents();
                case SET_BREAKPOINT -> new Request.SetBreakpoint(b.getLong(), b.getLong());
                case CLEAR_BREAKPOINT -> new Request.ClearBreakpoint(b.getInt());
                case SINGLE_STEP -> new Request.SingleStep(b.getInt());
                case RESOLVE_EVENT -> {
                    long eventId = b.getLong();
                    int action = Short.toUnsignedInt(b.getShort());
                    Request.Action[] actions = Request.Action.values();
                    if (action >= actions.length) {
                        throw new ProtocolException(ErrorCode.MALFORMED, "unknown event action " + action);
                    }
                    yield new Request.ResolveEvent(eventId, actions[action], getRegisters(b));
                }
                default -> throw new ProtocolException(ErrorCode.UNKNOWN_REQUEST, "unknown request type 0x" + Integer.toHexString(frame.type()));
            };
            requireConsumed(b);
            return request;
        } catch (BufferUnderflowException e) {
            throw new ProtocolException(ErrorCode.MALFORMED, "truncated payload for request type 0x" + Integer.toHexString(frame.type()));
        }
    }

    private static Request.ReadPhysical decodeRead(ByteBuffer b) throws ProtocolException {
        int count = b.getInt();
        if (count < 0 || count > MAX_READ_RANGES) {
            throw new ProtocolException(ErrorCode.TOO_LARGE, "read of " + Integer.toUnsignedString(count)
                    + " ranges exceeds " + MAX_READ_RANGES);
        }
        if (b.remaining() != 12L * count) {
            throw new ProtocolException(ErrorCode.MALFORMED, "read payload does not hold " + count + " ranges");
        }
        List<Request.PhysicalRange> ranges = new ArrayList<>(count);
        long total = 0;
        for (int i = 0; i < count; i++) {
            long address = b.getLong();
            int length = b.getInt();
            total += Integer.toUnsignedLong(length);
            if (length < 0 || total > MAX_READ_BYTES) {
                throw new ProtocolException(ErrorCode.TOO_LARGE, "read exceeds " + MAX_READ_BYTES + " bytes in one request");
            }
            ranges.add(new Request.PhysicalRange(address, length));
        }
        return new Request.ReadPhysical(ranges);
    }

    /** Decodes a frame from the server: a {@link Reply} or, for request id 0, an {@link Event}. */
    public static Object decodeServerMessage(Frame frame) throws ProtocolException {
        ByteBuffer b = frame.payload();
        try {
            Object message = switch (frame.type()) {
                case WELCOME -> {
                    int version = Short.toUnsignedInt(b.getShort());
                    String vmId = string(b);
                    int vcpus = b.getInt();
                    int regionCount = b.getInt();
                    if (regionCount <= 0 || regionCount > MemoryMap.MAX_REGIONS) {
                        throw new ProtocolException(ErrorCode.MALFORMED, "welcome announces " + regionCount + " memory regions");
                    }
                    List<MemoryRegion> regions = new ArrayList<>(regionCount);
                    for (int i = 0; i < regionCount; i++) {
                        regions.add(new MemoryRegion(b.getLong(), b.getLong(), b.getLong()));
                    }
                    yield new Reply.Welcome(version, vmId, vcpus, new MemoryMap(regions), Capability.fromBits(b.getLong()));
                }
                case DATA -> {
                    byte[] bytes = new byte[b.remaining()];
                    b.get(bytes);
                    yield new Reply.Data(bytes);
                }
                case OK -> new Reply.Ok();
                case REGISTERS -> {
                    int vcpu = b.getInt();
                    yield new Reply.Registers(vcpu, getRegisters(b));
                }
                case BREAKPOINT_SET -> new Reply.BreakpointSet(b.getInt());
                case DEBUG -> {
                    long eventId = b.getLong();
                    int kind = Short.toUnsignedInt(b.getShort());
                    Event.DebugKind[] kinds = Event.DebugKind.values();
                    if (kind >= kinds.length) {
                        throw new ProtocolException(ErrorCode.MALFORMED, "unknown debug event kind " + kind);
                    }
                    int breakpointId = b.getInt();
                    int vcpu = b.getInt();
                    yield new Event.Debug(eventId, kinds[kind], breakpointId, vcpu, getRegisters(b));
                }
                case EVENT_EXPIRED -> new Event.EventExpired(b.getLong());
                case EVENTS_DROPPED -> new Event.EventsDropped(b.getLong());
                case MEMORY_FD -> new Reply.MemoryFd(b.getLong());
                case ERROR -> new Reply.Error(ErrorCode.fromWire(Short.toUnsignedInt(b.getShort())), string(b));
                case VM_STATE_CHANGED -> {
                    int state = Short.toUnsignedInt(b.getShort());
                    Event.VmState[] states = Event.VmState.values();
                    if (state >= states.length) {
                        throw new ProtocolException(ErrorCode.MALFORMED, "unknown VM state " + state);
                    }
                    yield new Event.VmStateChanged(states[state], string(b));
                }
                default -> throw new ProtocolException(ErrorCode.UNKNOWN_REQUEST, "unknown message type 0x" + Integer.toHexString(frame.type()));
            };
            requireConsumed(b);
            return message;
        } catch (BufferUnderflowException | IllegalArgumentException e) {
            throw new ProtocolException(ErrorCode.MALFORMED, "malformed message type 0x" + Integer.toHexString(frame.type())
                    + ": " + e.getMessage());
        }
    }

    /** A count, then (register ordinal, value) pairs. */
    private static ByteBuffer putRegisters(ByteBuffer b, Map<Register, Long> values) {
        b.putInt(values.size());
        values.forEach((register, value) -> b.putShort((short) register.ordinal()).putLong(value));
        return b;
    }

    /** The rest of the payload as registers; unknown register ids (from a newer peer) are skipped. */
    private static Map<Register, Long> getRegisters(ByteBuffer b) throws ProtocolException {
        int count = b.getInt();
        if (count < 0 || count > MAX_REGISTER_VALUES || b.remaining() != 10L * count) {
            throw new ProtocolException(ErrorCode.MALFORMED, "registers payload does not hold " + count + " values");
        }
        Map<Register, Long> values = new EnumMap<>(Register.class);
        Register[] known = Register.values();
        for (int i = 0; i < count; i++) {
            int id = Short.toUnsignedInt(b.getShort());
            long value = b.getLong();
            if (id < known.length) {
                values.put(known[id], value);
            }
        }
        return values;
    }

    private static void requireConsumed(ByteBuffer b) throws ProtocolException {
        if (b.hasRemaining()) {
            throw new ProtocolException(ErrorCode.MALFORMED, b.remaining() + " unexpected trailing bytes");
        }
    }

    private static byte[] utf8(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > MAX_STRING_BYTES) {
            throw new IllegalArgumentException("string longer than " + MAX_STRING_BYTES + " bytes");
        }
        return bytes;
    }

    private static String string(ByteBuffer b) throws ProtocolException {
        int length = Short.toUnsignedInt(b.getShort());
        if (length > MAX_STRING_BYTES) {
            throw new ProtocolException(ErrorCode.MALFORMED, "string of " + length + " bytes exceeds " + MAX_STRING_BYTES);
        }
        byte[] bytes = new byte[length];
        b.get(bytes);
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new ProtocolException(ErrorCode.MALFORMED, "string is not UTF-8");
        }
    }
}
