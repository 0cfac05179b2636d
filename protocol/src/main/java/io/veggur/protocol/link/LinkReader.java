package io.veggur.protocol.link;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.Arrays;

/**
 * Reads link frames from one direction of a serial link, with a buffer of one maximal frame: nothing the other end
 * sends can make it hold more. Invariant between calls: the buffer's position..limit are the bytes received and not
 * yet consumed. The channel must be blocking. Not thread-safe: one reader per stream.
 */
public final class LinkReader {
    /** Bytes from the start of an OPEN/OPENED/CLOSED frame to the end of its nonce. */
    private static final int NONCE_END = LinkFrame.HEADER_BYTES + LinkFrame.NONCE_BYTES;

    private final ReadableByteChannel channel;
    private final LinkType.Sender from;
    private final ByteBuffer buffer = ByteBuffer.allocate(LinkFrame.MAX_FRAME).flip();
    /** The first bytes of every OPEN frame: magic, type and its one allowed length. */
    private final byte[] openHeader = Arrays.copyOf(LinkFrame.open(new byte[LinkFrame.NONCE_BYTES]).encode().array(),
            LinkFrame.HEADER_BYTES);

    /** {@code from}: who writes this stream, which decides the frame types allowed in it. */
    public LinkReader(ReadableByteChannel channel, LinkType.Sender from) {
        this.channel = channel;
        this.from = from;
    }

    /**
     * The next frame; null when the stream ends between frames. A malformed header throws
     * {@link LinkFormatException} having consumed one byte, so a scan for the next frame starts just after it; a
     * stream ending inside a frame throws {@link EOFException}.
     */
    public LinkFrame next() throws IOException {
        if (!fill(LinkFrame.HEADER_BYTES)) {
            if (buffer.hasRemaining()) {
                throw new EOFException("the stream ended inside a frame header");
            }
            return null;
        }
        int at = buffer.position();
        int length;
        try {
            length = LinkFrame.checkHeader(buffer, at, from);
        } catch (LinkFormatException e) {
            buffer.position(at + 1);
            throw e;
        }
        if (!fill(LinkFrame.HEADER_BYTES + length)) {
            throw new EOFException("the stream ended inside a frame of " + (LinkFrame.HEADER_BYTES + length) + " bytes");
        }
        return take(length);
    }

    /**
     * Host side, to resynchronise: discards bytes up to the next OPEN frame and returns it, or null when the stream
     * ends first. Anything may precede it: garbage, the rest of a bad frame, frames of a dead session.
     */
    public LinkFrame skipToOpen() throws IOException {
        while (true) {
            int found = -1;
            for (int p = buffer.position(); p <= buffer.limit() - openHeader.length && found < 0; p++) {
                if (Arrays.equals(openHeader, 0, openHeader.length, buffer.array(), p, p + openHeader.length)) {
                    found = p;
                }
            }
            if (found >= 0) {
                buffer.position(found);
                return fill(NONCE_END) ? take(LinkFrame.NONCE_BYTES) : null;
            }
            // Keep the tail that could still be the start of a header.
            int keep = Math.min(buffer.remaining(), openHeader.length - 1);
            buffer.position(buffer.limit() - keep);
            if (!fill(keep + 1)) {
                return null;
            }
        }
    }

    /**
     * Guest side, to resynchronise after sending OPEN: discards bytes up to the OPENED or CLOSED frame carrying
     * {@code nonce} and returns it, or null when the stream ends first. Stale bytes of earlier sessions, even a frame
     * cut in the middle, are skipped: only the host's answer to this OPEN carries this random nonce.
     */
    public LinkFrame skipToAnswer(byte[] nonce) throws IOException {
        while (true) {
            for (int p = buffer.position(); p <= buffer.limit() - NONCE_END; p++) {
                int length = answerLength(p, nonce);
                if (length >= 0) {
                    buffer.position(p);
                    return fill(LinkFrame.HEADER_BYTES + length) ? take(length) : null;
                }
            }
            int keep = Math.min(buffer.remaining(), NONCE_END - 1);
            buffer.position(buffer.limit() - keep);
            if (!fill(keep + 1)) {
                return null;
            }
        }
    }

    /** The payload length of an OPENED or CLOSED header at {@code p} followed by {@code nonce}, else -1. */
    private int answerLength(int p, byte[] nonce) {
        if (!LinkFrame.magicAt(buffer, p)
                || !Arrays.equals(nonce, 0, nonce.length, buffer.array(), p + LinkFrame.HEADER_BYTES, p + NONCE_END)) {
            return -1;
        }
        try {
            int length = LinkFrame.checkHeader(buffer, p, LinkType.Sender.HOST);
            int code = Byte.toUnsignedInt(buffer.get(p + 4));
            return code == LinkType.OPENED.code() || code == LinkType.CLOSED.code() ? length : -1;
        } catch (LinkFormatException e) {
            return -1;
        }
    }

    /** Consumes the whole frame at the position, whose header is checked and whose bytes are all buffered. */
    private LinkFrame take(int length) {
        LinkType type = LinkType.of(Byte.toUnsignedInt(buffer.get(buffer.position() + 4)));
        byte[] payload = new byte[length];
        buffer.position(buffer.position() + LinkFrame.HEADER_BYTES).get(payload);
        return new LinkFrame(type, payload);
    }

    /** Reads until {@code count} bytes are buffered; false if the stream ends first. */
    private boolean fill(int count) throws IOException {
        if (buffer.remaining() >= count) {
            return true;
        }
        buffer.compact();
        try {
            while (buffer.position() < count) {
                if (channel.read(buffer) < 0) {
                    return false;
                }
            }
            return true;
        } finally {
            buffer.flip();
        }
    }
}
