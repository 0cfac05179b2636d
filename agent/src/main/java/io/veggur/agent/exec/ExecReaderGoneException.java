package io.veggur.agent.exec;

import java.io.IOException;

/** A run ended early because its {@link ExecOutput} failed: the command was killed, and its status is unknown. */
public final class ExecReaderGoneException extends IOException {
    public ExecReaderGoneException(IOException cause) {
        super("the command's output has no reader any more; the command was killed", cause);
    }
}
