package io.veggur.host.qemu;

import java.io.IOException;

/**
 * QEMU answered a QMP command with an {@code error} reply. The connection stays usable. {@link #errorClass()} is the
 * machine-readable QMP error class (e.g. {@code CommandNotFound}, {@code GenericError}); {@link #description()} is
 * QEMU's human-readable text.
 */
public final class QmpException extends IOException {
    private final String command;
    private final String errorClass;
    private final String description;

    public QmpException(String command, String errorClass, String description) {
        super("QMP command '" + command + "' failed: " + errorClass + ": " + description);
        this.command = command;
        this.errorClass = errorClass;
        this.description = description;
    }

    public String command() {
        return command;
    }

    public String errorClass() {
        return errorClass;
    }

    public String description() {
        return description;
    }
}
