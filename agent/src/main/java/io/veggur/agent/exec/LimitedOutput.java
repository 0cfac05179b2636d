package io.veggur.agent.exec;

import java.io.IOException;

/**
 * Passes on the first {@code limit} bytes of each stream and drops the rest (still taking it, so the command never
 * blocks on it), remembering that it did.
 */
public final class LimitedOutput implements ExecOutput {
    private final ExecOutput target;
    private final long limit;
    private final long[] written = new long[ExecStream.values().length];
    private volatile boolean truncated;

    public LimitedOutput(ExecOutput target, long limit) {
        if (limit < 0) {
            throw new IllegalArgumentException("the limit must not be negative");
        }
        this.target = target;
        this.limit = limit;
    }

    @Override
    public void write(ExecStream stream, byte[] bytes, int offset, int length) throws IOException {
        long room = limit - written[stream.ordinal()];
        int kept = (int) Math.min(length, Math.max(room, 0));
        written[stream.ordinal()] += kept;
        truncated |= kept < length;
        if (kept > 0) {
            target.write(stream, bytes, offset, kept);
        }
    }

    @Override
    public void keepAlive() throws IOException {
        target.keepAlive();
    }

    /** Whether either stream had more than the limit. */
    public boolean truncated() {
        return truncated;
    }
}
