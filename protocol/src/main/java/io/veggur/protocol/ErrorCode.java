package io.veggur.protocol;

/**
 * Typed errors carried by {@link Reply.Error}. Wire values are stable across protocol versions; a client that meets an
 * unknown value maps it to {@link #INTERNAL}.
 */
public enum ErrorCode {
    /** The frame could not be parsed: bad length, truncated payload, trailing bytes. */
    MALFORMED(1),
    /** The request type is not known to this server. */
    UNKNOWN_REQUEST(2),
    /** No common protocol version, or a request sent before the handshake. */
    HANDSHAKE_REQUIRED(3),
    /** A guest-physical range is not (entirely) backed by guest RAM, or a vCPU index does not exist. */
    OUT_OF_RANGE(4),
    /** The socket's policy or the holder's role does not allow the operation. */
    PERMISSION_DENIED(5),
    /** The request exceeds a size or count limit. */
    TOO_LARGE(6),
    /** The VM is not in a state where the operation can be done (e.g. it has shut down). */
    VM_UNAVAILABLE(7),
    /** Too many requests in flight, or another limit on shared resources. */
    BUSY(8),
    /** The server failed; the message is safe to show but says nothing about the host. */
    INTERNAL(9);

    private final int wire;

    ErrorCode(int wire) {
        this.wire = wire;
    }

    public int wire() {
        return wire;
    }

    public static ErrorCode fromWire(int wire) {
        for (ErrorCode code : values()) {
            if (code.wire == wire) {
                return code;
            }
        }
        return INTERNAL;
    }
}
