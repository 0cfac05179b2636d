package io.veggur.protocol.link;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.EOFException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.LongStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Seeded random checks of the link reader. Each case prints its seed; rerun one with {@code -Dveggur.seed=N}.
 * Invariants: valid streams come back frame for frame however they are cut; damaged streams give well-formed frames,
 * {@link LinkFormatException} or the end of the stream, nothing else, and a resynchronising reader always finds a
 * frame placed after the damage.
 */
class LinkReaderFuzzTest {
    private static final int CASES = 100;

    static LongStream seeds() {
        long base = Long.getLong("veggur.seed", System.nanoTime());
        return Long.getLong("veggur.seed") != null ? LongStream.of(base) : LongStream.range(0, CASES).map(i -> base + i);
    }

    @ParameterizedTest
    @MethodSource("seeds")
    void validStreams_readBackFrameForFrame_howeverTheyAreCut(long seed) throws IOException {
        System.out.println("validStreams seed=" + seed);
        Random random = new Random(seed);
        LinkType.Sender from = random.nextBoolean() ? LinkType.Sender.GUEST : LinkType.Sender.HOST;
        List<LinkFrame> frames = new ArrayList<>();
        for (int i = random.nextInt(20); i > 0; i--) {
            frames.add(randomFrame(random, from));
        }

        LinkReader reader = new LinkReader(new ChunkedChannel(LinkFrameTest.concat(frames), random,
                1 + random.nextInt(LinkFrame.MAX_FRAME * 2)), from);
        List<LinkFrame> read = new ArrayList<>();
        for (LinkFrame frame = reader.next(); frame != null; frame = reader.next()) {
            read.add(frame);
        }

        assertThat(read).as("seed %d", seed).containsExactlyElementsOf(frames);
    }

    @ParameterizedTest
    @MethodSource("seeds")
    void damagedGuestStreams_neverBreakTheHostReader_andTheNextOpenIsFound(long seed) throws IOException {
        System.out.println("damagedGuestStreams seed=" + seed);
        Random random = new Random(seed);
        List<LinkFrame> frames = new ArrayList<>();
        for (int i = 1 + random.nextInt(10); i > 0; i--) {
            frames.add(randomFrame(random, LinkType.Sender.GUEST));
        }
        byte[] damaged = damage(LinkFrameTest.concat(frames), random);
        byte[] nonce = new byte[LinkFrame.NONCE_BYTES];
        random.nextBytes(nonce);
        // A byte that cannot start a frame, then the OPEN: whatever the damage left unfinished, the OPEN is reached.
        byte[] stream = LinkFrameTest.concat(damaged, LinkFrameTest.concat(new byte[LinkFrame.MAX_FRAME],
                LinkFrameTest.concat(List.of(LinkFrame.open(nonce)))));

        LinkReader reader = new LinkReader(new ChunkedChannel(stream, random, 1 + random.nextInt(4096)),
                LinkType.Sender.GUEST);
        LinkFrame last = null;
        boolean scanning = false;
        for (int steps = 0; steps < stream.length + 10; steps++) {
            try {
                LinkFrame frame = scanning ? reader.skipToOpen() : reader.next();
                if (frame == null) {
                    break;
                }
                scanning = false;
                last = frame;
            } catch (LinkFormatException e) {
                scanning = true;
            } catch (EOFException e) {
                break;
            }
        }

        assertThat(last).as("seed %d", seed).isEqualTo(LinkFrame.open(nonce));
    }

    @ParameterizedTest
    @MethodSource("seeds")
    void staleHostBytes_neverHideTheAnswerToThisNonce(long seed) throws IOException {
        System.out.println("staleHostBytes seed=" + seed);
        Random random = new Random(seed);
        List<LinkFrame> stale = new ArrayList<>();
        for (int i = random.nextInt(10); i > 0; i--) {
            stale.add(randomFrame(random, LinkType.Sender.HOST));
        }
        byte[] staleBytes = damage(LinkFrameTest.concat(stale), random);
        byte[] nonce = new byte[LinkFrame.NONCE_BYTES];
        random.nextBytes(nonce);
        LinkFrame after = randomFrame(random, LinkType.Sender.HOST);
        byte[] stream = LinkFrameTest.concat(staleBytes, LinkFrameTest.concat(List.of(LinkFrame.opened(nonce), after)));

        LinkReader reader = new LinkReader(new ChunkedChannel(stream, random, 1 + random.nextInt(4096)),
                LinkType.Sender.HOST);

        assertThat(reader.skipToAnswer(nonce)).as("seed %d", seed).isEqualTo(LinkFrame.opened(nonce));
        assertThat(reader.next()).as("seed %d", seed).isEqualTo(after);
    }

    private static LinkFrame randomFrame(Random random, LinkType.Sender from) {
        List<LinkType> types = new ArrayList<>();
        for (LinkType type : LinkType.values()) {
            if (type.sentBy(from)) {
                types.add(type);
            }
        }
        LinkType type = types.get(random.nextInt(types.size()));
        int length = type.minPayload() + random.nextInt(type.maxPayload() - type.minPayload() + 1);
        if (type == LinkType.DATA && random.nextInt(4) != 0) {
            length = 1 + random.nextInt(64);
        }
        byte[] payload = new byte[length];
        random.nextBytes(payload);
        return new LinkFrame(type, payload);
    }

    /** Flips, inserts or deletes a few bytes, or cuts the stream short. */
    private static byte[] damage(byte[] bytes, Random random) {
        List<Byte> out = new ArrayList<>(bytes.length + 16);
        for (byte b : bytes) {
            out.add(b);
        }
        for (int edits = 1 + random.nextInt(5); edits > 0; edits--) {
            int at = random.nextInt(out.size() + 1);
            switch (random.nextInt(4)) {
                case 0 -> {
                    if (at < out.size()) {
                        out.set(at, (byte) random.nextInt(256));
                    }
                }
                case 1 -> out.add(at, (byte) random.nextInt(256));
                case 2 -> {
                    if (at < out.size()) {
                        out.remove(at);
                    }
                }
                default -> out.subList(at, out.size()).clear();
            }
        }
        byte[] result = new byte[out.size()];
        for (int i = 0; i < result.length; i++) {
            result[i] = out.get(i);
        }
        return result;
    }
}
