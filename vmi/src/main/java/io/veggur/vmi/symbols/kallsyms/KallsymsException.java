package io.veggur.vmi.symbols.kallsyms;

import java.io.IOException;

/** The kernel's kallsyms tables could not be found or decoded in guest memory; the message says where it looked. */
public final class KallsymsException extends IOException {
    public KallsymsException(String message) {
        super(message);
    }

    public KallsymsException(String message, Throwable cause) {
        super(message, cause);
    }
}
