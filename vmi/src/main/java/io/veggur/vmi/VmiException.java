package io.veggur.vmi;

import io.veggur.protocol.ErrorCode;
import java.io.IOException;

/** The introspection server refused or failed a request; {@link #code()} says why. */
public final class VmiException extends IOException {
    private final ErrorCode code;

    public VmiException(ErrorCode code, String message) {
        super(message);
        this.code = code;
    }

    public ErrorCode code() {
        return code;
    }
}
