package io.veggur.protocol.link;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Locale;

/**
 * One frame of the serial link that carries introspection sessions over a virtio-serial port (docs/protocol.md,
 * "Serial link"). On the wire:
 * <pre>
 *   4 bytes  magic 'V' 'G' 'L' 0x01 (the last byte is the link version)
 *   u8       type ({@link LinkType})
 *   u16      payload length, little-endian, within the type's bounds
 *   ...      payload
 * </pre>
 * Invariant: a frame is at most {@link #MAX_FRAME} bytes, well under the 32 KiB a virtio-serial port takes as one
 * buffer, so one {@code write()} carries one whole frame and a guest process killed mid-write leaves no partial frame.
 * The payload array belongs to the frame.
 */
public record LinkFrame(LinkType type, byte[] payload) {
    public static final int HEADER_BYTES = 7;
    public static final int NONCE_BYTES = 16;
    /** Largest DATA payload; the introspection protocol's frames are cut into as many DATA frames as they need. */
    public static final int MAX_DATA = 16 * 1024;
    /** Largest reason in a CLOSED frame, in UTF-8 bytes. */
    public static final int MAX_REASON = 256;
    public static final int MAX_FRAME = HEADER_BYTES + MAX_DATA;
    private static final byte[] MAGIC = {'V', 'G', 'L', 1};
    private static final byte[] NO_NONCE = new byte[NONCE_BYTES];

    public LinkFrame {
        if (payload.length < type.minPayload() || payload.length > type.maxPayload()) {
            throw new IllegalArgumentException(type + " payload of " + payload.length + " bytes outside "
                    + type.minPayload() + ".." + type.maxPayload());
        }
    }

    public static LinkFrame open(byte[] nonce) {
        return new LinkFrame(LinkType.OPEN, nonce.clone());
    }

    public static LinkFrame data(byte[] bytes, int offset, int length) {
        return new LinkFrame(LinkType.DATA, Arrays.copyOfRange(bytes, offset, offset + length));
    }

    public static LinkFrame close() {
        return new LinkFrame(LinkType.CLOSE, new byte[0]);
    }

    public static LinkFrame keepalive() {
        return new LinkFrame(LinkType.KEEPALIVE, new byte[0]);
    }

    public static LinkFrame opened(byte[] nonce) {
        return new LinkFrame(LinkType.OPENED, nonce.clone());
    }

    /**
     * A CLOSED frame; {@code nonce} null stands for "whatever session you think you have" (all zeros). The reason is
     * cut to {@link #MAX_REASON} UTF-8 bytes at a character boundary, control characters replaced, so it prints as
     * one line.
     */
    public static LinkFrame closed(byte[] nonce, String reason) {
        CharsetEncoder encoder = StandardCharsets.UTF_8.newEncoder()
                .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
        ByteBuffer text = ByteBuffer.allocate(MAX_REASON);
        // An encoder stops before a character that does not fit, so the cut never splits one.
        encoder.encode(CharBuffer.wrap(reason.replaceAll("\\p{Cntrl}", "?")), text, true);
        ByteBuffer payload = ByteBuffer.allocate(NONCE_BYTES + text.position());
        payload.put(nonce == null ? NO_NONCE : nonce).put(text.flip());
        return new LinkFrame(LinkType.CLOSED, payload.array());
    }

    /** The nonce of an OPEN, OPENED or CLOSED frame. */
    public byte[] nonce() {
        if (type != LinkType.OPEN && type != LinkType.OPENED && type != LinkType.CLOSED) {
            throw new IllegalStateException(type + " carries no nonce");
        }
        return Arrays.copyOf(payload, NONCE_BYTES);
    }

    /** The reason of a CLOSED frame. */
    public String reason() {
        if (type != LinkType.CLOSED) {
            throw new IllegalStateException(type + " carries no reason");
        }
        return new String(payload, NONCE_BYTES, payload.length - NONCE_BYTES, StandardCharsets.UTF_8);
    }

    public ByteBuffer encode() {
        ByteBuffer buffer = ByteBuffer.allocate(HEADER_BYTES + payload.length).order(ByteOrder.LITTLE_ENDIAN);
        buffer.put(MAGIC).put((byte) type.code()).putShort((short) payload.length).put(payload);
        return buffer.flip();
    }

    /** Whether the magic starts at {@code at} (the caller guarantees 4 readable bytes there). */
    static boolean magicAt(ByteBuffer buffer, int at) {
        for (int i = 0; i < MAGIC.length; i++) {
            if (buffer.get(at + i) != MAGIC[i]) {
                return false;
            }
        }
        return true;
    }

    /**
     * Checks the header at {@code at} (the caller guarantees {@link #HEADER_BYTES} readable bytes there) as written by
     * {@code from}: returns its payload length, or throws saying what is wrong.
     */
    static int checkHeader(ByteBuffer buffer, int at, LinkType.Sender from) throws LinkFormatException {
        if (!magicAt(buffer, at)) {
            throw new LinkFormatException("bad magic");
        }
        int code = Byte.toUnsignedInt(buffer.get(at + 4));
        LinkType type = LinkType.of(code);
        if (type == null || !type.sentBy(from)) {
            throw new LinkFormatException("frame type 0x" + Integer.toHexString(code) + " not allowed from the "
                    + from.name().toLowerCase(Locale.ROOT));
        }
        int length = Byte.toUnsignedInt(buffer.get(at + 5)) | Byte.toUnsignedInt(buffer.get(at + 6)) << 8;
        if (length < type.minPayload() || length > type.maxPayload()) {
            throw new LinkFormatException(type + " payload length " + length + " outside " + type.minPayload() + ".."
                    + type.maxPayload());
        }
        return length;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof LinkFrame frame && frame.type == type && Arrays.equals(frame.payload, payload);
    }

    @Override
    public int hashCode() {
        return type.hashCode() * 31 + Arrays.hashCode(payload);
    }

    @Override
    public String toString() {
        return type + "[" + payload.length + " bytes]";
    }
}
