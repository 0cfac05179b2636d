package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.veggur.protocol.ErrorCode;
import io.veggur.protocol.Frame;
import io.veggur.protocol.Reply;
import io.veggur.protocol.Request;
import io.veggur.vmi.IntrospectionSession;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Throws thousands of malformed frames at a live introspection server. The server must answer what it can with typed
 * errors, drop what it cannot parse, keep serving well-behaved clients, and the guest must keep running. The run is
 * seeded; the seed is printed so a failure can be replayed.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ProtocolFuzzIT {
    private TestVm vm;

    @BeforeAll
    void boot() throws Exception {
        vm = TestVm.boot("fuzz-it", spec -> spec);
    }

    @AfterAll
    void stop() throws Exception {
        if (vm != null) {
            vm.close();
        }
    }

    @Test
    void malformedFrames_getTypedErrors_andTheServerAndGuestCarryOn() throws Exception {
        long seed = Long.getLong("fuzz.seed", System.nanoTime());
        System.out.println("protocol fuzz seed=" + seed + " (replay with -Dfuzz.seed=" + seed + ")");
        Random random = new Random(seed);
        int frames = 0;
        for (int round = 0; round < 300; round++) {
            try (RawClient raw = new RawClient(vm.socket())) {
                switch (round % 6) {
                    case 0 -> {
                        byte[] noise = new byte[1 + random.nextInt(300)];
                        random.nextBytes(noise);
                        raw.out.write(noise);
                        frames++;
                    }
                    case 1 -> {
                        // Length fields the server cannot honour: a typed error, then the connection is dropped.
                        int length = random.nextBoolean() ? -1 - random.nextInt(1000) : Frame.MAX_REQUEST_PAYLOAD + 9 + random.nextInt(1 << 24);
                        raw.out.write(ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(length).putInt(7).putInt(0).array());
                        assertThat(raw.errorCode()).isEqualTo(ErrorCode.MALFORMED);
                        frames++;
                    }
                    case 2 -> {
                        // Before the handshake only a hello is accepted.
                        raw.send(1, new Request.ReadPhysical(List.of(new Request.PhysicalRange(0, 8))));
                        assertThat(raw.errorCode()).isEqualTo(ErrorCode.HANDSHAKE_REQUIRED);
                        frames++;
                    }
                    default -> frames += structuredAbuse(raw, random);
                }
            }
        }
        System.out.println("sent " + frames + " malformed frames");
        assertThat(frames).isGreaterThan(2000);
        assertServerAndGuestHealthy();
    }

    /** A handshake, then many bad requests on one connection; each gets its typed error and the connection lives. */
    private int structuredAbuse(RawClient raw, Random random) throws IOException {
        raw.send(1, new Request.Hello(1, 1));
        assertThat(raw.reply()).isInstanceOf(Reply.Welcome.class);
        long ram = 256L << 20;
        int sent = 0;
        for (int i = 0; i < 20; i++) {
            int id = 2 + i;
            switch (random.nextInt(7)) {
                case 0 -> {
                    raw.frame(id, 0x40 + random.nextInt(0x3f), new byte[random.nextInt(64)]);
                    assertThat(raw.errorCode()).isEqualTo(ErrorCode.UNKNOWN_REQUEST);
                }
                case 1 -> {
                    long address = random.nextBoolean() ? ram + random.nextInt(1 << 30) : -1L - random.nextInt(4096);
                    raw.send(id, new Request.ReadPhysical(List.of(new Request.PhysicalRange(address, 1 + random.nextInt(4096)))));
                    assertThat(raw.errorCode()).isEqualTo(ErrorCode.OUT_OF_RANGE);
                }
                case 2 -> {
                    // Count claims more ranges than the payload holds.
                    raw.frame(id, 0x02, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(1000).putLong(0).putInt(8).array());
                    assertThat(raw.errorCode()).isEqualTo(ErrorCode.MALFORMED);
                }
                case 3 -> {
                    raw.frame(id, 0x02, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(Integer.MAX_VALUE).array());
                    assertThat(raw.errorCode()).isEqualTo(ErrorCode.TOO_LARGE);
                }
                case 4 -> {
                    List<Request.PhysicalRange> ranges = new ArrayList<>();
                    for (int r = 0; r < 5; r++) {
                        ranges.add(new Request.PhysicalRange(0, 8 << 20));
                    }
                    raw.send(id, new Request.ReadPhysical(ranges));
                    assertThat(raw.errorCode()).isEqualTo(ErrorCode.TOO_LARGE);
                }
                case 5 -> {
                    raw.frame(id, 0x03, ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putLong(0).putInt(-5).array());
                    assertThat(raw.errorCode()).isEqualTo(ErrorCode.TOO_LARGE);
                }
                default -> {
                    raw.send(id, new Request.GetRegisters(random.nextBoolean() ? 1 + random.nextInt(100) : -1 - random.nextInt(100)));
                    assertThat(raw.errorCode()).isEqualTo(ErrorCode.OUT_OF_RANGE);
                }
            }
            sent++;
        }
        // Truncated frame, then hang up mid-frame.
        raw.out.write(ByteBuffer.allocate(10).order(ByteOrder.LITTLE_ENDIAN).putInt(100).putInt(99).putShort((short) 2).array());
        return sent + 1;
    }

    private void assertServerAndGuestHealthy() throws Exception {
        try (IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            assertThat(session.remotePhysicalMemory().read(vm.marker.markerAddress(), 4096)).isEqualTo(vm.marker.expectedMarkerPage());
            IntrospectionSocketIT.awaitCounterMoves(session.physicalMemory(), vm.marker.counterAddress());
        }
        List<String> modules = vm.console.query("veggur-truth modules", "VEGGUR-MOD", "after-fuzz", Duration.ofSeconds(60));
        assertThat(modules).isNotEmpty().allMatch(line -> line.startsWith("VEGGUR-MOD "));
    }
}
