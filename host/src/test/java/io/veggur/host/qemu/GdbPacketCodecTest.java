package io.veggur.host.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class GdbPacketCodecTest {
    private static GdbPacketCodec codecOver(String wire, int maxPacketBytes) {
        return new GdbPacketCodec(Channels.newChannel(
                new ByteArrayInputStream(wire.getBytes(StandardCharsets.ISO_8859_1))), maxPacketBytes);
    }

    private static String read(String wire) throws Exception {
        return codecOver(wire, 1024).readPacket();
    }

    private static String ascii(byte[] bytes) {
        return new String(bytes, StandardCharsets.ISO_8859_1);
    }

    @Test
    void frame_plainPayload_appendsChecksum() {
        assertThat(ascii(GdbPacketCodec.frame("g"))).isEqualTo("$g#67");
        assertThat(ascii(GdbPacketCodec.frame(""))).isEqualTo("$#00");
    }

    @Test
    void frame_reservedBytes_areEscapedAndChecksummedAsSent() {
        String wire = ascii(GdbPacketCodec.frame("a$b#c}d*"));

        assertThat(wire).startsWith("$a}\u0004b}\u0003c}]d}\n#");
        int sum = 0;
        for (char c : wire.substring(1, wire.indexOf('#')).toCharArray()) {
            sum += c;
        }
        assertThat(wire).endsWith(String.format("%02x", sum & 0xff));
    }

    @Test
    void frame_thenRead_roundTripsEveryByte() throws Exception {
        StringBuilder all = new StringBuilder();
        for (char c = 0; c < 256; c++) {
            all.append(c);
        }

        assertThat(read(ascii(GdbPacketCodec.frame(all.toString())))).isEqualTo(all.toString());
    }

    @Test
    void readPacket_leadingAcks_areSkipped() throws Exception {
        assertThat(read("++$OK#9a")).isEqualTo("OK");
    }

    @Test
    void readPacket_runLength_expandsRepeats() throws Exception {
        // "0* " is 0 plus (' ' - 29) = 3 more zeros; checksum covers the wire bytes.
        assertThat(read("$0* 1#" + checksum("0* 1"))).isEqualTo("00001");
    }

    @Test
    void readPacket_escapedByte_isUnescaped() throws Exception {
        assertThat(read("$a}\u0003b#" + checksum("a}\u0003b"))).isEqualTo("a#b");
    }

    @Test
    void readPacket_badChecksum_throwsProtocolException() {
        assertThatThrownBy(() -> read("$OK#00"))
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("checksum mismatch");
    }

    @Test
    void readPacket_nonHexChecksum_throwsProtocolException() {
        assertThatThrownBy(() -> read("$OK#zz")).isInstanceOf(QemuProtocolException.class);
    }

    @Test
    void readPacket_oversizedPacket_throwsBeforeReadingItAll() {
        GdbPacketCodec codec = codecOver("$" + "a".repeat(100) + "#00", 64);

        assertThatThrownBy(codec::readPacket)
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("exceeds 64 bytes");
    }

    @Test
    void readPacket_runLengthBeyondBound_throwsProtocolException() {
        String raw = "a*~a*~"; // 2 x (1 + 97) bytes
        GdbPacketCodec codec = codecOver("$" + raw + "#" + checksum(raw), 100);

        assertThatThrownBy(codec::readPacket)
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("expands beyond");
    }

    @Test
    void readPacket_runLengthWithoutCharacter_throwsProtocolException() {
        assertThatThrownBy(() -> read("$* #" + checksum("* "))).isInstanceOf(QemuProtocolException.class);
    }

    @Test
    void readPacket_runLengthCountTooSmall_throwsProtocolException() {
        assertThatThrownBy(() -> read("$a*\u0001#" + checksum("a*\u0001"))).isInstanceOf(QemuProtocolException.class);
    }

    @Test
    void readPacket_trailingEscape_throwsProtocolException() {
        assertThatThrownBy(() -> read("$a}#" + checksum("a}")))
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("escape");
    }

    @Test
    void readPacket_dollarInsidePacket_throwsProtocolException() {
        assertThatThrownBy(() -> read("$OK$OK#9a")).isInstanceOf(QemuProtocolException.class);
    }

    @Test
    void readPacket_garbageBetweenPackets_throwsProtocolException() {
        assertThatThrownBy(() -> read("hello"))
                .isInstanceOf(QemuProtocolException.class)
                .hasMessageContaining("0x68");
    }

    @Test
    void readPacket_nak_throwsProtocolException() {
        assertThatThrownBy(() -> read("-")).isInstanceOf(QemuProtocolException.class).hasMessageContaining("NAK");
    }

    @Test
    void readPacket_endOfStreamInsidePacket_throwsEof() {
        assertThatThrownBy(() -> read("$OK")).isInstanceOf(EOFException.class);
    }

    private static String checksum(String raw) {
        int sum = 0;
        for (char c : raw.toCharArray()) {
            sum += c;
        }
        return String.format("%02x", sum & 0xff);
    }
}
