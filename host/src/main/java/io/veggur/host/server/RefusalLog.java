package io.veggur.host.server;

import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * The requests a VM's sockets refused, kept for the host agent to collect into its audit log. Bounded: once
 * {@value #CAPACITY} refusals wait uncollected, the oldest are dropped and counted, so a client that hammers a
 * refused operation costs the supervisor a fixed amount of memory and the audit log still learns how many were lost.
 */
public final class RefusalLog {
    static final int CAPACITY = 1024;

    /** One refused request: {@code holder} names the socket (its control-channel id, or "owner"). */
    public record Refusal(long seq, Instant time, String holder, String what) {}

    /** Refusals after a sequence number, and how many before the oldest of them were dropped uncollected. */
    public record Batch(List<Refusal> refusals, long dropped, long lastSeq) {}

    private final Deque<Refusal> kept = new ArrayDeque<>();
    private long lastSeq;
    private long droppedThrough;

    synchronized void record(String holder, String what) {
        if (kept.size() == CAPACITY) {
            droppedThrough = kept.removeFirst().seq();
        }
        kept.addLast(new Refusal(++lastSeq, Instant.now(), holder, what));
    }

    /** At most {@code max} refusals with a sequence number above {@code after}, oldest first. */
    public synchronized Batch after(long after, int max) {
        List<Refusal> result = new ArrayList<>();
        for (Refusal refusal : kept) {
            if (refusal.seq() > after && result.size() < max) {
                result.add(refusal);
            }
        }
        long dropped = Math.max(0, droppedThrough - after);
        return new Batch(result, dropped, lastSeq);
    }
}
