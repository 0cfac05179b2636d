package io.veggur.protocol;

import java.io.IOException;

/**
 * A protocol-level failure with a typed {@link ErrorCode}. On the server its message is sent to the client, so it
 * must never contain host paths or other host internals.
 */
public final class ProtocolException extends IOException {
    private final ErrorCode code;

    public ProtocolException(ErrorCode code, String message) {
        super(message);
        this.code = code;
    }

    public ErrorCode code() {
        return code;
    }
}
