package io.veggur.agent;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One lock per VM id, held while the agent changes that VM or its environments on the host. API requests wait for
 * it; the reconciler only tries it, and skips a VM that a request is working on (its state is in flux, not stale).
 */
final class VmLocks {
    private final ConcurrentMap<Long, ReentrantLock> locks = new ConcurrentHashMap<>();

    ReentrantLock of(long vmId) {
        return locks.computeIfAbsent(vmId, id -> new ReentrantLock());
    }
}
