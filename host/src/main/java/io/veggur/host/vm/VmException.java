package io.veggur.host.vm;

/** A VM operation failed for a reason the user can act on; the message says what and how. */
public final class VmException extends Exception {
    public VmException(String message) {
        super(message);
    }
}
