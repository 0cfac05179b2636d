package io.veggur.agent.exec;

import java.io.IOException;

/**
 * Where a command's output goes while it runs, chunk by chunk, in the order each stream produced it. A runner calls
 * it from one thread at a time and never keeps {@code bytes} after the call returns, and calls {@link #keepAlive}
 * whenever the command has been silent for {@link #KEEP_ALIVE_MILLIS}, so a reader that left is noticed even then.
 */
@FunctionalInterface
public interface ExecOutput {
    long KEEP_ALIVE_MILLIS = 2000;

    /**
     * Takes one chunk. May block (a slow reader slows the command down, within its timeout).
     *
     * @throws IOException when nobody reads the output any more; the runner then kills the command and ends the run
     *         with an {@link ExecReaderGoneException}
     */
    void write(ExecStream stream, byte[] bytes, int offset, int length) throws IOException;

    /**
     * Says the command still runs, though silent.
     *
     * @throws IOException when nobody reads the output any more, as for {@link #write}
     */
    default void keepAlive() throws IOException {
    }
}
