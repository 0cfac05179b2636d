package io.veggur.agent.exec;

import java.io.ByteArrayOutputStream;

/** Keeps what a run wrote, per stream. */
public final class CapturedOutput implements ExecOutput {
    private final ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    private final ByteArrayOutputStream stderr = new ByteArrayOutputStream();

    @Override
    public synchronized void write(ExecStream stream, byte[] bytes, int offset, int length) {
        (stream == ExecStream.STDOUT ? stdout : stderr).write(bytes, offset, length);
    }

    public synchronized byte[] stdout() {
        return stdout.toByteArray();
    }

    public synchronized byte[] stderr() {
        return stderr.toByteArray();
    }
}
