package io.veggur.protocol;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One frame of the introspection protocol. On the wire, little-endian:
 * <pre>
 *   u32 length      bytes that follow this field (header rest + payload), 8..MAX_LENGTH
 *   u32 requestId   chosen by the client, echoed by the reply; 0 for server events
 *   u16 type        message type (see {@link WireCodec})
 *   u16 flags       must be 0 in version 1
 *   ... payload
 * </pre>
 * A frame whose length is out of bounds cannot be skipped safely, so the reader gives up on the stream.
 */
public record Frame(int requestId, int type, ByteBuffer payload) {
    public static final int HEADER_BYTES = 12;
    /** Largest payload a server sends: a full 16 MiB read plus room for its header. */
    public static final int MAX_PAYLOAD = WireCodec.MAX_READ_BYTES + 4096;
    /** Largest payload a client sends: a 1 MiB write (a full scatter list of reads is smaller). */
    public static final int MAX_REQUEST_PAYLOAD = WireCodec.MAX_WRITE_BYTES + 4096;

    /** Reads the next frame from a server, or returns null on a clean end of stream between frames. */
    public static Frame read(InputStream in) throws IOException {
        return read(in, MAX_PAYLOAD);
    }

    /** Reads the next frame whose payload is at most {@code maxPayload}, or null on a clean end of stream. */
    public static Frame read(InputStream in, int maxPayload) throws IOException {
        byte[] lengthBytes = new byte[4];
        int first = in.readNBytes(lengthBytes, 0, 4);
        if (first == 0) {
            return null;
        }
        if (first < 4) {
            throw new EOFException("stream ended inside a frame header");
        }
        long length = Integer.toUnsignedLong(ByteBuffer.wrap(lengthBytes).order(ByteOrder.LITTLE_ENDIAN).getInt());
        if (length < HEADER_BYTES - 4 || length > maxPayload + HEADER_BYTES - 4) {
            throw new ProtocolException(ErrorCode.MALFORMED, "frame length " + length + " outside 8.." + (maxPayload + 8));
        }
        byte[] body = in.readNBytes((int) length);
        if (body.length < length) {
            throw new EOFException("stream ended inside a frame of " + length + " bytes");
        }
        ByteBuffer buffer = ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN);
        int requestId = buffer.getInt();
        int type = Short.toUnsignedInt(buffer.getShort());
        int flags = Short.toUnsignedInt(buffer.getShort());
        if (flags != 0) {
            throw new ProtocolException(ErrorCode.MALFORMED, "frame flags must be 0, got " + flags);
        }
        return new Frame(requestId, type, buffer.slice().order(ByteOrder.LITTLE_ENDIAN));
    }

    /** Allocates a frame buffer with the header filled in and the position at the start of the payload. */
    public static ByteBuffer allocate(int requestId, int type, int payloadLength) {
        ByteBuffer buffer = ByteBuffer.allocate(HEADER_BYTES + payloadLength).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(HEADER_BYTES - 4 + payloadLength).putInt(requestId).putShort((short) type).putShort((short) 0);
        return buffer;
    }
}
