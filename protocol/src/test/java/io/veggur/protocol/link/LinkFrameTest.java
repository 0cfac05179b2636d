package io.veggur.protocol.link;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LinkFrameTest {
    private static final byte[] NONCE = nonce(1);

    @Test
    void everyGuestFrame_roundTrips() throws IOException {
        List<LinkFrame> frames = List.of(LinkFrame.open(NONCE), LinkFrame.data(new byte[] {7}, 0, 1),
                LinkFrame.data(new byte[LinkFrame.MAX_DATA], 0, LinkFrame.MAX_DATA), LinkFrame.keepalive(),
                LinkFrame.close());

        assertThat(readAll(concat(frames), LinkType.Sender.GUEST)).containsExactlyElementsOf(frames);
    }

    @Test
    void everyHostFrame_roundTrips() throws IOException {
        List<LinkFrame> frames = List.of(LinkFrame.opened(NONCE), LinkFrame.data(new byte[] {1, 2, 3}, 0, 3),
                LinkFrame.closed(NONCE, "the introspection server closed the connection"), LinkFrame.closed(null, ""));

        List<LinkFrame> read = readAll(concat(frames), LinkType.Sender.HOST);

        assertThat(read).containsExactlyElementsOf(frames);
        assertThat(read.get(2).reason()).isEqualTo("the introspection server closed the connection");
        assertThat(read.get(2).nonce()).isEqualTo(NONCE);
        assertThat(read.get(3).nonce()).isEqualTo(new byte[LinkFrame.NONCE_BYTES]);
    }

    @Test
    void largestFrame_fitsOneVirtioSerialBuffer() {
        ByteBuffer largest = LinkFrame.data(new byte[LinkFrame.MAX_DATA], 0, LinkFrame.MAX_DATA).encode();

        assertThat(largest.remaining()).isEqualTo(LinkFrame.MAX_FRAME).isLessThan(32 * 1024);
    }

    @Test
    void encode_isTheDocumentedLayout() {
        byte[] bytes = LinkFrame.data(new byte[] {(byte) 0xAA, (byte) 0xBB}, 0, 2).encode().array();

        assertThat(bytes).containsExactly('V', 'G', 'L', 1, 0x02, 2, 0, 0xAA, 0xBB);
    }

    @Test
    void closedReason_isCutAtACharacterBoundaryAndKeptOnOneLine() {
        String reason = "line one\nline two " + "é".repeat(300);

        LinkFrame frame = LinkFrame.closed(NONCE, reason);

        assertThat(frame.payload().length - LinkFrame.NONCE_BYTES).isLessThanOrEqualTo(LinkFrame.MAX_REASON);
        assertThat(frame.reason()).startsWith("line one?line two é").doesNotContain("\uFFFD").doesNotContain("\n");
        assertThat(StandardCharsets.UTF_8.encode(frame.reason()).remaining()).isGreaterThan(LinkFrame.MAX_REASON - 2);
    }

    @Test
    void badMagic_isMalformedAndConsumesOneByte() throws IOException {
        byte[] bytes = concat(List.of(LinkFrame.keepalive()));
        bytes[0] = 'X';
        LinkReader reader = reader(concat(bytes, concat(List.of(LinkFrame.open(NONCE)))), LinkType.Sender.GUEST);

        assertThatThrownBy(reader::next).isInstanceOf(LinkFormatException.class).hasMessage("bad magic");
        assertThat(reader.skipToOpen()).isEqualTo(LinkFrame.open(NONCE));
    }

    @ParameterizedTest
    @ValueSource(ints = {0x00, 0x05, 0x7f, 0x80, 0x81, 0x83, 0xff})
    void typeNotSentByTheGuest_isMalformed(int type) {
        byte[] bytes = {'V', 'G', 'L', 1, (byte) type, 0, 0};

        assertThatThrownBy(() -> reader(bytes, LinkType.Sender.GUEST).next())
                .isInstanceOf(LinkFormatException.class).hasMessageContaining("not allowed from the guest");
    }

    @ParameterizedTest
    @ValueSource(ints = {0x01, 0x03, 0x04, 0x00, 0x90})
    void typeNotSentByTheHost_isMalformed(int type) {
        byte[] bytes = {'V', 'G', 'L', 1, (byte) type, 16, 0};

        assertThatThrownBy(() -> reader(bytes, LinkType.Sender.HOST).next())
                .isInstanceOf(LinkFormatException.class).hasMessageContaining("not allowed from the host");
    }

    @ParameterizedTest
    @ValueSource(strings = {"02:0", "02:16385", "02:65535", "01:15", "01:17", "04:1", "03:65535"})
    void lengthOutsideTheTypesBounds_isMalformedBeforeAnyPayloadIsRead(String typeAndLength) {
        int type = Integer.parseInt(typeAndLength.split(":")[0], 16);
        int length = Integer.parseInt(typeAndLength.split(":")[1]);
        // Only the header: a reader that trusted the length would wait for (or allocate) the payload.
        byte[] header = {'V', 'G', 'L', 1, (byte) type, (byte) length, (byte) (length >> 8)};

        assertThatThrownBy(() -> reader(header, LinkType.Sender.GUEST).next())
                .isInstanceOf(LinkFormatException.class).hasMessageContaining("payload length " + length);
    }

    @Test
    void hostClosedReasonTooLong_isMalformed() {
        int length = LinkFrame.NONCE_BYTES + LinkFrame.MAX_REASON + 1;
        byte[] header = {'V', 'G', 'L', 1, (byte) 0x83, (byte) length, (byte) (length >> 8)};

        assertThatThrownBy(() -> reader(header, LinkType.Sender.HOST).next())
                .isInstanceOf(LinkFormatException.class).hasMessageContaining("CLOSED payload length 273");
    }

    @Test
    void truncatedFrame_endsTheStreamWithEofNotAFrame() {
        byte[] whole = concat(List.of(LinkFrame.data(new byte[100], 0, 100)));

        assertThatThrownBy(() -> reader(Arrays.copyOf(whole, 50), LinkType.Sender.GUEST).next())
                .isInstanceOf(EOFException.class).hasMessageContaining("inside a frame of 107 bytes");
        assertThatThrownBy(() -> reader(Arrays.copyOf(whole, 5), LinkType.Sender.GUEST).next())
                .isInstanceOf(EOFException.class).hasMessageContaining("inside a frame header");
    }

    @Test
    void emptyStream_endsCleanly() throws IOException {
        LinkReader reader = reader(new byte[0], LinkType.Sender.GUEST);

        assertThat(reader.next()).isNull();
        assertThat(reader.skipToOpen()).isNull();
        assertThat(reader.skipToAnswer(NONCE)).isNull();
    }

    @Test
    void skipToOpen_findsAnOpenSplitAcrossReadsAfterGarbageAndOtherFrames() throws IOException {
        byte[] garbage = new byte[40_000];
        new Random(7).nextBytes(garbage);
        byte[] stream = concat(concat(garbage, concat(List.of(LinkFrame.data(new byte[] {1}, 0, 1),
                LinkFrame.keepalive()))), concat(List.of(LinkFrame.open(NONCE), LinkFrame.keepalive())));

        LinkReader reader = new LinkReader(new ChunkedChannel(stream, new Random(3), 5), LinkType.Sender.GUEST);

        assertThat(reader.skipToOpen()).isEqualTo(LinkFrame.open(NONCE));
        assertThat(reader.next()).isEqualTo(LinkFrame.keepalive());
        assertThat(reader.next()).isNull();
    }

    @Test
    void skipToAnswer_skipsStaleBytesHalfFramesAndOtherSessionsAnswers() throws IOException {
        byte[] stale = concat(List.of(LinkFrame.data(new byte[300], 0, 300), LinkFrame.opened(nonce(2)),
                LinkFrame.closed(nonce(3), "old"), LinkFrame.closed(null, "no open session")));
        byte[] halfFrame = Arrays.copyOfRange(stale, 150, stale.length);
        byte[] stream = concat(halfFrame, concat(List.of(LinkFrame.opened(NONCE), LinkFrame.data(new byte[] {9}, 0, 1))));

        LinkReader reader = new LinkReader(new ChunkedChannel(stream, new Random(5), 9), LinkType.Sender.HOST);

        assertThat(reader.skipToAnswer(NONCE)).isEqualTo(LinkFrame.opened(NONCE));
        assertThat(reader.next()).isEqualTo(LinkFrame.data(new byte[] {9}, 0, 1));
    }

    @Test
    void skipToAnswer_returnsARefusalForThisNonce() throws IOException {
        byte[] stream = concat(List.of(LinkFrame.opened(nonce(2)), LinkFrame.closed(NONCE, "not available")));

        LinkFrame answer = reader(stream, LinkType.Sender.HOST).skipToAnswer(NONCE);

        assertThat(answer.type()).isEqualTo(LinkType.CLOSED);
        assertThat(answer.reason()).isEqualTo("not available");
    }

    static byte[] nonce(int seed) {
        byte[] nonce = new byte[LinkFrame.NONCE_BYTES];
        new Random(seed).nextBytes(nonce);
        return nonce;
    }

    static byte[] concat(List<LinkFrame> frames) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (LinkFrame frame : frames) {
            ByteBuffer bytes = frame.encode();
            out.write(bytes.array(), 0, bytes.limit());
        }
        return out.toByteArray();
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] both = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, both, a.length, b.length);
        return both;
    }

    static List<LinkFrame> readAll(byte[] bytes, LinkType.Sender from) throws IOException {
        LinkReader reader = reader(bytes, from);
        List<LinkFrame> frames = new ArrayList<>();
        for (LinkFrame frame = reader.next(); frame != null; frame = reader.next()) {
            frames.add(frame);
        }
        return frames;
    }

    private static LinkReader reader(byte[] bytes, LinkType.Sender from) {
        return new LinkReader(new ChunkedChannel(bytes, new Random(1), bytes.length + 1), from);
    }
}
