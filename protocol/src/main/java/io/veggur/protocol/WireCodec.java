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
            PAUSE = 0x05, RESUME = 0x06, GRANT_MEMORY_FD = 0x07, SUBSCRIBE_VM_EVENTS = 0x08;
    static final int WELCOME = 0x81, DATA = 0x82, OK = 0x83, REGISTERS = 0x84, MEMORY_FD = 0x85, ERROR = 0xFF;
    static final int VM_STATE_CHANGED = 0x101;

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
                b.putInt(r.vcpu()).putInt(r.values().size());
                r.values().forEach((register, value) -> b.putShort((short) register.ordinal()).putLong(value));
                yield b.flip();
            }
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
                    int count = b.getInt();
                    if (count < 0 || count > 1024 || b.remaining() != 10L * count) {
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
                    yield new Reply.Registers(vcpu, values);
                }
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
