package io.veggur.host.qemu;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * Framing of the GDB Remote Serial Protocol: a packet is {@code $payload#cc}, where {@code cc} is the modulo-256 sum
 * of the payload bytes as they appear on the wire, in two hex digits. Between packets the peer sends only the
 * acknowledgements {@code +} and {@code -}.
 *
 * <p>Inside a payload, {@code }} escapes the next byte (sent XOR 0x20) and {@code *} run-length encodes: {@code X*n}
 * stands for X followed by {@code n - 29} more copies of X. Decoding applies both in one left-to-right pass;
 * encoding escapes {@code $ # } *} so that neither framing nor run-length decoding on QEMU's side can misread the
 * payload. Payloads are handled as ISO-8859-1 strings so that every byte maps to exactly one char.
 *
 * <p>A raw packet longer than the configured bound, a bad checksum, a stray byte outside a packet or a {@code -} (the
 * peer rejected our packet) is a {@link QemuProtocolException}: over a local socket they mean a broken peer, not line
 * noise, so there is no retransmission. A closed or reset connection is an {@link EOFException}.
 */
final class GdbPacketCodec {
    private static final int RUN_LENGTH_BIAS = 29;

    private final ReadableByteChannel in;
    private final int maxPacketBytes;
    private final ByteBuffer buffer = ByteBuffer.allocate(64 << 10).flip();

    GdbPacketCodec(ReadableByteChannel in, int maxPacketBytes) {
        this.in = in;
        this.maxPacketBytes = maxPacketBytes;
    }

    /** The wire form of a packet. Payload chars must be ISO-8859-1. */
    static byte[] frame(String payload) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(payload.length() + 4);
        out.write('$');
        int sum = 0;
        for (int i = 0; i < payload.length(); i++) {
            char c = payload.charAt(i);
            if (c > 0xff) {
                throw new IllegalArgumentException("payload char " + (int) c + " at " + i + " is not a byte");
            }
            if (c == '$' || c == '#' || c == '}' || c == '*') {
                out.write('}');
                out.write(c ^ 0x20);
                sum += '}' + (c ^ 0x20);
            } else {
                out.write(c);
                sum += c;
            }
        }
        out.write('#');
        byte[] checksum = String.format("%02x", sum & 0xff).getBytes(StandardCharsets.US_ASCII);
        out.write(checksum, 0, 2);
        return out.toByteArray();
    }

    /** The next packet's decoded payload; acknowledgements before it are skipped. Blocks until one arrives. */
    String readPacket() throws IOException {
        while (true) {
            int b = nextByte();
            switch (b) {
                case '+' -> { } // receipt of our last packet; its reply says as much
                case '$' -> {
                    return readPayload();
                }
                case '-' -> throw new QemuProtocolException("gdbstub rejected our last packet (checksum NAK)");
                default -> throw new QemuProtocolException(String.format(
                        "unexpected byte 0x%02x outside a gdbstub packet", b));
            }
        }
    }

    private String readPayload() throws IOException {
        ByteArrayOutputStream raw = new ByteArrayOutputStream();
        int sum = 0;
        for (int b = nextByte(); b != '#'; b = nextByte()) {
            if (b == '$') {
                throw new QemuProtocolException("'$' inside a gdbstub packet (truncated packet?) after "
                        + preview(raw.toByteArray()));
            }
            if (raw.size() == maxPacketBytes) {
                throw new QemuProtocolException("gdbstub packet exceeds " + maxPacketBytes + " bytes");
            }
            raw.write(b);
            sum += b;
        }
        int expected = hexDigit(nextByte()) << 4 | hexDigit(nextByte());
        byte[] bytes = raw.toByteArray();
        if ((sum & 0xff) != expected) {
            throw new QemuProtocolException(String.format(
                    "gdbstub packet checksum mismatch: computed %02x, packet says %02x, payload %s",
                    sum & 0xff, expected, preview(bytes)));
        }
        return decode(bytes, maxPacketBytes);
    }

    /** Undoes escaping and run-length encoding; the result may not exceed {@code maxBytes}. */
    static String decode(byte[] raw, int maxBytes) throws QemuProtocolException {
        StringBuilder out = new StringBuilder(raw.length);
        for (int i = 0; i < raw.length; i++) {
            int b = raw[i] & 0xff;
            if (b == '}') {
                if (++i == raw.length) {
                    throw new QemuProtocolException("gdbstub packet ends in an escape: " + preview(raw));
                }
                out.append((char) ((raw[i] & 0xff) ^ 0x20));
            } else if (b == '*') {
                if (out.isEmpty() || ++i == raw.length) {
                    throw new QemuProtocolException("gdbstub packet has a run length without a character to repeat: "
                            + preview(raw));
                }
                int count = (raw[i] & 0xff) - RUN_LENGTH_BIAS;
                if (count < 3 || count > 126 - RUN_LENGTH_BIAS) {
                    throw new QemuProtocolException("gdbstub packet has an invalid run length " + count + ": "
                            + preview(raw));
                }
                if (out.length() + count > maxBytes) {
                    throw new QemuProtocolException("gdbstub packet expands beyond " + maxBytes + " bytes");
                }
                out.repeat(out.charAt(out.length() - 1), count);
            } else {
                out.append((char) b);
            }
        }
        return out.toString();
    }

    private int nextByte() throws IOException {
        while (!buffer.hasRemaining()) {
            buffer.clear();
            int n;
            try {
                n = in.read(buffer);
            } catch (IOException e) {
                throw (EOFException) new EOFException("gdbstub connection failed: " + e.getMessage()).initCause(e);
            }
            buffer.flip();
            if (n < 0) {
                throw new EOFException("gdbstub closed the connection");
            }
        }
        return buffer.get() & 0xff;
    }

    private static int hexDigit(int b) throws QemuProtocolException {
        if (!HexFormat.isHexDigit(b)) {
            throw new QemuProtocolException(String.format("gdbstub packet checksum has non-hex byte 0x%02x", b));
        }
        return HexFormat.fromHexDigit(b);
    }

    static String preview(byte[] bytes) {
        return preview(new String(bytes, StandardCharsets.ISO_8859_1));
    }

    /** Printable, bounded rendering of a payload for error messages. */
    static String preview(String payload) {
        StringBuilder out = new StringBuilder("'");
        for (int i = 0; i < Math.min(payload.length(), 80); i++) {
            char c = payload.charAt(i);
            if (c >= 0x20 && c < 0x7f) {
                out.append(c);
            } else {
                out.append(String.format("\\x%02x", (int) c));
            }
        }
        out.append('\'');
        return payload.length() > 80 ? out + "... (" + payload.length() + " bytes)" : out.toString();
    }
}
