package io.veggur.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class WireCodecTest {
    @Test
    void requests_roundTrip_throughFrames() throws IOException {
        List<Request> requests = List.of(new Request.Hello(1, 3),
                new Request.ReadPhysical(List.of(new Request.PhysicalRange(0x1000, 8), new Request.PhysicalRange(1L << 32, 4096))),
                new Request.GetRegisters(1), new Request.Pause(), new Request.Resume(), new Request.GrantMemoryFd(),
                new Request.SubscribeVmEvents());
        for (Request request : requests) {
            Frame frame = Frame.read(stream(WireCodec.encode(42, request)), Frame.MAX_REQUEST_PAYLOAD);
            assertThat(frame.requestId()).isEqualTo(42);
            assertThat(WireCodec.decodeRequest(frame)).isEqualTo(request);
        }
        Request.WritePhysical write = (Request.WritePhysical) WireCodec.decodeRequest(
                Frame.read(stream(WireCodec.encode(7, new Request.WritePhysical(0x2000, new byte[] {1, 2, 3})))));
        assertThat(write.address()).isEqualTo(0x2000);
        assertThat(write.data()).containsExactly(1, 2, 3);
    }

    @Test
    void replies_roundTrip_throughFrames() throws IOException {
        MemoryMap map = new MemoryMap(List.of(new MemoryRegion(0, 2L << 30, 0), new MemoryRegion(4L << 30, 1L << 30, 2L << 30)));
        Reply.Welcome welcome = new Reply.Welcome(1, "vm-1", 2, map, EnumSet.of(Capability.READ_PHYSICAL, Capability.MEMORY_FD));
        assertThat(decode(WireCodec.encode(1, welcome))).isEqualTo(welcome);
        Reply.Registers registers = new Reply.Registers(1, Map.of(Register.CR3, 0x1000L, Register.RIP, -1L));
        assertThat(decode(WireCodec.encode(1, registers))).isEqualTo(registers);
        assertThat(decode(WireCodec.encode(1, new Reply.Error(ErrorCode.OUT_OF_RANGE, "no")))).isEqualTo(new Reply.Error(ErrorCode.OUT_OF_RANGE, "no"));
        Event event = new Event.VmStateChanged(Event.VmState.PAUSED, "client-pause");
        assertThat(decode(WireCodec.encode(event))).isEqualTo(event);
    }

    @Test
    void decodeRequest_trailingBytes_isMalformed() {
        ByteBuffer frame = Frame.allocate(1, WireCodec.PAUSE, 3).put(new byte[3]).flip();
        assertThatThrownBy(() -> WireCodec.decodeRequest(Frame.read(stream(frame))))
                .isInstanceOfSatisfying(ProtocolException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.MALFORMED));
    }

    @Test
    void frameRead_lengthBeyondLimit_isMalformedWithoutAllocating() {
        byte[] header = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(Integer.MAX_VALUE).putInt(1).putInt(0).array();
        assertThatThrownBy(() -> Frame.read(new ByteArrayInputStream(header), Frame.MAX_REQUEST_PAYLOAD))
                .isInstanceOfSatisfying(ProtocolException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.MALFORMED));
    }

    @Test
    void decode_randomPayloads_onlyEverThrowProtocolException() throws IOException {
        long seed = System.nanoTime();
        System.out.println("decode_randomPayloads seed=" + seed);
        Random random = new Random(seed);
        for (int i = 0; i < 20_000; i++) {
            byte[] payload = new byte[random.nextInt(64)];
            random.nextBytes(payload);
            int type = random.nextBoolean() ? random.nextInt(10) : 0x80 + random.nextInt(0x90);
            Frame frame = Frame.read(stream(Frame.allocate(1 + random.nextInt(5), type, payload.length).put(payload).flip()));
            try {
                WireCodec.decodeRequest(frame);
            } catch (ProtocolException expected) {
                // typed refusal is the only acceptable failure
            }
            frame = Frame.read(stream(Frame.allocate(1, type, payload.length).put(payload).flip()));
            try {
                WireCodec.decodeServerMessage(frame);
            } catch (ProtocolException expected) {
                // same for the client side
            }
        }
    }

    private static Object decode(ByteBuffer frame) throws IOException {
        return WireCodec.decodeServerMessage(Frame.read(stream(frame)));
    }

    private static ByteArrayInputStream stream(ByteBuffer frame) {
        return new ByteArrayInputStream(frame.array(), 0, frame.limit());
    }
}
